"""The audit trail: append-only in the database, hash-chained, and every kind of
tampering behind the appliance's back (changed, deleted, inserted, reordered
rows) detected by ``vms audit verify``, on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib
import threading

import pytest
import sqlalchemy as sa

from storage.format import audit_anchor as anchors
from storage.sql import audit as store
from vms.access import audit
from vms.cli import main

pytestmark = pytest.mark.usefixtures("english_cli")  # these tests read the command's English words

MIGRATION = importlib.import_module("storage.sql.migrations.versions.0003_access")


@pytest.fixture
def chained(appliance_factory, database_url):
    """An appliance whose audit trail holds 6 entries."""
    app = appliance_factory(database_url=database_url)
    for i in range(6):
        audit.record_system_event(app, action="test.event", obj=f"thing:{i}", detail=f"entry number {i + 1}")
        app.clock.advance(1)
    return app


def sql(app, *statements, params=None):
    with app.engine.begin() as conn:
        for stmt in statements:
            conn.execute(sa.text(stmt), params or {})


def drop_triggers(app):
    if app.engine.dialect.name == "postgresql":
        sql(app, "DROP TRIGGER audit_log_no_update_delete ON audit_log", "DROP TRIGGER audit_log_no_truncate ON audit_log")
    else:
        sql(app, "DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete")


def restore_triggers(app):
    pg = app.engine.dialect.name == "postgresql"
    sql(app, *(MIGRATION.PG_TRIGGERS if pg else MIGRATION.SQLITE_TRIGGERS))


def verify_cli(app, capsys) -> tuple[int, str]:
    code = main(["audit", "verify", "--config", str(app.config_path)])
    return code, capsys.readouterr().out


def test_intact_chain_verifies(chained, capsys):
    result = audit.verify(chained.engine)
    assert result.ok and result.entries == 6
    code, out = verify_cli(chained, capsys)
    assert code == 0 and "intact: 6 entries" in out


def test_empty_chain_verifies(appliance_factory, sqlite_url, capsys):
    app = appliance_factory(database_url=sqlite_url)
    assert audit.verify(app.engine).ok
    assert verify_cli(app, capsys)[0] == 0


@pytest.mark.parametrize("stmt", [
    "UPDATE audit_log SET outcome = 'ok' WHERE seq = 2",
    "DELETE FROM audit_log WHERE seq = 2",
    "DELETE FROM audit_log",
])
def test_database_refuses_edits(chained, stmt):
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        sql(chained, stmt)
    assert audit.verify(chained.engine).ok


def test_postgresql_refuses_truncate(appliance_factory, postgres_url):
    app = appliance_factory(database_url=postgres_url)
    audit.record_system_event(app, action="test.event")
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        sql(app, "TRUNCATE audit_log")


def _forged(app, seq: int, prev_hash: str, *, valid_hash: bool) -> dict:
    fields = {"seq": seq, "at_us": app.clock.now_us(), "actor": "mallory", "role": "manager", "action": "ticket.approve",
              "object": "ticket:99", "ticket_id": 99, "client": "10.0.0.66", "outcome": "ok", "detail": ""}
    digest = store.entry_hash(fields, prev_hash) if valid_hash else "f" * 64
    return fields | {"prev_hash": prev_hash, "hash": digest}


INSERT = ("INSERT INTO audit_log (seq, at_us, actor, role, action, object, ticket_id, client, outcome, detail, "
          "prev_hash, hash) VALUES (:seq, :at_us, :actor, :role, :action, :object, :ticket_id, :client, :outcome, "
          ":detail, :prev_hash, :hash)")


def _hash_of(app, seq: int) -> str:
    with app.engine.connect() as conn:
        return conn.execute(sa.text("SELECT hash FROM audit_log WHERE seq = :s"), {"s": seq}).scalar_one()


def _last_seq(app) -> int:
    with app.engine.connect() as conn:
        return conn.execute(sa.text("SELECT max(seq) FROM audit_log")).scalar_one()


def tamper_changed(app):
    sql(app, "UPDATE audit_log SET outcome = 'refused: nothing to see' WHERE seq = 3")


def tamper_deleted(app):
    sql(app, "DELETE FROM audit_log WHERE seq = 3")


def tamper_inserted(app):
    # make room at 3 (renumber 6..3 upwards, highest first) and slip a forged entry in,
    # with a hash computed the way the appliance computes it and linked to entry 2
    for seq in range(_last_seq(app), 2, -1):
        sql(app, f"UPDATE audit_log SET seq = {seq + 1} WHERE seq = {seq}")
    sql(app, INSERT, params=_forged(app, 3, _hash_of(app, 2), valid_hash=True))


def tamper_inserted_unlinked(app):
    sql(app, "DELETE FROM audit_log WHERE seq = 3")
    sql(app, INSERT, params=_forged(app, 3, "0" * 64, valid_hash=False))


def tamper_reordered(app):
    sql(app, "UPDATE audit_log SET seq = -1 WHERE seq = 3", "UPDATE audit_log SET seq = 3 WHERE seq = 4",
        "UPDATE audit_log SET seq = 4 WHERE seq = -1")


def tamper_tail_deleted(app):
    sql(app, "DELETE FROM audit_log WHERE seq = 6")


def tamper_tail_appended(app):
    last = _last_seq(app)
    sql(app, INSERT, params=_forged(app, last + 1, _hash_of(app, last), valid_hash=True))


@pytest.mark.parametrize("tamper, bad, words", [
    (tamper_changed, 3, "changed"),
    (tamper_deleted, 3, "missing"),
    (tamper_inserted, 3, "not sealed with the audit key"),  # a forger without the key cannot seal entry 3
    (tamper_inserted_unlinked, 3, "entry 3"),
    (tamper_reordered, 3, "entry 3"),
    (tamper_tail_deleted, 6, "missing at the end"),
    (tamper_tail_appended, 7, "not written by the appliance"),
])
def test_tampering_is_detected(chained, capsys, tamper, bad, words):
    drop_triggers(chained)
    tamper(chained)
    restore_triggers(chained)  # so only the chain can give the tampering away
    result = audit.verify(chained.engine)
    assert not result.ok and result.bad_seq == bad, result
    assert words in result.problem
    code, out = verify_cli(chained, capsys)
    assert code == 7
    assert f"BROKEN at entry {bad}" in out


def test_dropped_triggers_are_reported(chained, capsys):
    drop_triggers(chained)
    result = audit.verify(chained.engine)
    assert result.bad_seq is None and not result.triggers_present and not result.ok
    code, out = verify_cli(chained, capsys)
    assert code == 7 and "triggers are MISSING" in out


def test_concurrent_appends_keep_one_chain(appliance_factory, database_url):
    app = appliance_factory(database_url=database_url)
    errors = []

    def work(n):
        try:
            for i in range(15):
                audit.record_system_event(app, action="test.concurrent", obj=f"worker:{n}", detail=str(i))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    result = audit.verify(app.engine)
    assert result.ok and result.entries == 120


def test_check_chain_is_pure():
    rows, prev = [], store.GENESIS
    for seq in (1, 2):
        fields = {"seq": seq, "at_us": seq, "actor": "a", "role": "r", "action": "x", "object": "", "ticket_id": None,
                  "client": "", "outcome": "ok", "detail": "ünïcode"}
        digest = store.entry_hash(fields, prev)
        rows.append(store.AuditRow(**fields, prev_hash=prev, hash=digest))
        prev = digest
    assert audit.check_chain(rows, (2, prev)).bad_seq is None
    assert audit.check_chain(rows[:1], (2, prev)).bad_seq == 2
    assert audit.check_chain(rows[::-1], (2, prev)).bad_seq == 1


def test_user_commands_are_audited(appliance_factory, sqlite_url, capsys):
    app = appliance_factory(database_url=sqlite_url)
    cfg = ["--config", str(app.config_path)]
    assert main(["user", "add", "nina", "--role", "operator", *cfg]) == 0
    assert main(["user", "reset-password", "nina", *cfg]) == 0
    assert main(["user", "disable", "nina", *cfg]) == 0
    capsys.readouterr()
    rows = audit.search(app.engine, actor="cli")
    assert [(r.action, r.object, r.client) for r in rows] == [
        ("user.add", "user:nina", "local"), ("user.reset-password", "user:nina", "local"),
        ("user.disable", "user:nina", "local"),
    ]
    assert audit.verify(app.engine).ok


def tamper_tail_deleted_head_rewound(app):
    sql(app, "DELETE FROM audit_log WHERE seq >= 5")
    sql(app, "UPDATE audit_head SET last_seq = 4, last_hash = :h WHERE id = 1", params={"h": _hash_of(app, 4)})


def tamper_rewritten(app):
    # change entry 3, then recompute every later hash and the head, as the appliance would have
    sql(app, "UPDATE audit_log SET outcome = 'refused: nothing to see' WHERE seq = 3")
    cols = ("seq", "at_us", "actor", "role", "action", "object", "ticket_id", "client", "outcome", "detail")
    with app.engine.begin() as conn:
        rows = conn.execute(sa.text(f"SELECT {', '.join(cols)} FROM audit_log ORDER BY seq")).all()
        prev = store.GENESIS
        for row in rows:
            digest = store.entry_hash(dict(zip(cols, row, strict=True)), prev)
            conn.execute(sa.text("UPDATE audit_log SET prev_hash = :p, hash = :h WHERE seq = :s"),
                         {"p": prev, "h": digest, "s": row[0]})
            prev = digest
        conn.execute(sa.text("UPDATE audit_head SET last_hash = :h WHERE id = 1"), {"h": prev})


@pytest.mark.parametrize("tamper, bad, words", [  # the verification adds entry 7 (audit.anchor) and anchors it
    (tamper_tail_deleted_head_rewound, 5, "entries 5..7 were verified at"),
])
def test_rewriting_after_a_verification_is_caught_by_the_anchor(chained, capsys, tamper, bad, words):
    code, _out = verify_cli(chained, capsys)  # a verification leaves its anchor outside the database
    anchor_path = chained.config.audit_anchor_path
    assert code == 0 and oct(anchor_path.stat().st_mode & 0o777) == "0o600"
    drop_triggers(chained)
    tamper(chained)
    restore_triggers(chained)
    assert audit.verify(chained.engine).ok  # without the anchor the database alone looks intact
    result = audit.verify(chained.engine, anchors.read(anchor_path))
    assert result.bad_seq == bad and words in result.problem, result
    code, out = verify_cli(chained, capsys)
    assert code == 7 and f"BROKEN at entry {bad}" in out and words in out
    assert not audit.verify_anchored(chained).ok  # the integrity watch's check sees it too


def test_a_chain_rewritten_without_the_key_is_caught_at_its_first_entry(chained, capsys):
    """A database writer recomputes every hash and the head, as a plain SHA-256 chain would allow: without
    the audit key (kept wrapped by the master key) no entry is sealed, and the database alone says so."""
    drop_triggers(chained)
    tamper_rewritten(chained)
    restore_triggers(chained)
    result = audit.verify(chained.engine)
    assert result.bad_seq == 1 and "not sealed with the audit key" in result.problem and "forged" in result.problem
    code, out = verify_cli(chained, capsys)
    assert code == 7 and "BROKEN at entry 1" in out


def test_the_anchor_moves_forward_and_a_broken_anchor_is_a_failure(chained, capsys):
    assert verify_cli(chained, capsys)[0] == 0
    anchor_path = chained.config.audit_anchor_path
    assert anchors.read(anchor_path).seq == 7  # entry 7 records the move: "entries 1..6 verified"
    (moved,) = audit.search(chained.engine, action=audit.ANCHOR_ACTION)
    assert moved.seq == 7 and moved.object == "node:test-node" and moved.detail.startswith("entries 1..6 verified")
    assert verify_cli(chained, capsys)[0] == 0 and anchors.read(anchor_path).seq == 7  # idle: no new entry
    audit.record_system_event(chained, action="test.event", obj="thing:8")
    assert audit.verify_anchored(chained).ok and anchors.read(anchor_path).seq == 9
    anchor_path.write_text("{not json")
    code, out = verify_cli(chained, capsys)
    assert code == 7 and "NOT VERIFIED" in out and "audit anchor" in out and "Restore" in out
    assert anchor_path.read_text() == "{not json"  # kept for a person to look at


def test_the_anchor_belongs_to_the_owner_of_the_data_dir(chained, capsys):
    """'vms audit verify' run by root must not leave an anchor the service user cannot read."""
    import os

    from tests.support.fixtures import missing_component

    if os.geteuid() != 0:
        missing_component("root, to give the data directory another owner")  # CI runs as root
    data = chained.config.audit_anchor_path.parent
    os.chown(data, 4242, 4242)
    try:
        assert verify_cli(chained, capsys)[0] == 0
        st = chained.config.audit_anchor_path.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (4242, 4242, 0o600)
    finally:
        os.chown(data, 0, 0)


# ---------------------------------------------------------------- every tampering: a named finding, exit 7
# (issue 19, item 4).  Each case starts from a trail that was verified once (so entry 7 records the anchor,
# as on a running appliance), drops the append-only triggers with real SQL, tampers, and runs the real
# 'vms audit verify'.  The triggers stay dropped, so the output names both.


def tamper_wiped(app):
    sql(app, "DELETE FROM audit_log", "DELETE FROM audit_head")


def tamper_tail_cut(app):
    sql(app, "DELETE FROM audit_log WHERE seq >= 6")  # audit_head left as it was


def tamper_anchor_deleted(app):
    app.config.audit_anchor_path.unlink()


def tamper_anchor_older(app):
    old = app.config.audit_anchor_path.read_bytes()  # a copy of the anchor at entry 7 ...
    for i in range(2):
        audit.record_system_event(app, action="test.event", obj=f"later:{i}")
    restore_triggers(app)
    assert audit.verify_anchored(app).ok  # ... outdated by a later verification (entry 10: "entries 1..9")
    drop_triggers(app)
    app.config.audit_anchor_path.write_bytes(old)


def tamper_anchor_forged(app):
    anchors.write(app.config.audit_anchor_path, anchors.Anchor(7, "ab" * 32, app.clock.now_us()))


def tamper_anchor_ahead(app):
    anchors.write(app.config.audit_anchor_path, anchors.Anchor(50, "ab" * 32, app.clock.now_us()))


def tamper_anchor_absurd(app):
    app.config.audit_anchor_path.write_text('{"seq": 99999999999999999999999, "hash": "%s", "verified_us": 1}'
                                            % ("ab" * 32))


TAMPERINGS = [  # (tampering, the first line of the finding, words naming what is wrong and what was expected)
    (tamper_wiped, "BROKEN at entry 1", ["the chain's head record (table audit_head) is missing",
                                         "0 entries are stored", "entries 1..7 were verified at"]),
    (tamper_deleted, "BROKEN at entry 3", ["entry 3 is missing (the next entry present is 4): deleted"]),
    (tamper_changed, "BROKEN at entry 3", ["entry 3 does not match its own seal (it stores ",
                                           "its contents were changed"]),
    (tamper_reordered, "BROKEN at entry 3", ["entry 3 is entry 4 renumbered (its hash fits seq 4, not 3)",
                                             "reordered"]),
    (tamper_inserted, "BROKEN at entry 3", ["entry 3 is not sealed with the audit key", "it was forged"]),
    (tamper_tail_appended, "BROKEN at entry 8", ["entry 8 was not written by the appliance: inserted",
                                                 "says the appliance wrote 7 entries"]),
    (tamper_tail_cut, "BROKEN at entry 6", ["entries 6..7 were verified at", "are missing now: deleted"]),
    (tamper_tail_deleted_head_rewound, "BROKEN at entry 5", ["entries 5..7 were verified at"]),
    (tamper_anchor_deleted, "NOT VERIFIED", ["audit.anchor is missing, but entry 7 records that it was written",
                                             "entries 1..6 verified", "deleted or moved", "--new-anchor"]),
    (tamper_anchor_older, "NOT VERIFIED", ["names entry 7 (verified at", "entry 10 records that entries 1..9 were "
                                           "verified", "replaced by an older one"]),
    (tamper_anchor_forged, "BROKEN at entry 7", ["entry 7 is not the entry 7 verified at",
                                                 "the audit anchor records abababababab…",
                                                 "or the anchor file replaced"]),
    (tamper_anchor_ahead, "BROKEN at entry 8", ["entries 8..50 were verified at", "or the anchor file replaced"]),
    (tamper_anchor_absurd, "NOT VERIFIED", ["audit.anchor: not an audit anchor", "Restore"]),
]


@pytest.mark.parametrize("tamper, first, words", TAMPERINGS, ids=[t[0].__name__ for t in TAMPERINGS])
def test_every_tampering_is_a_named_finding_not_a_traceback(chained, capsys, tamper, first, words):
    assert verify_cli(chained, capsys)[0] == 0  # as the integrity watch does within the hour: entry 7, anchored
    drop_triggers(chained)
    tamper(chained)
    code = main(["audit", "verify", "--config", str(chained.config_path)])
    out, err = capsys.readouterr()
    assert code == 7, out + err
    assert out.startswith(f"audit trail {first}"), out
    for w in words:
        assert w in out, (w, out)
    assert "triggers are MISSING" in out
    assert "Traceback" not in out + err and err == ""
    assert not audit.verify_anchored(chained).ok  # the integrity watch and the API see it too


def test_tampering_before_any_verification_is_named(chained, capsys):
    """Without an anchor yet the head still gives a cut tail and a wiped trail away."""
    drop_triggers(chained)
    tamper_tail_cut(chained)
    code, out = verify_cli(chained, capsys)
    assert code == 7
    assert ("BROKEN at entry 6: entry 6 is missing at the end: deleted (the head, table audit_head, says the "
            "appliance wrote 6 entries)") in out
    tamper_wiped(chained)
    code, out = verify_cli(chained, capsys)
    assert code == 7 and "BROKEN at entry 1" in out and "head record (table audit_head) is missing" in out


def test_a_fresh_trail_needs_no_anchor_until_it_was_anchored(appliance_factory, database_url, capsys):
    app = appliance_factory(database_url=database_url)
    assert verify_cli(app, capsys)[0] == 0  # empty: nothing to anchor, no anchor file needed
    assert not app.config.audit_anchor_path.exists()
    audit.record_system_event(app, action="test.event")
    assert verify_cli(app, capsys)[0] == 0 and anchors.read(app.config.audit_anchor_path).seq == 2


def test_a_new_anchor_on_purpose_after_a_restore(chained, capsys):
    """operations.md, "Restore": the old anchor is kept beside, the trail records the replacement."""
    path = chained.config.audit_anchor_path
    assert verify_cli(chained, capsys)[0] == 0
    anchors.write(path, anchors.Anchor(50, "ab" * 32, 1))  # stands for the anchor of the lost, newer trail
    assert verify_cli(chained, capsys)[0] == 7
    assert main(["audit", "verify", "--new-anchor", "--config", str(chained.config_path)]) == 0
    assert "intact on its own, a new anchor written: 7 entries" in capsys.readouterr().out
    (aside,) = path.parent.glob("audit.anchor.replaced-*")
    assert anchors.read(aside).seq == 50 and anchors.read(path).seq == 8
    moved = audit.search(chained.engine, action=audit.ANCHOR_ACTION)[-1]
    assert "made anew, the previous anchor (seq 50, hash abab" in moved.detail and aside.name in moved.detail
    assert verify_cli(chained, capsys)[0] == 0
    drop_triggers(chained)
    tamper_changed(chained)  # a trail that does not verify on its own gets no new anchor
    assert main(["audit", "verify", "--new-anchor", "--config", str(chained.config_path)]) == 7
    assert "BROKEN at entry 3" in capsys.readouterr().out and anchors.read(path).seq == 8


def test_a_deleted_head_row_alone_is_named(chained, capsys):
    drop_triggers(chained)
    sql(chained, "DELETE FROM audit_head")
    code, out = verify_cli(chained, capsys)
    assert code == 7 and "audit_head" in out and "6 entries are stored" in out
