"""Data subjects' requests of access (issue 17.4): the ticket, its hold and deadline, the export that keeps
only the subject visible (measured with the face detector on the output), and the manager's approval before
delivery.  Real footage: two people (the public-domain astronaut portrait and a mirrored, tinted copy)
crossing a still room, stored as the recorder stores it; SQLite and PostgreSQL for the ticket rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from api.web.render import input_local
from storage.sql import index
from testkit.footage import ensure_signing_key, store_clip
from testkit.media import decoded_frames, two_people_clip
from tests.support.api_env import iso, make_api_env
from tests.support.delivery_env import ExportEnv
from tests.support.export_tools import openssl_verify, sha256sum_check, unpack
from vms.access import requests
from vms.evidence.export import ExportRequest, export_package, package_store
from vms.evidence.redact import FaceDetector, RedactionOptions
from vms.evidence.subject import Subject

S = 1_000_000
DAY = 86_400 * S
FPS, SECONDS, W, H = 8, 5, 640, 360  # 40 frames: the face detector runs four times over each (slow on purpose)


@pytest.fixture(scope="module")
def two_people(tmp_path_factory):
    return two_people_clip(tmp_path_factory.mktemp("people") / "two.mp4", seconds=SECONDS, fps=FPS, width=W,
                           height=H, face_px=110)


def _centre_in(box, det) -> bool:
    cx, cy = (det[0] + det[2]) / 2, (det[1] + det[3]) / 2
    return box[0] <= cx <= box[2] and box[1] <= cy <= box[3]


def _measure(frames, boxes) -> tuple[float, float]:
    """Share of frames where the subject's face is still found, and where the other's face is not."""
    detector = FaceDetector(threshold=0.5)
    subject_seen = other_hidden = 0
    for img, (subject_box, other_box) in zip(frames, boxes, strict=True):
        found = [b for b, _ in detector.detect(img)]
        subject_seen += any(_centre_in(subject_box, b) for b in found)
        other_hidden += not any(_centre_in(other_box, b) for b in found)
    return subject_seen / len(frames), other_hidden / len(frames)


def test_the_export_keeps_the_subject_and_hides_the_other_person(appliance_factory, two_people, tmp_path):
    clip, boxes = two_people
    assert _measure(decoded_frames(clip), boxes) == (1.0, 0.0)  # both faces are found in every source frame
    app = appliance_factory([{"id": "desk", "source": "rtsp://127.0.0.1:1/d", "retain_days": 14}])
    ensure_signing_key(app)
    t0 = app.clock.now_us() - 3600 * S
    store_clip(app, "desk", clip, t0)
    # the operator marks the first person in the frame at 3 s, a little generously
    (x1, y1, x2, y2) = boxes[3 * FPS][0]
    subject = Subject("desk", t0 + 3 * S, max(0, x1 - 15) / W, max(0, y1 - 10) / H, (x2 - x1 + 30) / W,
                      (y2 - y1 + 30) / H)
    req = ExportRequest("7", "Request of access", "GDPR art. 15", "olga", "mia", "the data subject", ("desk",),
                        t0, t0 + SECONDS * S, redaction=RedactionOptions(subject=subject))
    info = export_package(app, req)
    package = tmp_path / "p.zip"
    package.write_bytes(b"".join(package_store(app).open(info.package_id)))
    folder = unpack(package, tmp_path / "x")
    doc = json.loads((folder / "manifest.json").read_text())
    (record,) = doc["cameras"][0]["clips"]
    assert doc["redaction"]["data_subject"]["camera"] == "desk" and record["reencoded"] is True
    assert sha256sum_check(folder).returncode == 0
    assert openssl_verify(folder, "manifest.json", "manifest.sig").returncode == 0
    out = decoded_frames(folder / record["file"])
    assert len(out) == len(boxes)
    seen, hidden = _measure(out, boxes)
    print(f"data subject visible in {seen:.1%} of frames, the other person hidden in {hidden:.1%}")
    assert seen >= 0.95 and hidden >= 0.95


def test_the_deadline_is_one_calendar_month_at_the_end_of_the_day():
    jan31 = int(datetime(2026, 1, 31, 10, tzinfo=UTC).timestamp()) * S
    assert datetime.fromtimestamp(requests.deadline_us(jan31, "UTC") / S, UTC) == datetime(2026, 2, 28, 23, 59, 59,
                                                                                            tzinfo=UTC)
    dec15 = int(datetime(2026, 12, 15, 23, 30, tzinfo=UTC).timestamp()) * S  # 00:30 on the 16th in Copenhagen
    end = datetime.fromtimestamp(requests.deadline_us(dec15, "Europe/Copenhagen") / S, UTC)
    assert end == datetime(2027, 1, 16, 22, 59, 59, tzinfo=UTC)


@pytest.fixture
def request_env(appliance_factory, database_url, fake_clock, two_people):
    env = make_api_env(appliance_factory, database_url, fake_clock)
    ensure_signing_key(env.app)
    start = env.clock.now_us() - 600 * S
    stored = store_clip(env.app, "entrance", two_people[0], start)
    return env, stored, start


def _file_request(env, who: str, start: int, **kw) -> dict:
    body = {"cameras": ["entrance"], "start": iso(start), "end": iso(start + SECONDS * S),
            "description": "A visitor asks for the recordings of themselves at the entrance on Monday",
            "purpose": "Answer the visitor's request of access", "legal_basis": "GDPR art. 15",
            "action": "export", "recipient": "data_subject", "received": iso(env.clock.now_us() - 2 * DAY)} | kw
    return env.client(who).post("/api/tickets", json=body)


def _holds_in_force(env) -> list:
    with Session(env.app.engine) as s:
        return index.active_holds(s, env.clock.now_us(), env.app.config.api.hold_grace_days * DAY, "entrance")


def test_a_request_is_held_from_filing_until_closed_and_says_when_it_is_due(request_env):
    env, _, start = request_env
    r = _file_request(env, "olga", start)
    assert r.status_code == 201, r.text
    t = r.json()
    assert t["received_at"] and t["deadline"] and t["deadline"] > t["received_at"]
    assert [(h.start_us, h.end_us) for h in _holds_in_force(env)] == [(start, start + SECONDS * S)]  # before any decision
    assert len(env.client("olga").get(f"/api/tickets/{t['id']}/holds").json()) == 1
    env.approve(t["id"], "mia")
    assert len(_holds_in_force(env)) == 1  # approval placed no second hold
    listed = env.client("mia").get("/api/tickets").json()["items"]
    assert [x["received_at"] is not None for x in listed if x["id"] == t["id"]] == [True]
    r = env.client("olga").post(f"/api/tickets/{t['id']}/close", json={"reason": "Answered; the visitor has the clip"})
    assert r.status_code == 200, r.text
    env.advance(env.app.config.api.hold_grace_days * 86400 + 1)
    assert _holds_in_force(env) == []


def test_a_denied_request_releases_its_hold(request_env):
    env, _, start = request_env
    t = _file_request(env, "olga", start).json()
    r = env.client("mia").post(f"/api/tickets/{t['id']}/deny", json={"reason": "Not a request about this site"})
    assert r.status_code == 200, r.text
    env.advance(env.app.config.api.hold_grace_days * 86400 + 1)
    assert _holds_in_force(env) == []


@pytest.mark.parametrize("change,words", [
    ({"received": "2099-01-01T00:00:00Z"}, "future"),
    ({"action": "view"}, "recipient 'data_subject'"),
    ({"recipient": "police"}, "recipient 'data_subject'"),
    ({"received": "2020-01-01T00:00:00Z"}, "days ago"),
])
def test_a_wrong_request_is_refused_with_a_reason(request_env, change, words):
    env, _, start = request_env
    r = _file_request(env, "olga", start, **change)
    assert r.status_code == 422, r.text
    assert words in r.json()["detail"]
    assert _holds_in_force(env) == []


def test_the_export_is_delivered_only_after_another_manager_approved_it(request_env, two_people):
    env, stored, start = request_env
    t = _file_request(env, "max", start).json()
    env.approve(t["id"], "mia")
    x = ExportEnv(env, stored, t)
    (x1, y1, x2, y2) = two_people[1][2 * FPS][0]
    subject = {"camera": "entrance", "at": iso(start + 2 * S), "x": x1 / W, "y": y1 / H,
               "width": (x2 - x1) / W, "height": (y2 - y1) / H}
    bad = x.start_export("max", redaction={"subject": subject | {"camera": "hall"}})
    assert bad.status_code == 422 and "ticket's cameras" in bad.json()["detail"]
    plain = x.export("max")["package_id"]  # as recorded: never to be released to a data subject
    r = env.client("mia").post(f"/api/packages/{plain}/release", json={"reason": "Reviewed it"})
    assert r.status_code == 409 and "everyone as recorded" in r.json()["detail"], r.text
    # (the export that keeps the subject is measured above; a privacy zone keeps this one quick)
    package = x.export("max", redaction={"zones": [{"x": 0.0, "y": 0.9, "width": 0.1, "height": 0.1}]})["package_id"]
    r = env.client("max").post(f"/api/packages/{package}/deliveries", json={"recipient": "the visitor"})
    assert r.status_code == 409 and "approve it for the data subject" in r.json()["detail"], r.text
    r = env.client("max").post(f"/api/packages/{package}/release", json={"reason": "Reviewed: only the visitor shows"})
    assert r.status_code == 403 and "another manager" in r.json()["detail"]
    assert env.client("olga").post(f"/api/packages/{package}/release", json={"reason": "x"}).status_code == 403
    r = env.client("mia").post(f"/api/packages/{package}/release", json={"reason": "Reviewed: only the visitor shows"})
    assert r.status_code == 204, r.text
    assert x.link(package, "max", recipient="the visitor")["url"]
    released = [e for e in x.audit("package.release") if e.outcome == "ok"]
    assert [(e.actor, e.object) for e in released] == [("mia", f"package:{package}")]


def test_the_pages_file_a_request_show_its_deadline_and_let_another_manager_approve_the_export(request_env):
    env, stored, start = request_env
    olga, mia = env.client("olga"), env.client("mia")
    day = datetime.fromtimestamp((env.clock.now_us() - 3 * DAY) / S, UTC).astimezone(
        ZoneInfo(env.app.config.timezone)).date().isoformat()
    minute = start // (60 * S) * 60 * S  # the form takes minutes
    form = {"cameras": "entrance", "start": input_local(env.app, minute), "end": input_local(env.app, minute + 120 * S),
            "description": "A visitor asks for the recordings of themselves", "purpose": "Answer the request",
            "legal_basis": "GDPR art. 15", "action": "export", "recipient": "data_subject", "received": day,
            "csrf_token": olga.headers["X-CSRF-Token"]}
    r = olga.post("/tickets/new", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = olga.get(r.headers["location"]).text
    assert 'id="access-request"' in page and "skal besvares senest" in page
    ticket_id = int(r.headers["location"].split("/")[2].split("?")[0])
    assert len(_holds_in_force(env)) == 1
    env.approve(ticket_id, "mia")
    x = ExportEnv(env, stored, {"id": ticket_id})
    package = x.export("olga", redaction={"zones": [{"x": 0.0, "y": 0.9, "width": 0.1, "height": 0.1}]})["package_id"]
    page = mia.get(f"/tickets/{ticket_id}").text
    assert f'action="/packages/{package}/release"' in page
    r = mia.post(f"/packages/{package}/release", data={"reason": "Only the visitor can be recognised",
                                                       "csrf_token": mia.headers["X-CSRF-Token"]},
                 follow_redirects=False)
    assert r.status_code == 303, r.text
    page = mia.get(f"/tickets/{ticket_id}").text
    assert f'data-released="{package}"' in page and f'action="/packages/{package}/release"' not in page
