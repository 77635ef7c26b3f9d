"""The issue's whole path with real parts: GStreamer's RTSP server plays a clip, the
recorder stores it, the export of a window is checked with ffprobe, sha256sum and
openssl, and `vms export verify` accepts the package; on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from testkit.footage import ensure_signing_key
from testkit.recording import recording, stored, wait_for
from testkit.rtsp_server import Mount
from tests.support.export_tools import ffprobe_frames, openssl_verify, sha256sum_check, unpack, vms
from vms.core.clock import Clock
from vms.evidence.export import ExportRequest, export_package, package_store
from vms.recording.recorder import Recorder

pytestmark = pytest.mark.rtsp


def record_clip_from_rtsp(database_url, appliance_factory, rtsp_server_factory, clip_factory):
    """An appliance (with its signing key) that recorded 8 s of a clip from the RTSP server as 2 s
    segments; returns (app, every stored packet)."""
    clip = clip_factory.get(seconds=8)  # 120 packets, a keyframe every 15
    server = rtsp_server_factory({"/cam": Mount(clip.path)})  # plays once, then ends
    app = appliance_factory(
        [{"id": "cam", "source": server.url("/cam"), "retain_days": 7, "segment_seconds": 2}],
        database_url=database_url, recorder={"backoff_initial_s": 60, "backoff_max_s": 60}, clock=Clock())
    ensure_signing_key(app)
    rec = Recorder(app)
    with recording(rec):
        wait_for(lambda: rec.cameras["cam"].stats.last_error == "stream ended", 40, "the end of the stream")
    packets = [p for _, ps in stored(app, "cam") for p in ps]
    assert len(packets) == clip.packets
    return app, packets


def test_recorded_from_rtsp_then_exported(database_url, appliance_factory, rtsp_server_factory, clip_factory,
                                          tmp_path):
    app, packets = record_clip_from_rtsp(database_url, appliance_factory, rtsp_server_factory, clip_factory)

    # a window from the middle of the 4th frame of second 2 to the 10th frame of second 6
    start_us, end_us = packets[33].wall_us + 1, packets[99].wall_us + 1
    info = export_package(app, ExportRequest("T-1", "incident", "GDPR art. 6(1)(f)", "olsen", "jensen", "Politi",
                                             ("cam",), start_us, end_us))
    package = tmp_path / info.filename
    package.write_bytes(b"".join(package_store(app).open(info.package_id)))
    folder = unpack(package, tmp_path / "x")
    assert sha256sum_check(folder).returncode == 0
    assert openssl_verify(folder, "manifest.json", "manifest.sig").returncode == 0
    assert openssl_verify(folder, "SHA256SUMS", "SHA256SUMS.sig").returncode == 0

    doc = json.loads((folder / "manifest.json").read_text())
    lead, clip_doc = doc["cameras"][0]["clips"]
    # the window starts after packet 33, inside the GOP of keyframe 30: packets 34-44 are re-encoded into a
    # lead clip, 45 (the next keyframe) to 99 (the last before the end) are copied
    assert packets[30].keyframe and packets[45].keyframe and not any(p.keyframe for p in packets[31:45])
    assert lead["reencoded"] and lead["frames"] == 11 and lead["first_frame"]["unix_us"] == packets[34].wall_us
    assert ffprobe_frames(folder / lead["file"])[0] == 11
    kept = packets[45:100]
    assert clip_doc["first_frame"]["unix_us"] == kept[0].wall_us
    assert clip_doc["last_frame"]["unix_us"] == kept[-1].wall_us
    assert clip_doc["frames"] == len(kept) == 55 and not clip_doc["reencoded"]
    frames, duration_s, codec = ffprobe_frames(folder / clip_doc["file"])
    expected_s = (kept[-1].pts - kept[0].pts + kept[-1].duration) / 90_000
    assert (frames, codec) == (55, "h264") and duration_s == pytest.approx(expected_s, abs=0.002)
    assert doc["cameras"][0]["gaps"] == []  # the stream ended after the window

    r = vms("export", "verify", package, "--fingerprint", info.key_fingerprint, cwd=tmp_path)
    assert r.returncode == 0, r.stderr


def test_rtsp_footage_through_a_ticket_the_api_and_a_link_checked_with_stock_tools(
        database_url, appliance_factory, rtsp_server_factory, clip_factory, tmp_path):
    """As people do it: recorded from the RTSP server, a ticket filed by an operator and approved by a
    manager, the export run as a job through the API, a delivery link made, the package downloaded by a
    recipient without an account; then ffprobe, sha256sum -c and openssl pkeyutl -verify on what arrived,
    and a flipped byte in the clip makes sha256sum fail."""
    from sqlalchemy.orm import Session

    from api.app import create_app
    from storage.sql import index
    from tests.support.api_env import USERS, ApiEnv, password_hash
    from tests.support.delivery_env import ExportEnv, token_path

    app, packets = record_clip_from_rtsp(database_url, appliance_factory, rtsp_server_factory, clip_factory)
    with Session(app.engine) as s, s.begin():
        for name, role in USERS.items():
            index.add_user(s, name, role=role, password_hash=password_hash(), now_us=app.clock.now_us(),
                           must_change=False)
    env = ApiEnv(app, create_app(app), app.clock)
    start_us, end_us = packets[33].wall_us + 1, packets[99].wall_us + 1
    ticket = env.file_ticket("olga", cameras=["cam"], start_us=start_us, end_us=end_us, action="export")
    env.approve(ticket["id"], "mia")
    x = ExportEnv(env, None, ticket)
    job = x.export("olga")
    link = x.link(job["package_id"], "mia", generate_passcode=True)
    r = env.anonymous().post(token_path(link["url"]), json={"passcode": link["passcode"]})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip", r.text
    package = tmp_path / "package.zip"
    package.write_bytes(r.content)

    folder = unpack(package, tmp_path / "x")
    assert sha256sum_check(folder).returncode == 0
    assert openssl_verify(folder, "manifest.json", "manifest.sig").returncode == 0
    doc = json.loads((folder / "manifest.json").read_text())
    t = doc["ticket"]
    assert (t["id"], t["requester"], t["approver"], t["recipient"]) == (str(ticket["id"]), "olga", "mia", "police")
    _lead, clip_doc = doc["cameras"][0]["clips"]
    frames, duration_s, codec = ffprobe_frames(folder / clip_doc["file"])
    kept = packets[45:100]
    expected_s = (kept[-1].pts - kept[0].pts + kept[-1].duration) / 90_000
    assert (frames, codec) == (55, "h264") and duration_s == pytest.approx(expected_s, abs=0.002)
    data = bytearray((folder / clip_doc["file"]).read_bytes())
    data[len(data) // 2] ^= 0x01
    (folder / clip_doc["file"]).write_bytes(bytes(data))
    assert sha256sum_check(folder).returncode != 0
