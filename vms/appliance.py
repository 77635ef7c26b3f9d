"""The running appliance: config, keys, database, segment store, clock and the state its parts share.

Built once at start-up (the composition root: ``vms serve``, the CLI, the tests) and passed explicitly;
no module keeps per-appliance state of its own.

``Appliance.open(config_path)`` validates the config (refusing unsafe
permissions) before it touches keys or footage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from storage.keys.keyring import MasterKeyring
from storage.keys.keystore import KeyStore
from storage.sql import index
from storage.sql.db import open_database
from storage.store import SegmentStore
from vms.access import audit_key
from vms.access.address_guard import AddressGuard
from vms.core.clock import Clock
from vms.core.config import Config, load_config
from vms.evidence.delivery import DeliveryState
from vms.evidence.export_jobs import ExportJobs
from vms.evidence.plays import Plays
from vms.finding.service import Finding
from vms.recording.live import LiveHub


@dataclass
class Appliance:
    config: Config
    config_path: Path
    engine: Engine
    keys: KeyStore
    store: SegmentStore
    clock: Clock
    # failed sign-ins per client address (vms/access/auth.py); reads the clock late, so a replaced clock counts
    signin_guard: AddressGuard = field(init=False, repr=False, compare=False)
    # delivery limits and the recipients' guessing counters (vms/evidence/delivery.py)
    delivery_state: DeliveryState = field(init=False, repr=False, compare=False)
    # export jobs and their runner (vms/evidence/export_jobs.py); threads start with the first job
    export_jobs: ExportJobs = field(init=False, repr=False, compare=False)
    # activity, thumbnail cache and region searches with their workers (vms/finding/service.py)
    finding: Finding = field(init=False, repr=False, compare=False)
    # the continuous player's plays (vms/evidence/plays.py): one audited play, many fragments
    plays: Plays = field(init=False, repr=False, compare=False)
    # live view: the recorder's packets for the browsers watching (vms/recording/live.py)
    live: LiveHub = field(init=False, repr=False, compare=False)
    # re-reads config_path and applies it to the running services (vms serve: its SIGHUP reloader); None: only
    # this object's config and the index follow (vms/ops/camera_admin.py)
    reload_config: Callable[[], bool] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        api = self.config.api
        self.signin_guard = AddressGuard(api.signin_address_failures, api.signin_address_window_s,
                                         lambda: self.clock.monotonic_s())
        self.delivery_state = DeliveryState.for_config(self.config, lambda: self.clock.monotonic_s())
        self.export_jobs = ExportJobs(self)
        self.finding = Finding(self)
        self.plays = Plays(lambda: self.clock.monotonic_s())
        self.live = LiveHub(lambda: self.config)

    @classmethod
    def open(cls, config_path: Path | str, *, clock: Clock | None = None) -> Appliance:
        config_path = Path(config_path)
        cfg = load_config(config_path)
        keyring = MasterKeyring(cfg.key_path)
        engine = open_database(cfg.db_url)
        keys = KeyStore(keyring)
        store = SegmentStore(cfg.storage_path, engine, keys, node_id=cfg.node_id)
        app = cls(cfg, config_path, engine, keys, store, clock or Clock())
        app.sync_cameras()
        audit_key.ensure(engine, keyring, app.clock.now_us())  # the trail's audit key (made once per trail)
        return app

    def sync_cameras(self) -> None:
        """Make the index's camera list match the config; removed cameras are
        marked (their footage keeps its retention until it expires)."""
        now = self.clock.now_us()
        with Session(self.engine) as s, s.begin():
            for cam in self.config.cameras:
                index.upsert_camera(s, cam.id, node_id=self.config.node_id, retain_days=cam.retain_days, now_us=now,
                                    name=cam.name, place=cam.place, enabled=cam.enabled)
            index.mark_cameras_removed(
                s, [c.id for c in self.config.cameras], node_id=self.config.node_id, now_us=now
            )

    def close(self) -> None:
        self.export_jobs.runner.shutdown(cancel=True, wait=False)
        self.finding.close()
        self.engine.dispose()
