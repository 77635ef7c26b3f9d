"""Export through the API on SQLite and PostgreSQL, with real footage: file and approve
an export ticket, start the export, poll its progress, list the package; refusals
(unapproved, view-only, not the requester, wrong role) and failures are audited."""

from __future__ import annotations

import threading

import pytest

from tests.support.api_env import *  # noqa: F403 (fixtures)
from tests.support.delivery_env import *  # noqa: F403 (fixtures)
from tests.support.delivery_env import S
from vms.evidence import export_jobs
from vms.evidence.export import package_store


def test_export_job_progress_and_package(export_env):
    x = export_env
    # hold the single worker so the new job is seen queued, then let it run
    gate = threading.Event()
    blocker = export_jobs.runner(x.app).submit("test-blocker", lambda progress: gate.wait(30))
    r = x.start_export("olga")
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == job["status_url"] == f"/api/exports/{job['job_id']}"
    assert (job["state"], job["percent"], job["frames_done"], job["package_id"]) == ("queued", 0.0, 0, None)
    assert x.env.client("olga").get(job["status_url"]).json()["state"] == "queued"
    gate.set()
    export_jobs.runner(x.app).wait(blocker, 30)
    done = x.wait_job(job["job_id"])
    final = done["final"]
    assert final["state"] == "succeeded" and final["error"] is None and final["percent"] == 100.0
    assert final["frames_done"] == final["frames_total"] >= 60  # at 100 %, the counts agree with what was exported
    percents = [s["percent"] for s in done["seen"]]
    assert percents == sorted(percents)

    # the manager sees the job too; the ticket is now exported
    assert x.env.client("max").get(job["status_url"]).json()["package_id"] == final["package_id"]
    t = x.env.client("olga").get(f"/api/tickets/{x.ticket['id']}").json()
    assert t["state"] == "exported"
    jobs = x.env.client("olga").get(f"/api/tickets/{x.ticket['id']}/exports").json()
    assert [j["job_id"] for j in jobs] == [job["job_id"]]

    (pkg,) = x.env.client("olga").get(f"/api/tickets/{x.ticket['id']}/packages").json()
    info = package_store(x.app).info(final["package_id"])
    assert pkg["package_id"] == info.package_id and pkg["size_bytes"] == info.size_bytes > 0
    assert pkg["ticket_id"] == str(x.ticket["id"]) and pkg["cameras"] == ["entrance"] and not pkg["redacted"]
    assert (pkg["links_live"], pkg["links_total"]) == (0, 0)
    # never delivered: kept the default link lifetime (72 h) plus the grace (24 h)
    assert info.expires_us == info.created_us + 96 * 3600 * S

    # audited: the start (with the job id) and the export (with the package and its manifest hash)
    (start,) = x.audit("export.start")
    assert start.actor == "olga" and start.outcome == "ok" and job["job_id"] in start.detail
    assert start.ticket_id == x.ticket["id"] and start.client == "testclient"
    (exported,) = x.audit("ticket.exported")
    assert exported.outcome == "ok" and info.package_id in exported.detail and info.manifest_sha256 in exported.detail


def test_manager_exports_with_redaction_options(export_env):
    x = export_env
    final = x.export("max", redaction={"zones": [{"x": 0.0, "y": 0.0, "width": 0.5, "height": 0.5}]},
                     recipient_name="Midt- og Vestsjællands Politi")
    info = package_store(x.app).info(final["package_id"])
    assert info.redacted and final["started_by"] == "max"
    # a second export of the same ticket is allowed (state stays exported)
    assert x.export("olga")["package_id"] != final["package_id"]
    assert len(x.env.client("mia").get(f"/api/tickets/{x.ticket['id']}/packages").json()) == 2


