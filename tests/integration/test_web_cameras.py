"""Cameras through the web UI and the API (SQLite and PostgreSQL): the overview every role the policy allows
reads, the administrator's add/edit/disable/enable form (checked as ``vms config check`` checks, written to the
config file, audited, applied), refusals of everyone else, and RTSP credentials never shown again anywhere: not
in pages, API answers, the audit trail or the log."""

from __future__ import annotations

import json
import logging
import stat

import pytest
from sqlalchemy.orm import Session

from storage.sql import index
from tests.support.api_env import *  # noqa: F403 (fixtures)
from vms.core.config import load_config

SECRET = "Hemmelig-Kode-4711"
USER = "kameravisning"


def _audit(env, action_prefix: str) -> list[dict]:
    r = env.client("aud").get("/api/audit", params={"action": action_prefix, "limit": 100})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def _add(env, **fields):
    form = {"id": "reading-room", "name": "Læsesal", "place": "1. sal, ved vinduerne",
            "source": "rtsp://127.0.0.1:1/reading", "username": USER, "password": SECRET, "retain_days": "14",
            "transport": "tcp", "enabled": "on", "op": "save"} | fields
    return env.client("adam").post("/admin/cameras/new", data=form, follow_redirects=False)


def test_admin_adds_edits_disables_and_nothing_leaks_the_password(api_env, caplog):
    env = api_env
    with caplog.at_level(logging.DEBUG):
        r = _add(env)
        assert r.status_code == 303 and r.headers["location"].startswith("/cameras?done=added"), r.text[:500]

        cfg = load_config(env.app.config_path)
        cam = cfg.camera("reading-room")
        assert cam.name == "Læsesal" and cam.place == "1. sal, ved vinduerne" and cam.retain_days == 14
        assert cam.source == f"rtsp://{USER}:{SECRET}@127.0.0.1:1/reading"  # the recorder gets the credentials
        assert stat.S_IMODE(env.app.config_path.stat().st_mode) & 0o077 == 0  # secrets on disk: owner only
        assert env.app.config.camera("reading-room") is not None  # applied to the running appliance
        with Session(env.app.engine) as s:
            row = next(c for c in index.cameras(s) if c.id == "reading-room")
            assert (row.name, row.place, row.enabled) == ("Læsesal", "1. sal, ved vinduerne", True)

        # the edit form shows the address without credentials, says it has some, never shows them
        page = env.client("adam").get("/admin/cameras/reading-room")
        assert page.status_code == 200
        assert "rtsp://127.0.0.1:1/reading" in page.text and 'id="credentials-state"' in page.text
        assert SECRET not in page.text and USER not in page.text

        # an edit with empty credential fields keeps them; the name, place and retention change
        r = env.client("adam").post("/admin/cameras/reading-room", follow_redirects=False, data={
            "name": "Læsesalen", "place": "1. sal", "source": "rtsp://127.0.0.1:1/reading", "retain_days": "21",
            "transport": "tcp", "enabled": "on", "op": "save"})
        assert r.status_code == 303 and "done=saved" in r.headers["location"], r.text[:500]
        cam = load_config(env.app.config_path).camera("reading-room")
        assert (cam.name, cam.retain_days, cam.source) == ("Læsesalen", 21,
                                                           f"rtsp://{USER}:{SECRET}@127.0.0.1:1/reading")

        # a new password replaces the old one
        r = env.client("adam").post("/admin/cameras/reading-room", follow_redirects=False, data={
            "name": "Læsesalen", "place": "1. sal", "source": "rtsp://127.0.0.1:1/reading", "retain_days": "21",
            "password": SECRET + "-2", "transport": "tcp", "enabled": "on", "op": "save"})
        assert r.status_code == 303
        assert load_config(env.app.config_path).camera("reading-room").source.endswith(f"{SECRET}-2@127.0.0.1:1/reading")

        r = env.client("adam").post("/admin/cameras/reading-room", data={"op": "disable"}, follow_redirects=False)
        assert r.status_code == 303 and "done=disabled" in r.headers["location"]
        assert load_config(env.app.config_path).camera("reading-room").enabled is False

        overview = env.client("olga").get("/cameras")
        api = env.client("olga").get("/api/cameras")

    assert overview.status_code == 200 and "Læsesalen" in overview.text and "1. sal" in overview.text
    row = next(c for c in api.json() if c["id"] == "reading-room")
    assert (row["name"], row["place"], row["enabled"], row["recording"]) == ("Læsesalen", "1. sal", False, False)
    assert "source" not in row

    entries = _audit(env, "camera.")
    actions = [e["action"] for e in entries]
    assert actions.count("camera.add") == 1 and actions.count("camera.edit") == 2
    assert actions.count("camera.disable") == 1
    add = next(e for e in entries if e["action"] == "camera.add")
    detail = json.loads(add["detail"])
    assert detail["changed"]["name"] == "Læsesal" and detail["changed"]["credentials"] == "set"
    assert detail["changed"]["source"] == "rtsp://127.0.0.1:1/reading"
    assert add["object"] == "camera:reading-room" and add["actor"] == "adam"
    edits = [json.loads(e["detail"])["changed"] for e in entries if e["action"] == "camera.edit"]
    assert {"name", "place", "retain_days"} <= set(edits[-1] if "name" in edits[-1] else edits[0])
    assert any(e.get("credentials") == "changed" for e in edits)

    everything = [overview.text, api.text, json.dumps(entries), caplog.text,
                  env.client("aud").get("/audit").text, env.client("adam").get("/admin").text,
                  env.client("adam").get("/cameras").text]
    for text in everything:
        assert SECRET not in text and USER not in text


