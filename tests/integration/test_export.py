"""Export end to end on SQLite and PostgreSQL: real footage (libx264 clips read as
packets by vms.recording.capture) stored encrypted, exported, and the package checked with
tools that are not ours: unzip, ffprobe/ffmpeg, sha256sum -c, openssl pkeyutl."""

from __future__ import annotations

import json
import zipfile

import pytest
from sqlalchemy.orm import Session

from storage.sql import index
from testkit.clips import clip_vcl_payloads, vcl_payloads
from testkit.footage import ensure_signing_key, shift, store_clip, store_packets
from tests.support.export_tools import (
    ffmpeg_decode_errors,
    ffprobe_frames,
    openssl_verify,
    sha256sum_check,
    unpack,
    vms,
)
from vms.core.errors import DomainError, Kind
from vms.evidence.export import ExportRequest, export_package, package_store, start_export
from vms.evidence.jobs import JobRunner, JobState

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z; segments of 2 s, a keyframe every second
S = 1_000_000


@pytest.fixture
def app(appliance_factory, database_url):
    app = appliance_factory(
        [{"id": "entrance", "source": "rtsp://127.0.0.1:1/e", "retain_days": 14},
         {"id": "hall", "source": "rtsp://127.0.0.1:1/h", "retain_days": 30}],
        database_url=database_url,
    )
    ensure_signing_key(app)
    return app


def request(cameras=("entrance",), start_us=T0, end_us=T0 + 10 * S, **kw) -> ExportRequest:
    facts = dict(ticket_id="T-2026-17", description="Bicycle stolen at the entrance, 14:05",
                 legal_basis="GDPR art. 6(1)(f); TV-overvågningsloven § 4 c", requester="olsen",
                 approver="jensen", recipient="Midt- og Vestsjællands Politi")
    facts.update(kw)
    return ExportRequest(cameras=cameras, start_us=start_us, end_us=end_us, **facts)


def download(app, info, path):
    with open(path, "wb") as fh:
        for chunk in package_store(app).open(info.package_id):
            fh.write(chunk)
    return path


def test_package_checks_out_with_stock_tools(app, clip_factory, tmp_path):
    clip = clip_factory.get(seconds=8)
    stored = store_clip(app, "entrance", clip.path, T0)
    info = export_package(app, request(start_us=T0 + 2_500_000, end_us=T0 + 6 * S))
    assert info.size_bytes > 0 and not info.redacted and info.ticket_id == "T-2026-17"
    folder = unpack(download(app, info, tmp_path / info.filename), tmp_path / "x")

    r = sha256sum_check(folder)
    assert r.returncode == 0 and r.stdout.count(": OK") == 7, r.stdout + r.stderr
    for data, sig in (("manifest.json", "manifest.sig"), ("SHA256SUMS", "SHA256SUMS.sig")):
        r = openssl_verify(folder, data, sig)
        assert r.returncode == 0 and "Signature Verified Successfully" in r.stdout, r.stderr

    doc = json.loads((folder / "manifest.json").read_text())
    cam = doc["cameras"][0]
    lead, c = cam["clips"]
    # the window starts at T0+2.5 s, inside the GOP of the keyframe at T0+2 s: the frames from 2.5 s to the
    # next keyframe (3 s) are re-encoded into a lead clip, nothing before 2.5 s is in the package
    in_window = [p for p in stored.packets if T0 + 2_500_000 <= p.wall_us < T0 + 3 * S]
    assert lead["reencoded"] is True and "group of pictures" in lead["reencoded_reason"]
    assert lead["frames"] == len(in_window) == 7 and lead["codec"] == "h264"
    assert lead["first_frame"]["unix_us"] == in_window[0].wall_us >= T0 + 2_500_000
    assert lead["last_frame"]["unix_us"] == in_window[-1].wall_us
    frames, duration_s, codec = ffprobe_frames(folder / lead["file"])
    assert (frames, codec) == (7, "h264") and ffmpeg_decode_errors(folder / lead["file"]) == ""

    kept = [p for p in stored.packets if T0 + 3 * S <= p.wall_us < T0 + 6 * S]
    assert c["first_frame"]["unix_us"] == kept[0].wall_us == T0 + 3 * S and kept[0].keyframe
    assert c["last_frame"]["unix_us"] == kept[-1].wall_us
    assert c["first_frame"]["utc"] == "2026-01-01T00:00:03.000000Z"
    assert c["first_frame"]["local"] == "2026-01-01T01:00:03.000000+01:00"
    assert c["frames"] == len(kept) == 45 and c["reencoded"] is False and "reencoded_reason" not in c
    assert cam["gaps"] == []
    assert doc["software"]["version"] and doc["ticket"]["legal_basis"].startswith("GDPR")
    assert doc["redaction"]["applied"] is False

    frames, duration_s, codec = ffprobe_frames(folder / c["file"])
    assert (frames, codec) == (45, "h264") and duration_s == pytest.approx(3.0, abs=0.01)
    assert c["duration_s"] == pytest.approx(3.0, abs=1e-6)
    assert ffmpeg_decode_errors(folder / c["file"]) == ""
    # not re-encoded: every coded slice is the camera's, bit for bit
    assert clip_vcl_payloads(folder / c["file"]) == [vcl_payloads(p.data, "h264", annexb=True) for p in kept]

    r = vms("export", "verify", tmp_path / info.filename, "--fingerprint", info.key_fingerprint, cwd=tmp_path)
    assert r.returncode == 0 and "OK" in r.stdout, r.stderr