def _refused(x, who, ticket_id, status, words, **body):
    r = x.start_export(who, ticket_id, **body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert words in r.json()["detail"], r.json()
    return r


def test_refusals_are_clear_and_audited(export_env):
    x = export_env
    env = x.env
    start = x.start_us
    requested = env.file_ticket("olga", start_us=start, end_us=start + 4 * S, action="export")
    _refused(x, "olga", requested["id"], 409, "approved")
    view_only = env.file_ticket("olga", start_us=start, end_us=start + 4 * S, action="view")
    env.approve(view_only["id"], "mia")
    _refused(x, "olga", view_only["id"], 403, "view")
    _refused(x, "otto", x.ticket["id"], 404, "does not exist")  # another operator: as for reading it
    for who in ("aud", "adam"):
        _refused(x, who, x.ticket["id"], 403, "role")
    _refused(x, "olga", 999_999, 404, "does not exist")
    refusals = [e for e in x.audit("export.start") if e.outcome.startswith("refused")]
    assert {(e.actor, e.ticket_id) for e in refusals} == {
        ("olga", requested["id"]), ("olga", view_only["id"]), ("otto", x.ticket["id"]), ("olga", 999_999)}
    assert all(e.client == "testclient" for e in refusals)
    # the access window over: refused
    env.advance(8 * 86400)
    _refused(x, "olga", x.ticket["id"], 409, "expired")
    assert package_store(x.app).list() == []


def test_bad_input_is_422_never_500(sqlite_export_env):
    x = sqlite_export_env
    c = x.env.client("olga")
    url = f"/api/tickets/{x.ticket['id']}/exports"
    for body in ({"redaction": {"zones": [{"x": 0.8, "y": 0, "width": 0.5, "height": 0.5}]}},
                 {"redaction": {"faces": "yes please"}}, {"unknown": 1}, {"recipient_name": "a\nb"},
                 {"redaction": {"zones": [{"x": 0, "y": 0, "width": 0.1, "height": 0.1}] * 17}}):
        r = c.post(url, json=body)
        assert r.status_code == 422, (body, r.text)
    assert c.post(url, content=b"{not json", headers={"content-type": "application/json"}).status_code == 422
    assert c.get("/api/exports/not-a-job").status_code == 422
    assert c.get("/api/exports/0123456789abcdef").status_code == 404
    assert x.env.client("mia").delete("/api/packages/xyz").status_code == 422
    assert x.env.client("mia").delete("/api/packages/" + "0" * 32).status_code == 404
    assert package_store(x.app).list() == []


def test_failed_job_says_why_leaves_nothing_and_is_audited(sqlite_export_env):
    x = sqlite_export_env
    x.app.config.signing_key_path.unlink()  # the signing key is gone: the export cannot be signed
    r = x.start_export("olga")
    final = x.wait_job(r.json()["job_id"])["final"]
    assert final["state"] == "failed" and final["package_id"] is None
    assert "signing key" in final["error"], final["error"]
    assert package_store(x.app).list() == [] and not any(
        p.suffix == ".partial" for p in package_store(x.app).root.glob("*"))
    (failed,) = x.audit("export.failed")
    assert failed.actor == "olga" and failed.outcome.startswith("failed:") and r.json()["job_id"] in failed.detail
    assert x.env.client("olga").get(f"/api/tickets/{x.ticket['id']}").json()["state"] == "approved"


def test_window_ending_during_the_export_removes_the_package(sqlite_export_env):
    x = sqlite_export_env
    gate = threading.Event()
    export_jobs.runner(x.app).submit("test-blocker", lambda progress: gate.wait(30))
    job = x.start_export("olga").json()
    x.env.advance(8 * 86400)  # the access window ends while the job waits (sessions too)
    gate.set()
    final = x.wait_job(job["job_id"], "mia")["final"]  # signs in again
    assert final["state"] == "failed" and "expired" in final["error"], final
    assert package_store(x.app).list() == []


def test_operator_sees_only_jobs_of_own_tickets(sqlite_export_env):
    x = sqlite_export_env
    job = x.export("olga")
    assert x.env.client("otto").get(f"/api/exports/{job['job_id']}").status_code == 404
    assert x.env.client("otto").get(f"/api/tickets/{x.ticket['id']}/packages").status_code == 404
    assert x.env.client("aud").get(f"/api/tickets/{x.ticket['id']}/packages").status_code == 403


@pytest.mark.parametrize("who", ["olga", "mia"])
def test_cancel_leaves_no_package(sqlite_export_env, who):
    x = sqlite_export_env
    gate = threading.Event()
    export_jobs.runner(x.app).submit("test-blocker", lambda progress: gate.wait(30))
    job = x.start_export("olga").json()
    r = x.env.client(who).post(f"/api/exports/{job['job_id']}/cancel")
    assert r.status_code == 200, r.text
    gate.set()
    final = x.wait_job(job["job_id"], who)["final"]
    assert final["state"] == "cancelled"
    assert package_store(x.app).list() == []
    (cancel,) = x.audit("export.cancel")
    assert cancel.actor == "olga" and job["job_id"] in cancel.detail


def test_exports_and_failed_signins_are_counted_where_they_happen(export_env):
    """/metrics counts real events: a finished export job and a refused sign-in, not values a test sets."""
    from tests.integration.test_metrics import parse

    def value(families, name, **labels) -> float:  # a counter that never counted has no sample yet
        return families.get(name, {"samples": {}})["samples"].get(tuple(sorted(labels.items())), 0)

    x = export_env
    auditor = x.env.bearer("aud")

    def scrape():
        r = auditor.get("/metrics")
        assert r.status_code == 200, r.text
        return parse(r.text)

    before = scrape()
    r = x.env.anonymous().post("/api/auth/signin", json={"name": "olga", "password": "not her password"})
    assert r.status_code == 401
    job = x.start_export("olga").json()
    assert x.wait_job(job["job_id"])["final"]["state"] == "succeeded"
    after = scrape()
    assert value(after, "vms_signin_failures_total") == value(before, "vms_signin_failures_total") + 1
    done = value(after, "vms_export_jobs_total", outcome="done")
    assert done == value(before, "vms_export_jobs_total", outcome="done") + 1
    assert value(after, "vms_export_jobs_running") == 0
