"""Role-matrix entries for the export and delivery routes, in the format of
``tests/integration/test_api_roles.py`` (``(method, path) -> request builder``; who may is the access policy's):
that test's ``MATRIX.update(EXPORT_MATRIX)`` makes it cover these routes too.
``test_api_delivery_roles.py`` runs them on their own.

Builders make what a request acts on with the API itself: an approved export
ticket of ``olga`` (approved by ``mia``), an export of it (a package of the
window's gaps: these environments hold no footage), a delivery link by ``mia``.
"""

from __future__ import annotations

from testkit.footage import ensure_signing_key
from vms.evidence import export_jobs


def _ticket(env) -> int:
    t = env.file_ticket("olga", action="export")["id"]
    env.approve(t, "mia")
    return t


def _job(env) -> str:
    ensure_signing_key(env.app)
    r = env.client("olga").post(f"/api/tickets/{_ticket(env)}/exports")
    assert r.status_code == 202, r.text
    return r.json()["job_id"]


def _package(env) -> str:
    job_id = _job(env)
    status = export_jobs.runner(env.app).wait(job_id, 60)
    assert status.state == "succeeded", status
    return status.result.package_id


def _link(env) -> dict:
    r = env.client("mia").post(f"/api/packages/{_package(env)}/deliveries", json={"recipient": "Politi"})
    assert r.status_code == 201, r.text
    return r.json()


EXPORT_MATRIX = {
    ("POST", "/api/tickets/{ticket_id}/exports"): (lambda env: (
        f"/api/tickets/{_ticket(env)}/exports", {})),
    ("GET", "/api/exports/{job_id}"): (lambda env: (f"/api/exports/{_job(env)}", {})),
    ("POST", "/api/exports/{job_id}/cancel"): (lambda env: (f"/api/exports/{_job(env)}/cancel", {})),
    ("GET", "/api/tickets/{ticket_id}/exports"): (lambda env: (
        f"/api/tickets/{_ticket(env)}/exports", {})),
    ("GET", "/api/tickets/{ticket_id}/packages"): (lambda env: (
        f"/api/tickets/{_ticket(env)}/packages", {})),
    ("DELETE", "/api/packages/{package_id}"): (lambda env: (f"/api/packages/{_package(env)}", {})),
    # a package of an ordinary ticket: managers pass the role rule and are told it needs no approval (409)
    ("POST", "/api/packages/{package_id}/release"): (lambda env: (
        f"/api/packages/{_package(env)}/release", {"json": {"reason": "Reviewed before delivery"}})),
    # the same for watching a package before approving it (a manager is told it needs no review: 409)
    ("GET", "/api/packages/{package_id}/clips/{n}"): (lambda env: (f"/api/packages/{_package(env)}/clips/0", {})),
    ("POST", "/api/packages/{package_id}/deliveries"): (lambda env: (
        f"/api/packages/{_package(env)}/deliveries", {"json": {"recipient": "Politi Midt"}})),
    ("GET", "/api/packages/{package_id}/deliveries"): (lambda env: (
        f"/api/packages/{_package(env)}/deliveries", {})),
    ("POST", "/api/deliveries/{delivery_id}/revoke"): (lambda env: (
        f"/api/deliveries/{_link(env)['delivery']['id']}/revoke", {})),
    ("GET", "/d/{token}"): (lambda env: (f"/d/{_link(env)['token']}", {})),
    ("POST", "/d/{token}"): (lambda env: (f"/d/{_link(env)['token']}", {})),
}
