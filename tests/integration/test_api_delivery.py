"""Delivery end to end on SQLite and PostgreSQL: export a real recording through the API,
make a link with a passcode, download as a recipient without an account, and check the
ZIP with tools that are not ours (unzip, ffprobe, sha256sum -c, openssl pkeyutl);
a flipped byte makes them fail.  Every step is audited; the token appears in no log,
no audit entry and no file; the clear ZIP is never written to disk."""

from __future__ import annotations

import json
import logging
import zipfile

import pytest

from tests.support.api_env import *  # noqa: F403 (fixtures)
from tests.support.delivery_env import *  # noqa: F403 (fixtures)
from tests.support.delivery_env import S, token_path
from tests.support.export_tools import ffprobe_frames, openssl_verify, sha256sum_check, unpack
from vms.evidence.export import package_store


def _stock_tools_accept(folder) -> bool:
    return (sha256sum_check(folder).returncode == 0
            and openssl_verify(folder, "manifest.json", "manifest.sig").returncode == 0
            and openssl_verify(folder, "SHA256SUMS", "SHA256SUMS.sig").returncode == 0)


def test_recipient_downloads_a_package_that_stock_tools_verify(export_env, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    x = export_env
    job = x.export("olga")
    package_id = job["package_id"]
    created = x.link(package_id, "mia", generate_passcode=True, max_downloads=2)
    token, passcode = created["token"], created["passcode"]
    assert len(token) >= 43 and passcode and created["url"].endswith(f"/d/{token}")
    d = created["delivery"]
    assert (d["state"], d["downloads_left"], d["passcode_required"], d["created_by"]) == ("live", 2, True, "mia")
    # a link is not a delivery: the ticket becomes delivered when the recipient has downloaded
    assert x.env.client("olga").get(f"/api/tickets/{x.ticket['id']}").json()["state"] == "exported"
    # the token is shown once: the listing has no token
    listed = x.env.client("mia").get(f"/api/packages/{package_id}/deliveries").json()
    assert [e["id"] for e in listed] == [d["id"]] and token not in json.dumps(listed)

    # the recipient: no account, no cookie
    anon = x.env.anonymous()
    path = token_path(created["url"])
    info = anon.get(path)
    assert info.status_code == 200, info.text
    assert info.headers["cache-control"] == "no-store" and info.headers["referrer-policy"] == "no-referrer"
    pkg = package_store(x.app).info(package_id)
    assert info.json()["passcode_required"] is True and info.json()["downloads_left"] == 2
    assert info.json()["key_fingerprint"] == pkg.key_fingerprint and info.json()["filename"] == pkg.filename
    assert anon.post(path).status_code == 401  # the passcode is needed
    r = anon.post(path, json={"passcode": passcode})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert r.headers["content-disposition"] == f'attachment; filename="{pkg.filename}"'
    assert int(r.headers["content-length"]) == len(r.content) == pkg.size_bytes
    zip_path = tmp_path / pkg.filename
    zip_path.write_bytes(r.content)
    assert x.env.client("olga").get(f"/api/tickets/{x.ticket['id']}").json()["state"] == "delivered"

    folder = unpack(zip_path, tmp_path / "unpacked")
    check = sha256sum_check(folder)
    assert check.returncode == 0 and check.stdout.count(": OK") == 7, check.stdout + check.stderr
    for data, sig in (("manifest.json", "manifest.sig"), ("SHA256SUMS", "SHA256SUMS.sig")):
        v = openssl_verify(folder, data, sig)
        assert v.returncode == 0 and "Signature Verified Successfully" in v.stdout, v.stderr
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["ticket"]["id"] == str(x.ticket["id"])
    assert manifest["ticket"]["requester"] == "olga" and manifest["ticket"]["approver"] == "mia"
    (cam,) = manifest["cameras"]
    lead, clip = cam["clips"]
    # window [start+2.5 s, start+6 s): the 7 frames from 2.5 s to the keyframe at 3 s re-encoded, then
    # 45 frames at 15 fps = 3.0 s copied
    assert lead["reencoded"] and lead["frames"] == 7 and lead["first_frame"]["unix_us"] >= x.start_us + 2_500_000
    assert clip["first_frame"]["unix_us"] == x.start_us + 3 * S and clip["frames"] == 45
    frames, duration_s, codec = ffprobe_frames(folder / clip["file"])
    assert (frames, codec) == (45, "h264") and duration_s == pytest.approx(3.0, abs=0.01)

    # a flipped byte in a clip, in the manifest or its signature: stock tools refuse
    for name in (clip["file"], "manifest.json", "manifest.sig"):
        bad = unpack(zip_path, tmp_path / f"bad-{name.replace('/', '_')}")
        data = bytearray((bad / name).read_bytes())
        data[len(data) // 2] ^= 0x01
        (bad / name).write_bytes(data)
        assert not _stock_tools_accept(bad), name

    # audited: link made, opened, downloaded with time and client address; ticket delivered
    (made,) = x.audit("delivery.create")
    assert made.actor == "mia" and made.outcome == "ok" and "passcode=yes" in made.detail
    (dl,) = [e for e in x.audit("delivery.download") if e.outcome == "ok"]
    assert (dl.actor, dl.role, dl.client, dl.at_us) == (f"link:{d['id']}", "recipient", "testclient",
                                                       x.env.clock.now_us())
    assert dl.ticket_id == x.ticket["id"] and "download=1/2" in dl.detail
    assert [e.outcome for e in x.audit("delivery.open")] == ["ok"]
    refused = [e for e in x.audit("delivery.download") if e.outcome != "ok"]
    assert [e.outcome for e in refused] == ["refused: this link needs the passcode the sender gave you separately"]
    (delivered,) = x.audit("ticket.delivered")
    assert (delivered.outcome, delivered.actor, delivered.role) == ("ok", f"link:{d['id']}", "recipient")

    # the token (and the passcode) never reach the appliance's log, an audit entry or a file on the appliance
    # (httpx is the test's HTTP client, i.e. the recipient's side: it logs the URLs it fetches)
    appliance_log = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx"))
    assert any(r.name.startswith("httpx") and token in r.getMessage() for r in caplog.records)  # the check sees URLs
    assert token not in appliance_log and passcode not in appliance_log
    assert not any(token in "|".join(map(str, e)) for e in x.audit())
    secrets_ = (token.encode(), passcode.encode())
    manifest_bytes = (folder / "manifest.json").read_bytes()
    for f in x.app.config.data_dir.rglob("*"):
        if f.is_file():
            content = f.read_bytes()
            assert not any(s_ in content for s_ in secrets_), f
            assert manifest_bytes not in content, f"clear package content on disk: {f}"

    # the remaining download, then the link is used up
    assert anon.post(path, data={"passcode": passcode}).status_code == 200  # as a form, too
    gone = anon.post(path, json={"passcode": passcode})
    assert gone.status_code == 410 and "used 2 time(s)" in gone.json()["detail"]
    assert gone.json()["instance"] == "/d/{token}"
    listed = x.env.client("mia").get(f"/api/packages/{package_id}/deliveries").json()
    assert (listed[0]["state"], listed[0]["downloads"], listed[0]["downloads_left"]) == ("exhausted", 2, 0)


def test_link_without_passcode_and_several_recipients(sqlite_export_env):
    x = sqlite_export_env
    package_id = x.export("olga")["package_id"]
    police = x.link(package_id, recipient="Politi Midt", passcode="sent by SMS 4711")
    ssp = x.link(package_id, recipient="SSP Holbæk", expires_hours=1, max_downloads=1)
    assert police["passcode"] is None and police["token"] != ssp["token"]
    anon = x.env.anonymous()
    r = anon.post(token_path(ssp["url"]))
    assert r.status_code == 200 and r.content == b"".join(package_store(x.app).open(package_id))
    assert anon.post(token_path(police["url"]), json={"passcode": "sent by SMS 4711"}).status_code == 200
    (pkg,) = x.env.client("mia").get(f"/api/tickets/{x.ticket['id']}/packages").json()
    assert (pkg["links_live"], pkg["links_total"]) == (1, 2)  # the SSP link is used up


def test_only_managers_make_and_revoke_links(sqlite_export_env):
    x = sqlite_export_env
    package_id = x.export("olga")["package_id"]
    body = {"recipient": "Politi"}
    for who in ("olga", "aud", "adam"):
        assert x.env.client(who).post(f"/api/packages/{package_id}/deliveries", json=body).status_code == 403
        assert x.env.client(who).get(f"/api/packages/{package_id}/deliveries").status_code == 403
    link = x.link(package_id)
    assert x.env.client("olga").post(f"/api/deliveries/{link['delivery']['id']}/revoke").status_code == 403
    assert x.env.anonymous().post(f"/api/packages/{package_id}/deliveries", json=body).status_code == 401
    with zipfile.ZipFile(__import__("io").BytesIO(x.env.anonymous().post(token_path(link["url"])).content)) as z:
        assert "manifest.json" in z.namelist()


def test_web_ui_hook_renders_the_recipient_page(sqlite_export_env):
    from fastapi.responses import HTMLResponse

    x = sqlite_export_env
    link = x.link(x.export("olga")["package_id"], passcode="sent separately")
    calls = []

    def page(request, *, token, info, error):
        calls.append((token, info, error))
        return HTMLResponse("<p>page</p>", status_code=200 if error is None else 410)

    x.env.api.state.delivery_page = page
    anon = x.env.anonymous()
    html = {"accept": "text/html,application/xhtml+xml"}
    r = anon.get(token_path(link["url"]), headers=html)
    assert r.status_code == 200 and r.text == "<p>page</p>"
    assert calls[-1][0] == link["token"] and calls[-1][1].passcode_required and calls[-1][2] is None
    r = anon.post(token_path(link["url"]), data={"passcode": "wrong one!"}, headers=html)
    # beside the refusal the page gets the link's facts, so that it keeps them (and its instructions)
    assert r.status_code == 410 and calls[-1][2].message == "the passcode is wrong"
    assert calls[-1][1].state == "live" and calls[-1][1].downloads == 0 and calls[-1][1].downloaded_us is None
    assert anon.get(token_path(link["url"])).headers["content-type"] == "application/json"  # API clients: JSON
    r = anon.post(token_path(link["url"]), data={"passcode": "sent separately"}, headers=html)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"  # the download itself
    assert r.cookies.get("vms_downloaded") == f"{link['delivery']['id']}.1"  # the page's sign that it started
    assert link["token"] not in r.headers.get("set-cookie", "")