def test_flipped_byte_in_any_file_fails_and_is_named(app, clip_factory, tmp_path):
    store_clip(app, "entrance", clip_factory.get(seconds=4).path, T0)
    info = export_package(app, request())
    package = download(app, info, tmp_path / "p.zip")
    names = zipfile.ZipFile(package).namelist()
    assert len(names) == 8
    for name in names:
        folder = unpack(package, tmp_path / f"u-{len(list(tmp_path.iterdir()))}")
        target = folder / name
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0x04
        target.write_bytes(data)
        stock_ok = (sha256sum_check(folder).returncode == 0
                    and openssl_verify(folder, "manifest.json", "manifest.sig").returncode == 0
                    and openssl_verify(folder, "SHA256SUMS", "SHA256SUMS.sig").returncode == 0)
        assert not stock_ok, f"stock tools accepted a changed {name}"
        r = vms("export", "verify", folder, cwd=tmp_path)  # no VMS_LANG, locale C: Danish, as a Danish recipient reads
        assert r.returncode == 1 and f"FEJL  {name}" in r.stderr, (name, r.stderr)

    # a flipped byte inside the ZIP itself (stored, so the clip's bytes are there as they are)
    with zipfile.ZipFile(package) as z:
        clip_name = next(n for n in names if n.startswith("clips/"))
        zi = z.getinfo(clip_name)
    raw = bytearray(package.read_bytes())
    raw[zi.header_offset + 200] ^= 0x01
    (tmp_path / "bad.zip").write_bytes(raw)
    r = vms("export", "verify", tmp_path / "bad.zip", cwd=tmp_path)
    assert r.returncode == 1 and f"FEJL  {clip_name}" in r.stderr, r.stderr


def test_gaps_are_listed_and_clips_split(app, clip_factory, tmp_path):
    clip = clip_factory.get(seconds=4)
    first = store_clip(app, "entrance", clip.path, T0)
    # the camera came back 3 s after the first run ended, with restarted stream timestamps
    again = shift(list(first.packets), wall_us=7 * S)
    store_packets(app, "entrance", first.stream, again)
    with Session(app.engine) as s, s.begin():
        index.open_gap(s, "entrance", T0 + 4 * S, "stream lost: no packet for 10 s")
        index.close_gap(s, "entrance", T0 + 7 * S)
    info = export_package(app, request(cameras=("entrance", "hall"), start_us=T0, end_us=T0 + 13 * S))
    folder = unpack(download(app, info, tmp_path / "p.zip"), tmp_path / "x")
    doc = json.loads((folder / "manifest.json").read_text())
    entrance, hall = doc["cameras"]
    assert [c["frames"] for c in entrance["clips"]] == [60, 60]
    assert [c["first_frame"]["unix_us"] for c in entrance["clips"]] == [T0, T0 + 7 * S]
    gaps = [(g["source"], g["start"]["unix_us"], g["end"]["unix_us"]) for g in entrance["gaps"]]
    # one outage is one gap: the missing footage between the runs is the gap the recorder logged
    first_end = entrance["clips"][0]["end"]["unix_us"]
    assert abs(first_end - (T0 + 4 * S)) <= 1  # 60 frames at 1/15 s, rounded to the microsecond
    assert gaps == [("recorder", min(first_end, T0 + 4 * S), T0 + 7 * S),
                    ("footage", entrance["clips"][1]["end"]["unix_us"], T0 + 13 * S)]
    assert hall["clips"] == [] and [(g["source"], g["start"]["unix_us"], g["end"]["unix_us"])
                                    for g in hall["gaps"]] == [("footage", T0, T0 + 13 * S)]
    for c in entrance["clips"]:
        frames, duration_s, _ = ffprobe_frames(folder / c["file"])
        assert frames == 60 and duration_s == pytest.approx(4.0, abs=0.01)
    assert "no footage stored" in (folder / "README.txt").read_text()


