"""Redaction through the exporter: a clip with a clearly visible face (the public-domain
astronaut portrait) is stored, exported with redaction, and checked: the detector
finds the face in every frame before, none after; zones are black; moving things are
pixelated; the package still verifies with stock tools."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from testkit.footage import ensure_signing_key, store_clip
from testkit.media import decoded_frames, face_clip
from tests.support.export_tools import ffprobe_frames, openssl_verify, sha256sum_check, unpack
from vms.core.errors import DomainError
from vms.evidence.export import ExportRequest, export_package, package_store
from vms.evidence.redact import FaceDetector, RedactionOptions, Zone

T0 = 1_767_225_600_000_000
S = 1_000_000
CHECK_THRESHOLD = 0.5  # the detector's usual operating point, before and after alike


@pytest.fixture
def app(appliance_factory):
    app = appliance_factory([{"id": "desk", "source": "rtsp://127.0.0.1:1/d", "retain_days": 14}])
    ensure_signing_key(app)
    return app


@pytest.fixture(scope="module")
def face_video(tmp_path_factory):
    return face_clip(tmp_path_factory.mktemp("face") / "face.mp4", seconds=3)


def export(app, tmp_path, redaction: RedactionOptions):
    req = ExportRequest("T-9", "Data subject access request", "GDPR art. 15", "olsen", "jensen",
                        "the data subject", ("desk",), T0, T0 + 3 * S, redaction=redaction)
    before = {p for p in app.config.data_dir.rglob("*")}
    info = export_package(app, req)
    new = {p for p in app.config.data_dir.rglob("*")} - before
    # nothing but the encrypted package and its sidecar was written: no clear clip anywhere
    assert {p.name for p in new if p.is_file()} == {f"{info.package_id}.vpkg", f"{info.package_id}.json"}
    package = tmp_path / "p.zip"
    package.write_bytes(b"".join(package_store(app).open(info.package_id)))
    folder = unpack(package, tmp_path / "x")
    doc = json.loads((folder / "manifest.json").read_text())
    (clip,) = doc["cameras"][0]["clips"]
    return folder, doc, clip


def test_faces_found_before_and_none_after(app, face_video, tmp_path):
    detector = FaceDetector(threshold=CHECK_THRESHOLD)
    source = decoded_frames(face_video)
    found = [detector.detect(f) for f in source]
    assert all(len(d) == 1 for d in found), "the test clip must show one clearly visible face in every frame"
    store_clip(app, "desk", face_video, T0)

    folder, doc, clip = export(app, tmp_path, RedactionOptions(faces=True))
    assert doc["redaction"]["applied"] is True and doc["redaction"]["faces"]["threshold"] == 0.2
    assert len(doc["redaction"]["faces"]["model_sha256"]) == 64
    assert clip["reencoded"] is True and clip["codec"] == "h264" and clip["frames"] == len(source)
    counts = clip["redaction_counts"]
    assert counts["frames"] == counts["frames_with_faces"] == len(source) and counts["face_boxes"] >= len(source)
    frames, duration_s, codec = ffprobe_frames(folder / clip["file"])
    assert (frames, codec) == (len(source), "h264") and duration_s == pytest.approx(3.0, abs=0.01)
    assert sha256sum_check(folder).returncode == 0
    assert openssl_verify(folder, "manifest.json", "manifest.sig").returncode == 0

    redacted = decoded_frames(folder / clip["file"])
    assert len(redacted) == len(source)
    after = [detector.detect(f) for f in redacted]
    assert sum(map(len, after)) == 0, [d for d in after if d]
    # not even at the low threshold the redaction itself uses
    eager = FaceDetector(threshold=doc["redaction"]["faces"]["threshold"])
    assert sum(len(eager.detect(f)) for f in redacted) == 0
    # the rest of the picture is kept: away from the face the frames still match the source
    for src, red, faces in zip(source, redacted, found, strict=True):
        (x1, y1, x2, y2), _ = faces[0]
        assert np.abs(src[y1:y2, x1:x2].astype(int) - red[y1:y2, x1:x2]).mean() > 10
        assert np.abs(src[:, -150:].astype(int) - red[:, -150:]).mean() < 6
    assert "faces blurred" in (folder / "README.txt").read_text()


def test_privacy_zone_is_black_and_moving_things_are_pixelated(app, face_video, tmp_path):
    store_clip(app, "desk", face_video, T0)
    zone = Zone(0.75, 0.0, 0.25, 0.5)
    folder, doc, clip = export(app, tmp_path, RedactionOptions(moving=True, zones=(zone,)))
    assert doc["redaction"]["privacy_zones"] == [{"x": 0.75, "y": 0.0, "width": 0.25, "height": 0.5, "fill": "black"}]
    assert doc["redaction"]["faces"] is None and doc["redaction"]["moving_objects"]
    source, redacted = decoded_frames(face_video), decoded_frames(folder / clip["file"])
    h, w = redacted[0].shape[:2]
    for frame in redacted:
        assert frame[: h // 2 - 4, int(0.75 * w) + 4 :].max() < 40  # black, up to coding noise
    # the portrait moves: from the second second on (background learnt) its detail is gone
    def detail(img):
        return cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()
    for i in range(20, len(source)):
        x = 20 + i * 4
        box = (slice(30, 330), slice(x + 20, x + 280))
        assert detail(redacted[i][box]) < 0.25 * detail(source[i][box]), i


def test_bad_zone_is_refused():
    for bad in ((0.5, 0.5, 0.6, 0.1), (-0.1, 0, 0.5, 0.5), (0, 0, 0, 0.5)):
        with pytest.raises(DomainError, match="fractions of the picture"):
            Zone(*bad)
