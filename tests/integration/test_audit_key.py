"""The audit key and signed checkpoints: a database writer cannot extend, insert into or rewrite the
trail so that it verifies, nor move the boundary of the keyed part; an upgraded trail is migrated by an
entry saying so; a master key rotation keeps it verifiable.  On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from storage.format import audit_anchor as anchors
from storage.sql import audit as store
from storage.sql.db import open_database
from testkit.footage import ensure_signing_key
from tests.integration.test_audit_chain import (
    INSERT,
    _forged,
    _hash_of,
    _last_seq,
    drop_triggers,
    sql,
    verify_cli,
)
from vms.access import audit, audit_key
from vms.cli import main

pytestmark = pytest.mark.usefixtures("english_cli")  # these tests read the command's English words


def _chain(app, n: int = 5) -> None:
    for i in range(n):
        audit.record_system_event(app, action="test.event", detail=f"event {i}")


def _append_forged(app, *, key: bytes | None) -> int:
    """Append an entry at the end with a hash computed with ``key`` (None: plain SHA-256), and move the head."""
    last = _last_seq(app)
    row = _forged(app, last + 1, _hash_of(app, last), valid_hash=True)
    fields = {k: row[k] for k in store.FIELDS}
    row["hash"] = store.entry_hash(fields, row["prev_hash"], key)
    drop_triggers(app)
    sql(app, INSERT, params=row)
    sql(app, "UPDATE audit_head SET last_seq = :s, last_hash = :h WHERE id = 1", params={"s": last + 1, "h": row["hash"]})
    return last + 1


def test_a_new_trail_is_sealed_from_its_first_entry(appliance_factory, database_url, capsys):
    app = appliance_factory(database_url=database_url)
    _chain(app)
    mac = audit_key.key_for(app.engine)
    assert mac is not None and mac.keyed_from == 1
    with app.engine.connect() as conn:
        rows = list(store.iter_rows(conn))
        record = store.mac_key_record(conn)
    assert all(store.row_hash(r, mac.key) == r[11] != store.row_hash(r) for r in rows)  # HMAC, not plain SHA
    assert mac.key.hex() not in record and "wrapped" in record  # only the wrapped key is in the database
    assert verify_cli(app, capsys)[0] == 0


def test_appends_by_a_database_writer_are_named_whatever_key_they_guess(appliance_factory, database_url, capsys):
    app = appliance_factory(database_url=database_url)
    _chain(app)
    bad = _append_forged(app, key=None)  # the plain chain anyone could compute
    code, out = verify_cli(app, capsys)
    assert code == 7 and f"BROKEN at entry {bad}: entry {bad} is not sealed with the audit key" in out
    app2 = appliance_factory(database_url=None)
    _chain(app2)
    bad = _append_forged(app2, key=os.urandom(32))  # a key of their own
    code, out = verify_cli(app2, capsys)
    assert code == 7 and f"entry {bad} does not match its own seal" in out


def test_an_upgraded_trail_is_migrated_by_an_entry_saying_so(appliance_factory, database_url, capsys):
    engine = open_database(database_url)  # the trail as an earlier version wrote it: plain SHA-256, no key
    with Session(engine) as s, s.begin():
        for i in range(3):
            store.append(s, at_us=1_000 + i, actor="system", role="system", action="old.event", detail=str(i))
    engine.dispose()
    app = appliance_factory(database_url=database_url)  # opening it makes the key
    mac = audit_key.key_for(app.engine)
    assert mac.keyed_from == 4
    (announce,) = audit.search(app.engine, action="audit.key")
    assert announce.seq == 4 and "entries 1..3 were chained without a key" in announce.detail
    _chain(app, 2)
    assert verify_cli(app, capsys)[0] == 0
    anchor = anchors.read(app.config.audit_anchor_path)
    assert anchor.keyed_from == 4  # the checkpoint outside the database repeats the boundary
    bad = _append_forged(app, key=None)  # plain entries are accepted only before the boundary
    code, out = verify_cli(app, capsys)
    assert code == 7 and f"entry {bad} is not sealed with the audit key" in out and "from 4 on" in out


def test_the_keyed_boundary_and_the_key_record_cannot_be_moved_or_removed(appliance_factory, database_url, capsys):
    app = appliance_factory(database_url=database_url)
    _chain(app)
    assert verify_cli(app, capsys)[0] == 0
    with app.engine.begin() as conn:
        value = json.loads(store.mac_key_record(conn))
        value["keyed_from"] = 99  # "entries before 99 are plain": would let plain forgeries through
        conn.execute(sa.text("UPDATE service_state SET value = :v WHERE name = :n"),
                     {"v": json.dumps(value), "n": store.MAC_KEY_STATE})
    result = audit.verify(app.engine)
    assert not result.ok and "says entries are sealed from 99 on, but it said 1" in result.problem
    with app.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM service_state WHERE name = :n"), {"n": store.MAC_KEY_STATE})
    result = audit.verify(app.engine, anchors.read(app.config.audit_anchor_path))
    assert not result.ok and "audit key's record (service_state 'audit.mac_key') is missing" in result.problem


def test_checkpoints_are_signed_and_an_edited_one_is_named(appliance_factory, database_url, capsys):
    app = appliance_factory(database_url=database_url)
    ensure_signing_key(app)
    _chain(app)
    assert verify_cli(app, capsys)[0] == 0
    path = app.config.audit_anchor_path
    doc = json.loads(path.read_text())
    assert len(bytes.fromhex(doc["sig"])) == 64 and doc["keyed_from"] == 1
    doc["keyed_from"] = 6  # moved by someone without the signing key
    path.write_text(json.dumps(doc))
    code, out = verify_cli(app, capsys)
    assert code == 7 and "signature does not verify" in out


def test_a_master_key_rotation_keeps_the_trail_verifiable(appliance_factory, database_url, capsys):
    app = appliance_factory(database_url=database_url)
    _chain(app)
    with app.engine.connect() as conn:
        before = json.loads(store.mac_key_record(conn))
    assert main(["keys", "rotate", "--config", str(app.config_path)]) == 0
    assert "audit keys" in capsys.readouterr().out
    with app.engine.connect() as conn:
        after = json.loads(store.mac_key_record(conn))
    assert after["master_id"] != before["master_id"] and after["wrapped"] != before["wrapped"]
    assert after["keyed_from"] == before["keyed_from"]
    assert verify_cli(app, capsys)[0] == 0  # the CLI unwraps the key with the new master key
