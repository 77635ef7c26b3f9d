"""Refusals of the domain reach people in Danish: representative bad inputs walked through the API with
``Accept-Language: da`` get a problem body whose ``message_id`` names a catalog text and whose
``localized_detail`` is that Danish text (not the English ``detail``, which stays for scripts).

Each case is a request a person (or a page's script) can make: filing a ticket, a user, a token, a delivery
link, an export job, playback, a region search.  The expected Danish words are fixed here, so a key that loses
its Danish text, or a raise site that loses its key, fails."""

from __future__ import annotations

import pytest

from api import i18n
from tests.support.api_env import *  # noqa: F403 (fixtures)
from tests.support.api_env import iso

HOUR_US = 3_600_000_000
NO_PACKAGE = "0" * 32


def _ticket_body(now_us: int, **change) -> dict:
    return {"cameras": ["entrance"], "start": iso(now_us - 2 * HOUR_US), "end": iso(now_us - HOUR_US),
            "description": "d", "purpose": "p", "legal_basis": "l", "action": "view", "recipient": "police"} | change


def _cases(env) -> list[tuple[str, str, str, dict | None, str, str]]:
    """(who, method, path, json, message id, Danish words in localized_detail)"""
    now = env.clock.now_us()
    t = env.file_ticket("olga", start_us=now - 2 * HOUR_US, end_us=now - HOUR_US)
    env.approve(t["id"], "mia")
    inside, outside = iso(now - 2 * HOUR_US + 1_000_000), iso(now - 3 * HOUR_US)
    play = f"/api/tickets/{t['id']}/cameras/{{cam}}/play?start={{start}}&end={{end}}"
    return [
        ("olga", "POST", "/api/tickets", _ticket_body(now, cameras=["nowhere"]), "ticket.err.unknown_cameras",
         "Ukendte kameraer: nowhere"),
        ("olga", "POST", "/api/tickets", _ticket_body(now, cameras=[]), "ticket.err.no_cameras",
         "Vælg mindst ét kamera"),
        ("olga", "POST", "/api/tickets", _ticket_body(now, purpose="   "), "input.too_short", "Formål: mindst 1 tegn"),
        ("mia", "POST", "/api/tickets", _ticket_body(now, received=iso(now + 48 * HOUR_US), action="export",
                                                       recipient="data_subject"),
         "request.err.future", "kan ikke ligge i fremtiden"),
        ("adam", "PATCH", "/api/users/olga", {}, "users.err.nothing", "Angiv en rolle"),
        ("adam", "GET", "/api/users/nobody", None, "users.err.unknown", "Brugeren »nobody« findes ikke"),
        ("olga", "DELETE", "/api/auth/tokens/999999", None, "token.err.unknown", "API-nøgle 999999 findes ikke"),
        ("mia", "POST", "/api/deliveries/999999/revoke", None, "link.err.unknown", "Udleveringslink 999999 findes ikke"),
        ("mia", "POST", f"/api/packages/{NO_PACKAGE}/deliveries", {"recipient": "Politiet", "passcode": "abcdefghij",
                                                              "generate_passcode": True},
         "link.err.passcode_both", "ikke begge dele"),
        ("mia", "POST", f"/api/packages/{NO_PACKAGE}/deliveries", {"recipient": "Politiet"},
         "export.err.package_gone", f"Pakke {NO_PACKAGE} findes ikke"),
        ("mia", "GET", "/api/exports/0123456789abcdef", None, "export.err.unknown_job", "kendes ikke"),
        ("mia", "GET", play.format(cam="hall", start=inside, end=iso(now - HOUR_US)), None,
         "refused.not_a_ticket_camera", "hører ikke til sagens kameraer"),
        ("mia", "GET", play.format(cam="entrance", start=outside, end=inside), None, "refused.span_outside",
         "uden for sagens tidsrum"),
        ("mia", "POST", f"/api/tickets/{t['id']}/close", {"reason": "done"}, "", ""),  # closes: the next one is final
        ("mia", "POST", f"/api/tickets/{t['id']}/close", {"reason": "again"}, "refused.final", "opret en ny sag"),
    ]


def test_bad_inputs_are_explained_in_danish(api_env):
    en = i18n.translator("en")
    da = i18n.translator("da")
    seen = set()
    for who, method, path, body, key, danish in _cases(api_env):
        r = api_env.client(who).request(method, path, json=body, headers={"Accept-Language": "da"})
        if not key:
            assert r.status_code < 300, r.text
            continue
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
        p = r.json()
        assert p.get("message_id") == key, (path, body, p)
        assert r.headers["content-language"] == "da"
        assert danish in p["localized_detail"], (key, p["localized_detail"])
        assert p["localized_detail"] == i18n.error_text(da, _error(p))
        assert p["localized_detail"] != p["detail"] and p["localized_detail"] != i18n.error_text(en, _error(p))
        seen.add(key)
    assert len(seen) == 14


@pytest.mark.parametrize("lang", ["en", "en-GB,en;q=0.9,da;q=0.5"])
def test_the_same_refusal_in_english_when_asked(api_env, lang):
    r = api_env.client("adam").get("/api/users/nobody", headers={"Accept-Language": lang})
    p = r.json()
    assert r.status_code == 404 and r.headers["content-language"] == "en"
    assert p["localized_detail"] == "User “nobody” does not exist." and p["detail"] == "user 'nobody' does not exist"


def _error(problem: dict):
    from vms.core.errors import DomainError, Kind
    return DomainError(Kind.INVALID, problem["detail"], key=problem["message_id"], params=problem["params"])
