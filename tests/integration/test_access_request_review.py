"""A request of access's export is watched on the appliance before it is approved, and the ticket page's form
for the export for the data subject checks its box (docs/design/access-requests.md).

Real footage (two people crossing a room, stored as the recorder stores it), SQLite and PostgreSQL:
``GET /api/packages/{id}/clips/{n}`` gives a reviewing manager exactly the bytes of the package's clip (whole
or a byte range), audited once per viewing; the requester, an operator and a package exported as recorded are
refused; the page's form refuses a box outside the frame, without a size, or without a frame, with a 422 page
that says why in Danish."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from sqlalchemy.orm import Session

from storage.sql import audit as audit_store
from testkit.footage import ensure_signing_key, store_clip
from testkit.media import two_people_clip
from tests.support.api_env import iso, make_api_env
from tests.support.delivery_env import ExportEnv
from vms.evidence.export import package_store

S = 1_000_000
DAY = 86_400 * S
FPS, SECONDS, W, H = 8, 3, 320, 192
ZONE = {"zones": [{"x": 0.0, "y": 0.9, "width": 0.1, "height": 0.1}]}  # redacted, and quick


@pytest.fixture
def review_env(appliance_factory, database_url, fake_clock, tmp_path):
    clip, boxes = two_people_clip(tmp_path / "two.mp4", seconds=SECONDS, fps=FPS, width=W, height=H, face_px=64)
    env = make_api_env(appliance_factory, database_url, fake_clock)
    ensure_signing_key(env.app)
    start = env.clock.now_us() - 600 * S
    stored = store_clip(env.app, "entrance", clip, start)
    body = {"cameras": ["entrance"], "start": iso(start), "end": iso(start + SECONDS * S),
            "description": "A visitor asks for the recordings of themselves at the entrance",
            "purpose": "Answer the visitor's request of access", "legal_basis": "GDPR art. 15",
            "action": "export", "recipient": "data_subject", "received": iso(env.clock.now_us() - DAY)}
    r = env.client("max").post("/api/tickets", json=body)
    assert r.status_code == 201, r.text
    env.approve(r.json()["id"], "mia")
    return ExportEnv(env, stored, r.json()), boxes


def _clip_bytes(x: ExportEnv, package_id: str) -> tuple[str, bytes]:
    with zipfile.ZipFile(_zip(x, package_id)) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".mp4")]
        return name, zf.read(name)


def _zip(x: ExportEnv, package_id: str):
    return io.BytesIO(b"".join(package_store(x.app).open(package_id)))


def _previews(x: ExportEnv) -> list[audit_store.AuditRow]:
    with Session(x.app.engine) as s:
        return list(audit_store.search(s, action="package.preview", limit=100))


def test_another_manager_watches_the_clip_before_approving_it(review_env):
    x, _ = review_env
    package = x.export("max", redaction=ZONE)["package_id"]
    name, clip = _clip_bytes(x, package)
    mia = x.env.client("mia")
    r = mia.get(f"/api/packages/{package}/clips/0")
    assert r.status_code == 200, r.text
    assert r.content == clip and r.headers["content-type"] == "video/mp4"
    assert r.headers["accept-ranges"] == "bytes" and r.headers["cache-control"] == "no-store"
    assert r.headers["x-content-type-options"] == "nosniff"
    part = mia.get(f"/api/packages/{package}/clips/0", headers={"Range": "bytes=1000-"})
    assert part.status_code == 206 and part.content == clip[1000:]
    assert part.headers["content-range"] == f"bytes 1000-{len(clip) - 1}/{len(clip)}"
    middle = mia.get(f"/api/packages/{package}/clips/0", headers={"Range": "bytes=10-19"})
    assert middle.status_code == 206 and middle.content == clip[10:20]
    first = mia.get(f"/api/packages/{package}/clips/0", headers={"Range": "bytes=0-"})
    assert first.status_code == 206 and first.content == clip
    ok = [(e.actor, e.object, e.detail) for e in _previews(x) if e.outcome == "ok"]
    assert ok == [("mia", f"package:{package}", f"clip={name}")] * 2  # the two viewings from byte 0, not the seeks
    past = mia.get(f"/api/packages/{package}/clips/0", headers={"Range": f"bytes={len(clip)}-"})
    assert past.status_code == 422 and "outside" in past.json()["detail"]
    missing = mia.get(f"/api/packages/{package}/clips/1")
    assert missing.status_code == 404 and "1 video file" in missing.json()["detail"]
    r = mia.post(f"/api/packages/{package}/release", json={"reason": "Watched it: only the visitor can be seen"})
    assert r.status_code == 204, r.text


def test_the_requester_an_operator_and_an_unredacted_package_are_refused(review_env):
    x, _ = review_env
    package = x.export("max", redaction=ZONE)["package_id"]
    own = x.env.client("max").get(f"/api/packages/{package}/clips/0")
    assert own.status_code == 403 and "another manager" in own.json()["detail"]
    assert own.json()["message_id"] == "refused.release_own"
    assert x.env.client("olga").get(f"/api/packages/{package}/clips/0").status_code == 403
    plain = x.export("max")["package_id"]
    r = x.env.client("mia").get(f"/api/packages/{plain}/clips/0")
    assert r.status_code == 409 and "everyone as recorded" in r.json()["detail"]
    refused = [(e.actor, e.outcome.startswith("refused")) for e in _previews(x)]
    assert sorted(refused) == [("max", True), ("mia", True)]  # the operator's role is refused at the door
    r = x.env.client("max").post(f"/api/packages/{package}/release", json={"reason": "x"})
    assert r.status_code == 403 and r.json()["message_id"] == "refused.release_own"


def test_the_ticket_page_shows_the_box_form_and_the_preview(review_env):
    x, _ = review_env
    t = x.ticket["id"]
    page = x.env.client("max").get(f"/tickets/{t}").text
    assert 'id="subject-export"' in page and 'name="subject_x"' in page and "forbliver synlig" in page
    package = x.export("max", redaction=ZONE)["package_id"]
    own = x.env.client("max").get(f"/tickets/{t}").text
    assert f"/api/packages/{package}/clips/0" not in own and "Du kan ikke godkende pakken" in own
    other = x.env.client("mia").get(f"/tickets/{t}").text
    assert f'src="/api/packages/{package}/clips/0"' in other and f'action="/packages/{package}/release"' in other


@pytest.mark.parametrize("change,status,words", [
    ({"subject_x": "0.8", "subject_width": "0.3"}, 422, "uden for billedet"),
    ({"subject_width": "0"}, 422, "ingen størrelse"),
    ({"subject_height": "-0.1"}, 422, "Højde skal være et tal fra 0 til 1"),
    ({"subject_y": "abc"}, 422, "»abc«"),
    ({"subject_at": ""}, 422, "Vis et billede"),
    ({"subject_at": "2026-12-04T10:00:00"}, 422, "Vis et billede"),  # no time zone
    ({"subject_camera": "hall"}, 422, "et af sagens kameraer"),
    ({"subject_at": "2001-01-01T00:00:00Z"}, 422, "inden for sagens tidsrum"),  # outside the window
])
def test_the_page_refuses_a_box_that_does_not_fit_the_frame(review_env, change, status, words):
    x, _ = review_env
    max_ = x.env.client("max")
    form = {"subject_camera": "entrance", "subject_at": iso(x.start_us + S), "subject_x": "0.1", "subject_y": "0.1",
            "subject_width": "0.3", "subject_height": "0.4", "csrf_token": max_.headers["X-CSRF-Token"]} | change
    r = max_.post(f"/tickets/{x.ticket['id']}/export", data=form, follow_redirects=False)
    assert r.status_code == status, r.text[:300]
    assert words in r.text and r.headers["content-type"].startswith("text/html")
    assert x.env.client("max").get(f"/api/tickets/{x.ticket['id']}/exports").json() == []


def test_the_page_starts_the_export_for_the_data_subject(review_env):
    x, boxes = review_env
    max_ = x.env.client("max")
    (x1, y1, x2, y2) = boxes[FPS][0]  # the first person, one second in
    form = {"subject_camera": "entrance", "subject_at": iso(x.start_us + S), "subject_x": f"{x1 / W:.4f}",
            "subject_y": f"{y1 / H:.4f}", "subject_width": f"{(x2 - x1) / W:.4f}",
            "subject_height": f"{(y2 - y1) / H:.4f}".replace(".", ","),  # a Danish decimal comma is read too
            "csrf_token": max_.headers["X-CSRF-Token"]}
    r = max_.post(f"/tickets/{x.ticket['id']}/export", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text[:300]
    (job,) = max_.get(f"/api/tickets/{x.ticket['id']}/exports").json()
    final = x.wait_job(job["job_id"], "max", timeout_s=120)["final"]
    assert final["state"] == "succeeded", final
    with zipfile.ZipFile(_zip(x, final["package_id"])) as zf:
        subject = json.loads(zf.read("manifest.json"))["redaction"]["data_subject"]
    assert subject["camera"] == "entrance" and subject["marked_at_us"] == x.start_us + S
    assert subject["box"]["x"] == pytest.approx(x1 / W, abs=1e-4)
