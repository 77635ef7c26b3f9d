"""The audit chain's fast canonical form writes exactly the bytes of its JSON definition."""

from __future__ import annotations

import random

import pytest

from storage.sql import audit as store

TRICKY = [
    "", "plain", 'quote " and backslash \\', "slash / and tab \t newline \n return \r", "\x00\x01\x1f\x7f",
    "æøå Ærø — “quotes” …", "emoji 🎥 and astral 𝄞", "\u2028\u2029 line separators", "\ud800 lone surrogate",
    "<script>&amp;</script>", "x" * 2000,
]


def fields(**kw) -> dict:
    base = {"seq": 1, "at_us": 1_790_000_000_123_456, "actor": "olga", "role": "operator", "action": "ticket.file",
            "object": "ticket:7", "ticket_id": 7, "client": "10.0.3.17", "outcome": "ok", "detail": ""}
    return base | kw


def reference_bytes(f: dict, prev: str) -> bytes | type:
    try:
        return store._reference(f, prev)
    except Exception as exc:  # the fast form must fail the same way
        return type(exc)


def fast_bytes(f: dict, prev: str) -> bytes | type:
    try:
        return store.canonical(f, prev)
    except Exception as exc:
        return type(exc)


@pytest.mark.parametrize("text", TRICKY)
@pytest.mark.parametrize("name", ["actor", "role", "action", "object", "client", "outcome", "detail"])
def test_every_text_field_is_written_as_json_writes_it(name, text):
    f = fields(**{name: text})
    assert fast_bytes(f, store.GENESIS) == reference_bytes(f, store.GENESIS)


@pytest.mark.parametrize("kw", [
    {"ticket_id": None}, {"ticket_id": 2**62}, {"seq": 0}, {"at_us": -1}, {"at_us": 2**63 - 1},
    # types the appliance never writes fall back to the definition
    {"ticket_id": True}, {"seq": 1.0}, {"at_us": "1"}, {"actor": 5}, {"detail": None}, {"ticket_id": "7"},
])
def test_numbers_nulls_and_odd_types(kw):
    f = fields(**kw)
    assert fast_bytes(f, "ab" * 32) == reference_bytes(f, "ab" * 32)


def test_random_entries_and_row_hash_agree():
    rnd = random.Random(5)
    alphabet = "abcæø\"\\\n\t\x00€🎥 /:."
    prev = store.GENESIS
    for seq in range(1, 2001):
        f = fields(seq=seq, at_us=rnd.randrange(2**62), ticket_id=rnd.choice([None, rnd.randrange(1, 2**40)]),
                   **{k: "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(12)))
                      for k in ("actor", "role", "action", "object", "client", "outcome", "detail")})
        assert store.canonical(f, prev) == store._reference(f, prev)
        digest = store.entry_hash(f, prev)
        row = store.AuditRow(**f, prev_hash=prev, hash=digest)
        assert store.row_hash(row) == digest == store.row_hash(tuple(row))
        prev = digest


def test_nul_in_an_entry_field_is_replaced_not_refused():
    """PostgreSQL text cannot hold NUL; an audit entry (a refusal of hostile input, say) must still be written."""
    from storage.sql.audit import clip

    assert clip("object", "user:a\x00b") == "user:a\ufffdb"
    assert clip("detail", "x" * 3000).endswith("…") and len(clip("detail", "x" * 3000)) == 2000
