"""The notification mails' words come from the ``vms`` catalog: every mail in Danish and English with the same
placeholders, written in the reader's language, with times and numbers as that language writes them."""

from __future__ import annotations

import string
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from vms.core import i18n
from vms.notify import texts
from vms.notify.texts import Moment

ZONE = "Europe/Copenhagen"
# 3 Dec 2026 17:04:05 UTC = 18:04 in Copenhagen
T_US = int(datetime(2026, 12, 3, 18, 4, 5, tzinfo=ZoneInfo(ZONE)).timestamp() * 1_000_000)
VALUES = {"name": "mia", "ticket": "12345", "delivery": "7", "filed": Moment(T_US), "decided": Moment(T_US),
          "until": Moment(T_US), "when": Moment(T_US), "deadline": Moment(T_US), "hours": 24, "count": 1234,
          "limit": 2000, "what": "x", "message": "y", "link": "https://cctv.example/tickets/12345"}


def _fields(s: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(s) if f}


@pytest.mark.parametrize("kind", sorted(texts.MAILS))
def test_every_mail_has_a_danish_and_an_english_text_with_the_same_placeholders(kind):
    for key in texts.MAILS[kind]:
        da, en = i18n.translator("da"), i18n.translator("en")
        assert da.has(key) and en.has(key), key
        assert da(key) != en(key), f"{key}: the Danish text is the English one"
        assert _fields(da(key)) == _fields(en(key)) and _fields(da(key)) <= set(VALUES), key
    subject, body = texts.render(kind, "da", ZONE, **VALUES)
    assert "{" not in subject + body and "mail." not in subject + body  # every field filled, no bare key
    assert body.endswith(i18n.translator("da")(texts.FOOTER))


def test_a_mail_is_in_the_readers_language_with_local_times_and_numbers():
    subject, body = texts.render("delivery.downloaded", "da", ZONE, **VALUES)
    assert subject == "Pakken i sag 12345 er hentet"  # a ticket's number is a name: never "12.345"
    assert body.startswith("Hej mia\n\n") and "den 3. dec. 2026 18:04." in body
    assert "download nr. 1.234 af højst 2.000" in body and "alt om sagen står på siden" in body
    subject, body = texts.render("delivery.downloaded", "en", ZONE, **VALUES)
    assert subject == "The package of ticket 12345 was downloaded"
    assert "on 3 Dec 2026, 18:04." in body and "download 1,234 of 2,000" in body and "holds no footage" in body
    # in the appliance's zone: the same moment in UTC reads an hour earlier
    assert "den 3. dec. 2026 17:04" in texts.render("delivery.expired", "da", "UTC", **VALUES)[1]
    # no language, or one we do not have: Danish
    assert texts.render("ticket.denied", None, ZONE, **VALUES)[0] == "Din sag 12345 er afvist"
    assert texts.render("ticket.denied", "fr", ZONE, **VALUES)[0] == "Din sag 12345 er afvist"
    assert texts.words("mail.ticket_reminder.body", "da", ZONE, **VALUES | {"hours": 0.5}).count("0,5 timer") == 1


def test_problems_are_named_in_the_readers_language():
    assert set(texts.PROBLEMS) == {"disk_forecast", "camera_offline", "retention_violation", "audit_chain_broken",
                                   "disk_low"}
    assert texts.problem_name("audit_chain_broken", "da") == "revisionssporet kan ikke verificeres"
    assert texts.problem_name("audit_chain_broken", "en") == "the audit trail does not verify"
    assert texts.problem_name("new_kind", "da") == "new kind"  # a kind without a text yet: its name, not a gap
    assert texts.language(None) == "da" and texts.language("fr") == "da" and texts.language("en") == "en"


def test_the_mails_are_not_a_python_table_any_more():
    """Subjects and bodies live in the catalogs only: the module holds keys, not words."""
    keys = [k for pair in texts.MAILS.values() for k in pair] + list(texts.PROBLEMS.values()) + [texts.FOOTER]
    assert all(k.startswith("mail.") and " " not in k for k in keys)
