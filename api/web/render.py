"""Rendering pages: one Jinja2 environment per language, local-time filters, the page context.

Each language has its own environment with Jinja2's i18n extension (``jinja2.ext.i18n``) and that
language's gettext catalogs installed (:func:`api.web.i18n.translator`), so ``{{ _('key') }}``,
``{% trans %}`` and the shorter ``{{ t('key') }}`` (the same function; ``t(key, default)`` for words from
data) give the reader's language; msgids are the catalogs' symbolic keys (docs/design/i18n.md).

Times are UTC microseconds inside; on screen they are shown in the appliance's
time zone (``config.timezone``, Europe/Copenhagen by default) as the reader's language writes them
(Babel: ``3. dec. 2026 18:04``), and typed into ``datetime-local`` inputs in that zone
(:func:`parse_local`).  Every page gets ``t`` (the reader's catalogs), ``lang``, ``user`` (the
signed-in principal or None), ``csrf`` (the session's CSRF token for forms),
``path``, and the policy's answers ``can(action, obj)``, ``refusal(action, obj)``
and ``who(action)`` (api/web/controls.py): a template shows a control only
when ``can`` says yes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader

from api import deps
from api.web import i18n
from api.web.controls import Controls, who
from vms.access import auth, policy, tickets
from vms.core.numbers import id_number
from vms.core.times import iso
from vms.recording.names import CameraNames

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"


def _templates(lang: str) -> Jinja2Templates:
    env = Environment(loader=FileSystemLoader(str(TEMPLATE_DIR)), autoescape=True, extensions=["jinja2.ext.i18n"])
    t = i18n.translator(lang)
    env.install_gettext_callables(t.gettext, t.ngettext, newstyle=False)  # texts hold {fields}, not %(name)s
    env.globals["t"] = t
    env.globals["id_number"] = id_number  # a package's ticket id links to the ticket only when it is one
    return Jinja2Templates(env=env)


TEMPLATES_BY_LANG = {lang: _templates(lang) for lang in i18n.LANGUAGES}
TEMPLATES = TEMPLATES_BY_LANG[i18n.DEFAULT]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LANG_COOKIE = "vms_lang"
#: pages load only their own CSS and scripts; inline style attributes place the timeline bars; media from blob:
#: is a Media Source Extensions buffer the page's own script fills (live view, the continuous player)
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "media-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def zone(app) -> ZoneInfo:
    return ZoneInfo(app.config.timezone)


def local_dt(app, t_us: int) -> datetime:
    return (EPOCH + timedelta(microseconds=t_us)).astimezone(zone(app))


def fmt_local(app, t_us: int | None, *, seconds: bool = True, lang: str | None = None) -> str:
    """A UTC time in the appliance's zone as the reader's language writes it (``3. dec. 2026 18:04:05``);
    without ``lang`` as ``2026-12-03 18:04:05`` (logs, files)."""
    if t_us is None:
        return "–"
    if lang is not None:
        return i18n.translator(lang).datetime(local_dt(app, t_us), seconds=seconds)
    return local_dt(app, t_us).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def input_local(app, t_us: int | None) -> str:
    """The value of a ``datetime-local`` input (minutes) for a UTC time."""
    return "" if t_us is None else local_dt(app, t_us).strftime("%Y-%m-%dT%H:%M")


def parse_local(app, text: str) -> int:
    """A ``datetime-local`` value (local time of the appliance) as UTC microseconds.

    Raises ValueError for anything else.  In the autumn hour that occurs twice
    the first (summer-time) reading is taken; a spring-forward time that does
    not exist is read as if the clock had not jumped (zoneinfo's rule)."""
    text = (text or "").strip()
    if not text:
        raise ValueError("empty")
    naive = datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S" if len(text) > 16 else "%Y-%m-%dT%H:%M")
    if not 1970 < naive.year < 2200:  # the API's range (api.schemas.Instant); also keeps zone arithmetic in range
        raise ValueError(f"year {naive.year} is out of range (1971 to 2199)")
    aware = naive.replace(tzinfo=zone(app))
    return (aware.astimezone(UTC) - EPOCH) // timedelta(microseconds=1)


iso_utc = iso


def fmt_bytes(n: int | float | None, lang: str | None = None) -> str:
    """``1.5 GiB``; with ``lang`` in that language's digits (``1,5 GiB`` in Danish)."""
    if n is None:
        return "–"
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            break
        n /= 1024
    digits = 0 if unit == "B" else 1
    number = i18n.translator(lang).number(n, digits=digits) if lang else f"{n:.{digits}f}"
    return f"{number} {unit}"


def error_text(request: Request, exc) -> str:
    """A :class:`vms.core.errors.DomainError` in the reader's language (its English message if untranslated)."""
    return i18n.error_text(i18n.translator(lang_of(request)), exc)


def lang_of(request: Request) -> str:
    lang = request.cookies.get(LANG_COOKIE, i18n.DEFAULT)
    return lang if lang in i18n.LANGUAGES else i18n.DEFAULT


def csrf_of(request: Request) -> str:
    secret = request.cookies.get(deps.SESSION_COOKIE)
    return auth.csrf_token(secret) if secret else ""


def render(request: Request, name: str, context: dict | None = None, *, status: int = 200):
    """The page ``name`` in the reader's language (``context["lang"]`` overrides the cookie's)."""
    app = request.app.state.appliance
    lang = i18n.translator((context or {}).get("lang") or lang_of(request)).lang
    principal = getattr(request.state, "principal", None)
    controls = Controls(principal, app.clock.now_us())
    t = i18n.translator(lang)
    ctx = {
        "t": t,
        "lang": lang,
        "user": principal,
        # the policy decides what a page offers: a button, link or form only when the action is allowed for this
        # user and this object (api/web/controls.py); ``who`` names the roles that can, for the notes
        "can": controls.can,
        "refusal": controls.refusal,
        "may": controls.can,  # the older name, for templates not yet moved to ``can``
        "who": lambda action: who(t, action),
        "reason": lambda refusal: i18n.reason(t, refusal),  # a refusal's reason in the reader's language
        "own_tickets_only": principal is not None and policy.own_tickets_only(principal.role),
        # the top bar's badge: tickets waiting for a decision this manager may make (asked only by base.html)
        "waiting": lambda: tickets.waiting_count(app, principal) if principal is not None else 0,
        "csrf": csrf_of(request),
        "path": request.url.path,
        "full_path": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        "local": lambda t_us, seconds=True: fmt_local(app, t_us, seconds=seconds, lang=lang),
        "input_local": lambda t_us: input_local(app, t_us),
        "iso": iso_utc,
        "size": lambda n: fmt_bytes(n, lang),
        "number": lambda value, digits=0: i18n.translator(lang).number(value, digits=digits),
        "timezone": app.config.timezone,
        "live_on": any(c.enabled and c.live_view for c in app.config.cameras),  # a site turned live view on
        "camera": CameraNames(app.engine),  # camera.label(id): name and place people read, read once per page
    }
    ctx.update(context or {})
    ctx["lang"], ctx["t"] = lang, i18n.translator(lang)
    response = TEMPLATES_BY_LANG[lang].TemplateResponse(request, name, ctx, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
