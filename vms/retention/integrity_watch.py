"""Standing alarms for the promises themselves: retention kept, audit trail intact, disk above its floor.

:class:`IntegrityWatch` checks, every ``interval_s`` (default 5 minutes; the
audit chain every ``chain_interval_s``, default five minutes: each verification that finds the
trail grown writes a signed checkpoint outside the database, :func:`vms.access.audit.verify_anchored`;
and sooner, every ``checkpoint_entries`` new entries, looked at every ``growth_interval_s``):

* ``retention_violation`` (critical): footage older than its camera allows and
  not held (:func:`vms.retention.rules.build_report`); cleared when the janitor has
  caught up;
* ``audit_chain_broken`` (critical): :func:`vms.access.audit.verify` names the first
  bad entry or missing append-only triggers; cleared only when the chain
  verifies again;
* ``disk_low`` (warning): free space of the storage root below the janitor's
  floor (the janitor is evicting unheld footage; if it stays, holds fill the disk).

Alarms go through :class:`vms.ops.alarms.Alarms` (log, audit trail, MQTT).  A check
that cannot run (database away) leaves its alarm as it was and logs why.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable

from vms.access import audit
from vms.core.periodic import Periodic
from vms.retention import rules as retention

log = logging.getLogger(__name__)
CHECKPOINT_ENTRIES = 1000  # a checkpoint at least every this many entries, besides every chain_interval_s


class IntegrityWatch:
    def __init__(self, app, alarms, *, interval_s: float = 300.0, chain_interval_s: float = 300.0,
                 checkpoint_entries: int = CHECKPOINT_ENTRIES, growth_interval_s: float = 30.0,
                 disk_usage: Callable = shutil.disk_usage):
        self.app, self.alarms = app, alarms
        self.interval_s, self.chain_interval_s = interval_s, chain_interval_s
        self.checkpoint_entries = checkpoint_entries
        self._growth = Periodic("audit-growth", growth_interval_s, self.check_growth)
        self._disk_usage = disk_usage
        self._last_chain: float | None = None
        self._timer = Periodic("integrity-watch", interval_s, self._round, run_first=True)

    def check_retention(self) -> int:
        report = retention.build_report(self.app.engine, self.app.config, self.app.clock.now_us())
        bad = [c for c in report.cameras if c.violations]
        if bad:
            what = ", ".join(f"{c.camera_id}: {c.violations} segment(s)" for c in bad)
            self.alarms.raise_alarm("retention_violation", f"footage older than allowed and not held ({what}); "
                                    "is the janitor running? see 'vms retention report'", severity="critical")
        else:
            self.alarms.clear("retention_violation")
        return report.violations

    def check_chain(self) -> bool:
        result = audit.verify_anchored(self.app)
        if result.ok:
            self.alarms.clear("audit_chain_broken")
            return True
        why = result.problem or "the append-only triggers are missing"
        self.alarms.raise_alarm("audit_chain_broken", f"audit trail does not verify: {why} "
                                "(see 'vms audit verify')", severity="critical")
        return False

    def check_disk(self) -> bool:
        jc = self.app.config.janitor
        root = self.app.store.root
        if not root.exists():
            return True
        usage = self._disk_usage(root)
        if retention.bytes_to_free(usage.total, usage.free, jc.min_free_bytes, jc.min_free_percent):
            floor = retention.free_space_floor(usage.total, jc.min_free_bytes, jc.min_free_percent)
            self.alarms.raise_alarm("disk_low", f"free space {usage.free // 2**20} MiB is below the floor of "
                                    f"{floor // 2**20} MiB on the storage disk")
            return False
        self.alarms.clear("disk_low")
        return True

    def check(self, *, chain: bool = True) -> None:
        """One pass (tests call it directly)."""
        for name, fn in (("retention", self.check_retention), ("disk", self.check_disk)) + \
                ((("audit chain", self.check_chain),) if chain else ()):
            try:
                fn()
            except Exception as exc:  # the next pass may succeed; the alarm stays as it was
                log.warning("integrity check %s could not run (%s)", name, exc.__class__.__name__)

    def check_growth(self) -> bool:
        """Checkpoint early when the trail grew by ``checkpoint_entries`` since the last checkpoint (a cheap
        look at two numbers; the verification runs only then).  True when it ran."""
        try:
            grown = audit.entries_since_checkpoint(self.app)
        except Exception as exc:
            log.warning("audit growth could not be read (%s)", exc.__class__.__name__)
            return False
        if grown < self.checkpoint_entries:
            return False
        self._last_chain = self.app.clock.monotonic_s()
        self.check_chain()
        return True

    def start(self) -> None:
        self._timer.start()
        self._growth.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._growth.stop(timeout_s)
        self._timer.stop(timeout_s)

    def _round(self) -> None:
        mono = self.app.clock.monotonic_s()
        due = self._last_chain is None or mono - self._last_chain >= self.chain_interval_s
        if due:
            self._last_chain = mono
        self.check(chain=due)
