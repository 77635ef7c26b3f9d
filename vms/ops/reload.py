"""Re-reading the config on SIGHUP, keeping the running one when the new file is bad.

``ConfigReloader(path, on_change).install()`` (main thread only: Python delivers
signals there) makes SIGHUP re-read and re-validate ``path`` exactly as at start
(:func:`vms.core.config.load_config`, permissions included).  The signal handler only
sets an event; the reload itself runs on the reloader's own daemon thread, so
``on_change`` may take locks and touch the database.

* New file valid and different: ``on_change(new_config)`` is called, then
  ``reloader.config`` is the new one.  Keys in :data:`RESTART_KEYS` are applied
  by nobody while running; the log says a restart is needed for them.
* New file invalid (syntax, schema, permissions) or unreadable: the running
  config stays, and the log says so together with the file, key and reason
  (the :class:`~vms.core.config.ConfigError` message, which never holds secrets).
* ``on_change`` raising: logged; the running config stays the old one.

``reload()`` does one reload synchronously and returns whether the new config
was taken (tests and ``vms serve`` may call it directly).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path

from vms.core.config import Config, ConfigError, load_config

log = logging.getLogger(__name__)

#: top-level keys whose change only takes effect after a restart (read once when the services start:
#: paths and the database, the HTTP server, the recorder's timings, the MQTT connection, cluster peers, the
#: delivery defaults).  Applied while running: cameras (added, removed, enabled, disabled, their source and
#: every other camera key: ``Recorder.apply``, vms/recording/live_config.py), janitor, alarms thresholds,
#: legal maximum, time zone.
RESTART_KEYS = ("node_id", "data_dir", "storage_root", "key_file", "signing_key_file", "database_url", "api",
                "recorder", "mqtt", "cluster", "delivery")


def changed_keys(old: Config, new: Config) -> list[str]:
    """Top-level config keys whose values differ."""
    a, b = old.model_dump(), new.model_dump()
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


class ConfigReloader:
    def __init__(self, config_path: Path | str, on_change: Callable[[Config], None], *,
                 current: Config | None = None):
        self.config_path = Path(config_path)
        self.on_change = on_change
        self.config = current if current is not None else load_config(self.config_path)
        self.reloads = 0
        self.refusals = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._previous_handler = None
        self._lock = threading.Lock()

    def reload(self) -> bool:
        """Re-read the file now.  True when the new config was taken."""
        with self._lock:
            try:
                new = load_config(self.config_path)
            except ConfigError as exc:
                self.refusals += 1
                log.error("config reload refused, keeping the running config: %s", exc)
                return False
            except Exception as exc:  # anything else unexpected: still keep running as before
                self.refusals += 1
                log.error("config reload refused, keeping the running config: %s cannot be loaded (%s)",
                          self.config_path, exc.__class__.__name__)
                return False
            changed = changed_keys(self.config, new)
            if not changed:
                log.info("config reload: %s is unchanged", self.config_path)
                return False
            try:
                self.on_change(new)
            except Exception as exc:
                self.refusals += 1
                log.exception("config reload: applying the new config failed (%s); keeping the running config",
                              exc.__class__.__name__)
                return False
            self.config_before, self.config = self.config, new
            self.reloads += 1
            log.info("config reloaded from %s (changed: %s)", self.config_path, ", ".join(changed))
            restart = [k for k in changed if k in RESTART_KEYS]
            if restart:
                log.warning("config reload: changes to %s take effect only after a restart", ", ".join(restart))
            return True

    def install(self) -> ConfigReloader:
        """Handle SIGHUP from now on (call from the main thread)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="config-reload", daemon=True)
            self._thread.start()
        previous = signal.signal(signal.SIGHUP, self._on_signal)
        self._previous_handler = previous if previous is not None else signal.SIG_DFL
        return self

    def uninstall(self, timeout_s: float = 2.0) -> None:
        if self._previous_handler is not None:
            signal.signal(signal.SIGHUP, self._previous_handler)
            self._previous_handler = None
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _on_signal(self, _signum, _frame) -> None:
        self._wake.set()  # nothing else in a signal handler

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.reload()
            except Exception:  # the reload thread must survive anything
                log.exception("config reload failed")
