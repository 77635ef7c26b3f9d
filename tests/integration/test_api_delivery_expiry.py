"""Packages are deleted when their delivery ends (all links expired, used up or revoked,
plus the grace period), never while a link is live; each deletion is audited.  Moved
with a FakeClock; the app's lifespan timer does it on its own."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from tests.support.api_env import *  # noqa: F403 (fixtures)
from tests.support.delivery_env import *  # noqa: F403 (fixtures)
from tests.support.delivery_env import S, token_path
from vms.evidence import delivery
from vms.evidence.export import package_store

H = 3600


def _exists(x, package_id) -> bool:
    return package_id in {i.package_id for i in package_store(x.app).list()}


def test_package_lives_as_long_as_its_links_plus_grace(export_env):
    x = export_env
    package_id = x.export("olga")["package_id"]
    short = x.link(package_id, recipient="SSP", expires_hours=2)
    long = x.link(package_id, recipient="Politi", expires_hours=48)
    info = package_store(x.app).info(package_id)
    assert info.expires_us == x.env.clock.now_us() + (48 + 24) * H * S  # the latest link plus the grace

    x.env.advance(3 * H)  # the short link has expired, the long one is live
    assert delivery.expire_packages(x.app) == [] and _exists(x, package_id)
    x.env.client("mia").post(f"/api/deliveries/{long['delivery']['id']}/revoke")
    # no live link: deleted a grace period (24 h) after the revocation
    assert package_store(x.app).info(package_id).expires_us == x.env.clock.now_us() + 24 * H * S
    x.env.advance(24 * H - 60)
    assert delivery.expire_packages(x.app) == [] and _exists(x, package_id)
    x.env.advance(60)
    (gone,) = delivery.expire_packages(x.app)
    assert gone.package_id == package_id and not _exists(x, package_id)
    assert not list(package_store(x.app).root.glob(f"{package_id}*"))  # blob and sidecar (the key) gone

    (entry,) = x.audit("package.delete")
    assert (entry.actor, entry.outcome, entry.ticket_id) == ("system", "ok", x.ticket["id"])
    assert entry.object == f"package:{package_id}" and "delivery links have ended" in entry.detail
    r = x.env.anonymous().get(token_path(short["url"]))
    assert r.status_code == 410  # the links stay refused (expired), with a reason
    # the ticket's package list is empty, the links are still listed for the record
    assert x.env.client("mia").get(f"/api/tickets/{x.ticket['id']}/packages").json() == []
    states = [d["state"] for d in x.env.client("mia").get(f"/api/packages/{package_id}/deliveries").json()]
    assert states == ["expired", "revoked"]


def test_used_up_link_and_undelivered_package(sqlite_export_env):
    x = sqlite_export_env
    used = x.export("olga")["package_id"]
    never = x.export("olga")["package_id"]
    link = x.link(used, max_downloads=1)
    assert x.env.anonymous().post(token_path(link["url"])).status_code == 200
    assert package_store(x.app).info(used).expires_us == x.env.clock.now_us() + 24 * H * S
    x.env.advance(24 * H)
    assert [i.package_id for i in delivery.expire_packages(x.app)] == [used]
    x.env.advance(72 * H - 1)  # never delivered: 72 h + 24 h after it was made
    assert delivery.expire_packages(x.app) == [] and _exists(x, never)
    x.env.advance(1)
    assert [i.package_id for i in delivery.expire_packages(x.app)] == [never]
    details = [e.detail for e in x.audit("package.delete")]
    assert "delivery links have ended" in details[0] and "never delivered" in details[1]


def test_a_live_link_keeps_its_package_even_past_a_stale_deadline(sqlite_export_env):
    x = sqlite_export_env
    package_id = x.export("olga")["package_id"]
    x.link(package_id, expires_hours=24)
    package_store(x.app).set_expiry(package_id, x.env.clock.now_us())  # e.g. restored from an old backup
    assert delivery.expire_packages(x.app) == [] and _exists(x, package_id)
    assert package_store(x.app).info(package_id).expires_us == x.env.clock.now_us() + 48 * H * S


def test_manager_deletes_a_package_and_its_links_stop(sqlite_export_env):
    x = sqlite_export_env
    package_id = x.export("olga")["package_id"]
    link = x.link(package_id)
    assert x.env.client("olga").delete(f"/api/packages/{package_id}").status_code == 403
    r = x.env.client("mia").delete(f"/api/packages/{package_id}")
    assert r.status_code == 204 and not _exists(x, package_id)
    r = x.env.anonymous().post(token_path(link["url"]))
    assert r.status_code == 410 and "revoked" in r.json()["detail"]
    assert x.env.client("mia").delete(f"/api/packages/{package_id}").status_code == 404
    entries = x.audit("package.delete")
    # (the operator was refused by role at the route, like every role refusal: not an audited use case)
    assert [(e.actor, e.outcome.split(":")[0]) for e in entries] == [("mia", "ok"), ("mia", "refused")]
    assert "links_revoked=1" in entries[0].detail


def test_lifespan_timer_deletes_expired_packages(sqlite_export_env):
    from api.app import create_app

    x = sqlite_export_env
    package_id = x.export("olga")["package_id"]
    x.link(package_id, expires_hours=1)
    api = create_app(x.app, clock=x.env.clock, expiry_interval_s=0.05)
    with TestClient(api):  # runs the lifespan: the timers start
        x.env.clock.advance((1 + 24) * H)
        deadline = time.monotonic() + 10
        while _exists(x, package_id) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _exists(x, package_id)
    assert len(x.audit("package.delete")) == 1
