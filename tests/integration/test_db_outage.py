"""The database goes away under load and comes back: nothing recorded is lost.

PostgreSQL is reached through a TCP proxy the test cuts for longer than the
recorder's own indexing retries (as a database restart or failover does), then
restores.  Recording goes on through the outage (the day key in use is kept),
every segment sealed meanwhile ends up in the index once it is back, and the
packets stored are every packet received.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy.engine import make_url

from storage.format.segment import SUFFIX
from testkit.recording import camera_state, recording, segments, wait_for
from testkit.rtsp_server import Mount
from testkit.tcp_proxy import TcpProxy
from vms.core.clock import Clock
from vms.recording.recorder import Recorder

pytestmark = pytest.mark.rtsp


def test_recording_survives_a_database_outage(postgres_url, appliance_factory, rtsp_server_factory, h264_clip):
    server = rtsp_server_factory({"/cam": Mount(h264_clip.path, loop=True, shared=True)})
    url = make_url(postgres_url)
    proxy = TcpProxy(url.port or 5432).start()
    through_proxy = url.set(port=proxy.port).render_as_string(hide_password=False)
    app = appliance_factory([{"id": "cam", "source": server.url("/cam"), "retain_days": 7, "segment_seconds": 2}],
                            database_url=through_proxy, clock=Clock(), recorder={"state_interval_s": 0.5})
    try:
        recorder = Recorder(app)
        with recording(recorder):
            wait_for(lambda: len(segments(app, "cam")) >= 2, 30, "two segments before the outage")
            proxy.cut()
            time.sleep(8)  # longer than the recorder's own retries of one index insert
            proxy.restore()
            wait_for(lambda: (s := camera_state(app, "cam")) and s["online"] and len(segments(app, "cam")) >= 6,
                     40, "recording and indexing again after the outage")
        files = sorted(p.relative_to(app.store.root).as_posix() for p in app.store.root.rglob(f"*{SUFFIX}"))
        indexed = sorted(r.path for r in segments(app, "cam"))
        assert indexed == files, "every sealed segment is in the index"
        refs = sorted(segments(app, "cam"), key=lambda r: r.start_us)
        holes = [b.start_us - a.end_us for a, b in zip(refs, refs[1:], strict=False)]
        assert max(holes) < 500_000, f"recording went on through the outage (holes {holes} us)"
        received = recorder.cameras["cam"].stats.packets
        assert sum(r.packets for r in segments(app, "cam")) == received
    finally:
        proxy.close()
