"""``vms record --config FILE`` as a process: SIGTERM, ``kill -9`` and restart.

The process is the installed command (``.venv/bin/vms``); the test reads what it
stored through its own Appliance on the same database (SQLite or PostgreSQL).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage.format.segment import OPEN_SUFFIX, SUFFIX
from storage.keys.keyring import write_key_file
from testkit.appliance import write_config
from testkit.recording import camera_state, gaps, segments, stored, wait_for
from testkit.rtsp_server import Mount
from vms.appliance import Appliance
from vms.core.clock import Clock

pytestmark = pytest.mark.rtsp

SECRET = "pr0cessSecret"
VMS = Path(sys.executable).with_name("vms")


class RecordProcess:
    def __init__(self, config: Path, log_path: Path):
        self.config, self.log_path = config, log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> RecordProcess:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(VMS), "record", "--config", str(self.config)], stdout=log, stderr=log,
                                     start_new_session=True)
        log.close()
        return self

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def wait(self, timeout_s: float) -> int:
        return self.proc.wait(timeout_s)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def record_process(tmp_path):
    made: list[RecordProcess] = []

    def make(config: Path) -> RecordProcess:
        made.append(RecordProcess(config, tmp_path / f"record{len(made)}.log"))
        return made[-1]

    yield make
    for p in made:
        p.stop()


def install(tmp_path: Path, cameras: list[dict], database_url: str | None = None, **top) -> tuple[Path, Appliance]:
    """Config + master key + migrated database, as ``vms init`` leaves them."""
    data = tmp_path / "data"
    if database_url:
        top["database_url"] = database_url
    cfg = write_config(data, cameras, **top)
    write_key_file(data / "keys" / "master.key")
    app = Appliance.open(cfg, clock=Clock())
    return cfg, app


def test_sigterm_seals_everything_and_exits_within_5_s(database_url, tmp_path, rtsp_server_factory, h264_clip,
                                                       record_process):
    server = rtsp_server_factory({"/cam": Mount(h264_clip.path, loop=True, shared=True)})
    with socket.socket() as silent:  # a camera blocked in connecting must not delay the exit
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        cams = [{"id": "cam", "source": server.url("/cam", userinfo=f"admin:{SECRET}"), "retain_days": 7,
                 "segment_seconds": 2},
                {"id": "silent", "source": f"rtsp://admin:{SECRET}@127.0.0.1:{silent.getsockname()[1]}/x",
                 "retain_days": 7}]
        cfg, app = install(tmp_path, cams, database_url, recorder={"state_interval_s": 0.5, "open_timeout_s": 30})
        try:
            proc = record_process(cfg).start()
            wait_for(lambda: (s := camera_state(app, "cam")) and s["packets"] >= 50, 40, "footage being recorded")
            time.sleep(0.5)  # the silent camera is now inside its 30 s open
            started = time.monotonic()
            proc.signal(signal.SIGTERM)
            code = proc.wait(10)
            took_s = time.monotonic() - started

            assert code == 0, proc.log
            assert took_s < 5, f"exit took {took_s:.2f} s"
            root = app.store.root
            assert not list(root.rglob(f"*{OPEN_SUFFIX}")), "an open segment was left unsealed"
            got = stored(app, "cam")  # every chunk authenticates, the final one included
            assert sorted(app.store.relpath(p) for p in root.rglob(f"*{SUFFIX}")) == sorted(r.path for r, _ in got)
            assert sum(len(ps) for _, ps in got) == camera_state(app, "cam")["packets"]
            assert camera_state(app, "cam")["online"] is False
            assert SECRET not in proc.log and "admin:" not in proc.log
            assert "recorder stopped" in proc.log
        finally:
            app.close()


def test_kill_9_then_restart_recovers_and_loses_at_most_about_a_second(database_url, tmp_path, rtsp_server_factory,
                                                                       h264_clip, record_process):
    server = rtsp_server_factory({"/cam": Mount(h264_clip.path, loop=True, shared=True)})
    cams = [{"id": "cam", "source": server.url("/cam"), "retain_days": 7, "segment_seconds": 60}]
    cfg, app = install(tmp_path, cams, database_url, recorder={"state_interval_s": 0.5})
    try:
        first = record_process(cfg).start()
        wait_for(lambda: (s := camera_state(app, "cam")) and s["packets"] >= 60, 40, "four seconds of footage")
        first.signal(signal.SIGKILL)
        first.wait(5)
        killed_us = time.time_ns() // 1000
        open_files = list(app.store.root.rglob(f"*{OPEN_SUFFIX}"))
        assert len(open_files) == 1 and segments(app, "cam") == []  # the 60 s segment was still open

        second = record_process(cfg).start()
        # the killed process left its state row saying online, so wait for packets stamped after the kill
        wait_for(lambda: len(segments(app, "cam")) >= 1
                 and (camera_state(app, "cam")["last_packet_us"] or 0) > killed_us + 1_000_000, 40,
                 "recovery and recording again")
        second.signal(signal.SIGTERM)
        assert second.wait(10) == 0, second.log

        got = stored(app, "cam")
        recovered = [(r, ps) for r, ps in got if r.recovered]
        assert len(recovered) == 1 and recovered[0][0] is got[0][0]
        ref, packets = recovered[0]
        lost_s = (killed_us - ref.end_us) / 1e6
        assert lost_s <= 1.5, f"lost {lost_s:.2f} s of footage"
        assert [p.pts for p in packets] == sorted(p.pts for p in packets) and packets[0].keyframe
        assert not list(app.store.root.rglob(f"*{OPEN_SUFFIX}"))
        rows = gaps(app, "cam")
        assert len(rows) == 1 and rows[0][0] == ref.end_us and rows[0][2] == "recorder not running"
        assert rows[0][1] == got[1][0].start_us
        assert "recovered" in second.log
    finally:
        app.close()
