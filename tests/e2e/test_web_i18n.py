"""The message catalogue: Danish and English have the same keys, and every key
a template or page module names literally exists (no raw keys on screen)."""

from __future__ import annotations

import re
from pathlib import Path

from api.web import i18n

ROOT = Path(__file__).resolve().parents[2]
CALL = re.compile(r"""\bt\(([^()]*)""")  # the arguments of t(...), up to a nested call
KEY = re.compile(r"""['"]([a-z_]+\.[a-z_]+)['"]""")  # a key-like literal, e.g. 'nav.signout'


def used_keys() -> set[str]:
    """Every key-like literal inside a t(...) call (both sides of t('a' if x else 'b'));
    keys built from data (t('state.' + s)) are covered by the catalogue test below."""
    keys = set()
    for path in [*(ROOT / "api" / "templates").glob("*.html"), *(ROOT / "api" / "web").glob("*.py")]:
        for args in CALL.findall(path.read_text()):
            keys |= set(KEY.findall(args))
    return keys


def test_danish_and_english_have_the_same_keys():
    assert set(i18n.DA) - set(i18n.EN) == set()
    assert set(i18n.EN) - set(i18n.DA) == set()


def test_every_key_used_exists():
    used = used_keys()
    assert len(used) > 100  # the scan found the templates
    assert sorted(used - set(i18n.EN)) == []


def test_keys_built_from_domain_words_exist():
    from vms.access import tickets, users
    from vms.evidence.jobs import JobState

    needed = ([f"state.{s}" for s in tickets.STATES] + [f"action.{a}" for a in tickets.ACTIONS]
              + [f"recipient.{r}" for r in tickets.RECIPIENTS] + [f"role.{r}" for r in users.ROLES]
              + [f"bar.{k}" for k in ("recorded", "gap", "missing")] + [f"job.{s.value}" for s in JobState]
              + [f"link.state.{s}" for s in ("live", "expired", "revoked", "exhausted")]
              + [f"reason.{r}" for r in ("age", "space", "quota", "quarantine")]
              + [f"changes.kind.{k}" for k in ("add", "role", "enable", "reset")]
              + [f"doorlog_kind.{k}" for k in ("cpr", "card")]
              + [f"doorlog_status.{k}" for k in ("imported", "duplicate", "rejected")])
    assert sorted(set(needed) - set(i18n.EN)) == []


def test_danish_is_the_default_and_unknown_keys_show_a_fallback():
    assert i18n.DEFAULT == "da"
    t = i18n.translator("xx")
    assert t("nav.signout") == "Log ud"
    assert i18n.translator("en")("nav.signout") == "Sign out"
    assert t("reason.new-kind", "new-kind") == "new-kind"
