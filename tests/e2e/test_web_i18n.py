"""The web UI's texts come from the gettext catalogs (api/locale): the keys the templates and page modules
name all exist, and a page is rendered in the reader's language.  Completeness, placeholders and dates:
tests/unit/test_catalogs.py."""

from __future__ import annotations

from api.web import i18n, render
from tests.unit.test_catalogs import texts


def test_templates_have_the_i18n_extension_with_each_languages_catalog():
    for lang in i18n.LANGUAGES:
        env = render.TEMPLATES_BY_LANG[lang].env
        assert "jinja2.ext.InternationalizationExtension" in env.extensions
        assert env.from_string("{{ _('nav.signout') }}|{% trans %}nav.signout{% endtrans %}").render() == (
            "Log ud|Log ud" if lang == "da" else "Sign out|Sign out")


def test_every_key_used_exists():
    from tests.unit.test_catalogs import extracted

    t = i18n.translator("en")
    assert sorted(k for k in extracted() if not t.has(k)) == []

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
              + [f"doorlog_status.{k}" for k in ("imported", "duplicate", "rejected")]
              + [f"dl.gone.{s}" for s in ("revoked", "expired", "exhausted", "deleted")]
              + [f"subject.{f}" for f in ("x", "y", "width", "height")])
    for lang in i18n.LANGUAGES:  # each language's own catalog, not the English fallback
        have = {k for k, v in texts("messages", lang).items() if v.strip()}
        assert sorted(k for k in needed if k not in have) == [], lang


def test_danish_is_the_default_and_unknown_keys_show_a_fallback():
    assert i18n.DEFAULT == "da"
    t = i18n.translator("xx")
    assert t("nav.signout") == "Log ud"
    assert i18n.translator("en")("nav.signout") == "Sign out"
    assert t("reason.new-kind", "new-kind") == "new-kind"