def test_job_reports_progress_and_the_package_downloads(app, clip_factory, tmp_path):
    store_clip(app, "entrance", clip_factory.get(seconds=8).path, T0)
    runner = JobRunner(clock=app.clock)
    try:
        job = start_export(runner, app, request())
        status = runner.wait(job, 60)
    finally:
        runner.shutdown()
    assert status.state == JobState.SUCCEEDED, status.error
    assert status.percent == 100.0 and status.frames_done == status.frames_total == 120
    info = status.result
    assert package_store(app).info(info.package_id) == info
    data = download(app, info, tmp_path / "p.zip").read_bytes()
    assert len(data) == info.size_bytes and zipfile.ZipFile(tmp_path / "p.zip").testzip() is None
    stored = package_store(app).blob_path(info.package_id).read_bytes()
    assert data[-2000:-1000] not in stored  # encrypted at rest


def test_failed_job_says_why_and_leaves_no_package(app, clip_factory):
    stored = store_clip(app, "entrance", clip_factory.get(seconds=8).path, T0)
    with Session(app.engine) as s:
        ref = index.segment_by_id(s, stored.segment_ids[2])
    app.store.abspath(ref.path).unlink()
    runner = JobRunner(clock=app.clock)
    try:
        status = runner.wait(start_export(runner, app, request()), 60)
    finally:
        runner.shutdown()
    assert status.state == JobState.FAILED and ref.path in status.error and "missing" in status.error
    exports = app.config.data_dir / "exports"
    assert not exports.exists() or list(exports.iterdir()) == []


def test_shredded_day_fails_the_export_saying_the_footage_is_gone(app, clip_factory):
    """A day key shredded while its rows are still indexed (the janitor's sweep in between): the job fails with
    the reason and no package, not an internal error."""
    store_clip(app, "entrance", clip_factory.get(seconds=4).path, T0)
    with Session(app.engine) as s, s.begin():
        assert app.keys.shred(s, index.day_key(s, "entrance", "2026-01-01").id, now_us=app.clock.now_us())
    runner = JobRunner(clock=app.clock)
    try:
        status = runner.wait(start_export(runner, app, request()), 60)
    finally:
        runner.shutdown()
    assert status.state == JobState.FAILED and "day key was shredded" in status.error, status.error
    exports = app.config.data_dir / "exports"
    assert not exports.exists() or list(exports.iterdir()) == []


def test_damaged_segment_fails_the_export_naming_the_file(app, clip_factory):
    stored = store_clip(app, "entrance", clip_factory.get(seconds=4).path, T0)
    with Session(app.engine) as s:
        ref = index.segment_by_id(s, stored.segment_ids[1])
    path = app.store.abspath(ref.path)
    raw = bytearray(path.read_bytes())
    raw[-50] ^= 1
    path.write_bytes(raw)
    runner = JobRunner(clock=app.clock)
    try:
        status = runner.wait(start_export(runner, app, request()), 60)
    finally:
        runner.shutdown()
    assert status.state == JobState.FAILED and path.name in status.error and "chunk" in status.error
    assert list((app.config.data_dir / "exports").iterdir()) == []


def test_bad_requests_are_refused(app):
    with pytest.raises(DomainError) as exc:
        export_package(app, request(cameras=("garage",)))
    assert exc.value.kind == Kind.NOT_FOUND and "garage" in exc.value.message
    for bad in (dict(start_us=T0, end_us=T0), dict(cameras=()), dict(approver="olsen"), dict(legal_basis=""),
                dict(cameras=("hall", "hall"))):
        with pytest.raises(DomainError) as exc:
            request(**bad)
        assert exc.value.kind == Kind.INVALID


def test_cancelled_export_leaves_nothing(app, clip_factory):
    from vms.evidence.jobs import JobCancelled

    store_clip(app, "entrance", clip_factory.get(seconds=8).path, T0)

    class StopHalfway:
        def update(self, frames_done, frames_total=None, message=None):
            if frames_done >= 50:
                raise JobCancelled()

    with pytest.raises(JobCancelled):
        export_package(app, request(), StopHalfway())
    assert list((app.config.data_dir / "exports").iterdir()) == []
    assert package_store(app).list() == []


def test_hevc_is_exported_as_recorded(app, hevc_clip, tmp_path):
    stored = store_clip(app, "hall", hevc_clip.path, T0)
    info = export_package(app, request(cameras=("hall",)))
    folder = unpack(download(app, info, tmp_path / "p.zip"), tmp_path / "x")
    (c,) = json.loads((folder / "manifest.json").read_text())["cameras"][0]["clips"]
    frames, duration_s, codec = ffprobe_frames(folder / c["file"])
    assert (c["codec"], codec, frames, c["frames"]) == ("hevc", "hevc", 60, 60)
    assert duration_s == pytest.approx(4.0, abs=0.01) and ffmpeg_decode_errors(folder / c["file"]) == ""
    assert clip_vcl_payloads(folder / c["file"]) == [vcl_payloads(p.data, "hevc", annexb=True) for p in stored.packets]
