"""The gettext catalogs: every text the code names has Danish (and English), with the same placeholders.

Extraction is Babel's, with the project's deploy/babel.cfg (Python under api/ and vms/, Jinja2 templates) and the
keywords ``t``, ``_``, ``gettext``, ``N_``: exactly what ``pybabel extract -F deploy/babel.cfg -k t -k N_`` finds.
"""

from __future__ import annotations

import re
import string
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import CommandLineInterface, parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from api import i18n as web
from vms.core import i18n

ROOT = Path(__file__).resolve().parents[2]
CATALOGS = {"messages": web.LOCALE, "vms": i18n.VMS_LOCALE}
KEY = re.compile(r"[a-z_]+(\.[a-z0-9_-]+)+")


def read(domain: str, lang: str):
    with i18n.po_path(CATALOGS[domain], domain, lang).open("rb") as f:
        return read_po(f, locale=lang, domain=domain)


def texts(domain: str, lang: str) -> dict[str, str]:
    return {m.id: m.string for m in read(domain, lang) if m.id}


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def extracted() -> dict[str, str]:
    """msgid -> where it is first named, for every key-like msgid in the sources."""
    with (ROOT / "deploy" / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    keywords = {**DEFAULT_KEYWORDS, "t": None, "N_": None}
    found = {}
    for filename, lineno, msgid, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=keywords):
        if isinstance(msgid, tuple):
            msgid = msgid[0]
        if isinstance(msgid, str) and KEY.fullmatch(msgid):
            found.setdefault(msgid, f"{filename}:{lineno}")
    return found


def test_every_extracted_message_has_a_danish_and_an_english_text():
    used = extracted()
    assert len(used) > 200  # the extraction found the templates, the pages and the policy
    assert "nav.queue" in used and "refused.four_eyes" in used
    assert "mail.delivery_expired.body" in used and "mail.problem_text.camera_offline" in used  # the mails
    for lang in i18n.LANGUAGES:
        have = {k for d in CATALOGS for k, v in texts(d, lang).items() if v.strip()}
        missing = sorted(f"{k} ({where})" for k, where in used.items() if k not in have)
        assert missing == [], (f"no {lang} text for: {missing}; add it to api/locale/{lang}/LC_MESSAGES/messages.po "
                               f"or vms/locale/{lang}/LC_MESSAGES/vms.po (docs/design/i18n.md)")


@pytest.mark.parametrize("domain", sorted(CATALOGS))
def test_danish_and_english_have_the_same_keys_texts_and_placeholders(domain):
    da, en = texts(domain, "da"), texts(domain, "en")
    assert sorted(set(da) ^ set(en)) == []
    assert sorted(k for k, v in da.items() if not v.strip()) == []
    assert sorted(k for k, v in en.items() if not v.strip()) == []
    assert [k for k in da if fields(da[k]) != fields(en[k])] == []
    for catalog in (read(domain, "da"), read(domain, "en")):
        assert [m.id for m in catalog if m.id and m.fuzzy] == []  # a fuzzy text is not shown: no silent gaps


def test_loading_compiles_as_pybabel_compile_does(tmp_path):
    """The catalogs are compiled when first read; that gives what `pybabel compile` writes to a .mo file."""
    for domain, directory in CATALOGS.items():
        for lang in i18n.LANGUAGES:
            mo = tmp_path / f"{domain}-{lang}.mo"
            CommandLineInterface().run(["pybabel", "-q", "compile", "-D", domain, "-l", lang,
                                        "-i", str(i18n.po_path(directory, domain, lang)), "-o", str(mo)])
            with mo.open("rb") as f:
                compiled = {m.id: m.string for m in read_mo(f) if m.id}
            loaded = i18n.catalog(directory, domain, lang)
            assert compiled and {k: loaded.gettext(k) for k in compiled} == compiled


def test_danish_is_the_default_and_unknown_keys_show_a_fallback():
    assert i18n.DEFAULT == "da"
    t = web.translator("xx")
    assert t("nav.signout") == "Log ud"
    assert web.translator("en")("nav.signout") == "Sign out"
    assert t("reason.new-kind", "new-kind") == "new-kind"
    assert t("no.such.key") == "no.such.key"


def test_dates_and_numbers_are_written_as_each_language_writes_them():
    moment = datetime(2026, 12, 3, 18, 4, 5, tzinfo=ZoneInfo("Europe/Copenhagen"))
    assert web.translator("da").datetime(moment) == "3. dec. 2026 18:04"
    assert web.translator("da").datetime(moment, seconds=True) == "3. dec. 2026 18:04:05"
    assert web.translator("en").datetime(moment) == "3 Dec 2026, 18:04"
    assert web.translator("da").number(1234.56, digits=1) == "1.234,6"
    assert web.translator("en").number(1234.56, digits=1) == "1,234.6"


def test_refusals_carry_a_message_id_the_reader_gets_in_their_language():
    from vms.access import policy

    error = policy.ticket_refusal("manager", 1, policy.Action.TICKET_CLOSE, policy.TicketScope(
        7, "denied", 2, ("cam",), 0, 1, None)).error()
    assert error.key == "refused.final" and error.params == {"id": 7, "state": "denied"}
    assert web.reason(web.translator("da"), error) == "sagen er afsluttet (afvist, lukket eller udløbet); opret en ny sag"
    assert web.error_text(web.translator("da"), error) == ("Sagen er afsluttet (afvist, lukket eller udløbet); "
                                                          "opret en ny sag.")  # on its own: a sentence
    assert web.error_text(web.translator("en"), error).startswith("The ticket is finished")
    missing = policy.no_such_ticket(12).error()
    assert web.error_text(web.translator("da"), missing) == "Sag 12 findes ikke."  # params filled in
    role = policy.role_refusal("operator", policy.Action.TICKET_DECIDE).error()
    assert web.error_text(web.translator("da"), role) == "Det er forbeholdt: leder. Du er logget ind som operatør."
    assert "final" in error.message  # the English message stays for logs and the API's detail
    assert web.accept_language("en-GB,en;q=0.9,da;q=0.5") == "en"
    assert web.accept_language("da, en;q=0.8") == "da"
    assert web.accept_language("fr") == web.accept_language(None) == "da"