def test_config_check_refusals_are_shown_next_to_the_field_and_nothing_is_written(api_env):
    env = api_env
    before = env.app.config_path.read_text()
    r = _add(env, retain_days="90")  # above the legal maximum of 30
    assert r.status_code == 422
    assert 'id="error-retain_days"' in r.text and "legal maximum of 30 days" in r.text
    assert SECRET not in r.text and USER not in r.text  # the typed credentials are not shown back either
    r = _add(env, id="Bad Id")
    assert r.status_code == 422 and 'id="error-id"' in r.text and "not URL/path safe" in r.text
    r = _add(env, source="ftp://127.0.0.1/x")
    assert r.status_code == 422 and 'id="error-source"' in r.text and "not supported" in r.text
    r = _add(env, name="x" * 81)
    assert r.status_code == 422 and 'id="error-name"' in r.text and "at most 80 characters" in r.text
    r = _add(env, id="entrance")
    assert r.status_code == 409 and 'id="error-id"' in r.text
    r = _add(env, retain_days="vierten")
    assert r.status_code == 422 and 'id="error-retain_days"' in r.text and "valid integer" in r.text
    assert env.app.config_path.read_text() == before
    refused = [e for e in _audit(env, "camera.") if e["outcome"] != "ok"]
    assert refused == []  # a refused form changes nothing, so nothing is audited as done
    # in English the frame around the check's message is English; in Danish, Danish
    adam = env.client("adam")
    adam.get("/lang/en?next=/cameras")
    r = _add(env, retain_days="90")
    assert "Not valid, the configuration was not changed" in r.text
    adam.get("/lang/da?next=/cameras")
    r = _add(env, retain_days="90")
    assert "Ikke gyldigt, opsætningen er ikke ændret" in r.text


@pytest.mark.parametrize("name", ["olga", "mia", "aud"])
def test_only_administrators_change_cameras(api_env, name):
    env = api_env
    before = env.app.config_path.read_text()
    c = env.client(name)
    assert c.get("/admin/cameras/new").status_code == 403
    assert c.get("/admin/cameras/entrance").status_code == 403
    for path, data in (("/admin/cameras/new", {"id": "x1", "source": "rtsp://127.0.0.1:1/x", "retain_days": "5"}),
                       ("/admin/cameras/entrance", {"op": "disable"})):
        r = c.post(path, data=data, follow_redirects=False)
        assert r.status_code == 403, (name, path, r.status_code)
    assert env.app.config_path.read_text() == before
    page = c.get("/cameras")  # every role reads the overview
    assert page.status_code == 200 and 'data-camera="entrance"' in page.text
    assert "/admin/cameras/" not in page.text and 'id="add-camera"' not in page.text
    assert "rtsp://" not in page.text


def test_names_and_places_are_shown_instead_of_ids(api_env):
    env = api_env
    r = env.client("adam").post("/admin/cameras/entrance", follow_redirects=False, data={
        "name": "Indgang", "place": "Hovedindgangen", "source": "rtsp://127.0.0.1:1/entrance", "retain_days": "14",
        "transport": "tcp", "enabled": "on", "op": "save"})
    assert r.status_code == 303
    ticket = env.file_ticket("olga", cameras=("entrance",))
    assert ticket["cameras"] == ["entrance"]
    assert ticket["camera_names"] == [{"id": "entrance", "name": "Indgang", "place": "Hovedindgangen"}]
    olga = env.client("olga")
    assert "Indgang (Hovedindgangen)" in olga.get(f"/tickets/{ticket['id']}").text
    assert "Indgang (Hovedindgangen)" in olga.get("/tickets").text
    assert "Indgang (Hovedindgangen)" in olga.get("/tickets/new").text
    assert "Indgang (Hovedindgangen)" in env.client("mia").get("/queue").text


def test_an_unchanged_save_writes_and_audits_nothing(api_env):
    env = api_env
    before = env.app.config_path.read_text()
    r = env.client("adam").post("/admin/cameras/hall", follow_redirects=False, data={
        "name": "", "place": "", "source": "rtsp://127.0.0.1:1/hall", "retain_days": "30", "transport": "tcp",
        "enabled": "on", "op": "save"})
    assert r.status_code == 303 and "done=unchanged" in r.headers["location"]
    assert env.app.config_path.read_text() == before
    assert _audit(env, "camera.") == []


def test_comments_in_the_config_file_survive_an_edit(sqlite_api_env):
    env = sqlite_api_env
    path = env.app.config_path
    path.write_text("# Biblioteket: kameraer monteret 2026\n" + path.read_text())
    r = env.client("adam").post("/admin/cameras/hall", follow_redirects=False, data={
        "name": "Hal", "place": "", "source": "rtsp://127.0.0.1:1/hall", "retain_days": "30", "transport": "tcp",
        "enabled": "on", "op": "save"})
    assert r.status_code == 303
    assert path.read_text().startswith("# Biblioteket: kameraer monteret 2026\n")
    assert load_config(path).camera("hall").name == "Hal"


def test_cameras_of_another_node_are_listed_by_name_and_edited_there(api_env):
    env = api_env
    with Session(env.app.engine) as s, s.begin():  # as the other node's sync_cameras writes it
        index.upsert_camera(s, "garden", node_id="branch-node", retain_days=7, now_us=env.clock.now_us(),
                            name="Have", place="Bag biblioteket")
    row = next(c for c in env.client("olga").get("/api/cameras").json() if c["id"] == "garden")
    assert (row["name"], row["place"], row["node_id"], row["recording"]) == ("Have", "Bag biblioteket",
                                                                             "branch-node", False)
    page = env.client("adam").get("/cameras")
    assert "Have" in page.text and "redigeres på branch-node" in page.text
    assert 'data-edit="garden"' not in page.text and 'data-edit="entrance"' in page.text
    assert env.client("adam").get("/admin/cameras/garden").status_code == 404
    r = env.client("adam").post("/admin/cameras/garden", data={"op": "disable"}, follow_redirects=False)
    assert r.status_code == 404 and "anden node" in r.text
