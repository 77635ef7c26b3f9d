"""The auditor's pages: the audit trail (filters, paging, CSV), the chain check,
the retention report and the deletion records.  Auditors see no footage.

The CSV download is the API's ``/api/audit/export.csv`` with the same filters
(the export is itself audited there).  Filters typed wrong give a message on
the page, not an error response.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from fastapi import APIRouter, Request

from api.web.i18n import translator
from api.web.render import iso_utc, lang_of, parse_local, render, zone
from api.web.session import AuditReader
from vms.access import account_changes, audit
from vms.core.numbers import decimal, id_number
from vms.ops import overview as queries
from vms.retention import rules as retention

router = APIRouter(include_in_schema=False)
PAGE = 200
ACTION = re.compile(r"^[a-z0-9._-]{1,64}$")
CAMERA = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def _filters(app, t, actor: str, action: str, ticket: str, since: str, until: str) -> tuple[dict, list[str]]:
    """The audit.search filters from the form's text, and the problems found."""
    out: dict = {"actor": None, "action": None, "ticket_id": None, "since_us": None, "until_us": None}
    problems = []
    actor, action, ticket = actor.strip(), action.strip(), ticket.strip()
    if actor:
        if len(actor) > 64 or any(ord(c) < 32 or ord(c) == 127 for c in actor):
            problems.append(t("audit.bad_actor"))
        else:
            out["actor"] = actor
    if action:
        if not ACTION.match(action):
            problems.append(t("audit.bad_action"))
        else:
            out["action"] = action
    if ticket:
        if (ticket_id := id_number(ticket)) is None:
            problems.append(t("audit.bad_ticket"))
        else:
            out["ticket_id"] = ticket_id
    for key, text in (("since_us", since), ("until_us", until)):
        if text.strip():
            try:
                out[key] = parse_local(app, text)
            except ValueError:
                problems.append(t("audit.bad_time"))
    return out, problems


def _csv_query(f: dict) -> str:
    q = {"actor": f["actor"], "action": f["action"], "ticket_id": f["ticket_id"],
         "since": iso_utc(f["since_us"]) if f["since_us"] is not None else None,
         "until": iso_utc(f["until_us"]) if f["until_us"] is not None else None}
    return urlencode({k: v for k, v in q.items() if v is not None})


@router.get("/audit")
def audit_page(request: Request, principal: AuditReader, actor: str = "", action: str = "", ticket: str = "",
               since: str = "", until: str = "", after: str = "", latest: str = ""):
    app, t = request.app.state.appliance, translator(lang_of(request))
    filters, problems = _filters(app, t, actor, action, ticket, since, until)
    after_seq = decimal(after, max_digits=18)
    if latest and after_seq is None:
        after_seq = audit.latest_page_start(app.engine, PAGE)
    rows = [] if problems else audit.search(app.engine, after_seq=after_seq, limit=PAGE, **filters)
    form = {"actor": actor, "action": action, "ticket": ticket, "since": since, "until": until}
    base = urlencode({k: v for k, v in form.items() if v})
    return render(request, "audit.html", {
        "rows": rows, "form": form, "problems": problems, "csv_query": _csv_query(filters),
        "next_after": rows[-1].seq if len(rows) == PAGE else None, "base_query": base, "after": after_seq,
        "changes": account_changes.open_changes(app.engine), "back": "/audit",
        "change_done": request.query_params.get("change_done", ""),
        "change_error": bool(request.query_params.get("change_error")),
    }, status=422 if problems else 200)


@router.get("/audit/verify")
def verify_page(request: Request, principal: AuditReader):
    app = request.app.state.appliance
    result = audit.verify_anchored(app)  # against the anchor outside the database, as the CLI does
    return render(request, "verify.html", {"result": result, "checked_at": app.clock.now_us()})


@router.get("/retention")
def retention_page(request: Request, principal: AuditReader):
    app = request.app.state.appliance
    report = retention.build_report(app.engine, app.config, app.clock.now_us())
    return render(request, "retention.html", {"report": report})


@router.get("/deletions")
def deletions_page(request: Request, principal: AuditReader, camera: str = "", days: str = "31"):
    app, t = request.app.state.appliance, translator(lang_of(request))
    days = max(1, min(n, 3660)) if (n := decimal(days, max_digits=5)) is not None else 31
    problems = []
    if camera and not CAMERA.match(camera):
        problems.append(t("deletions.bad_camera"))
    since = queries.deletion_window_us(app.clock.now_us(), days)
    rows = [] if problems else queries.deletions(app, since_us=since, camera_id=camera or None)
    summary = {"segments": sum(r.segments for r in rows), "size_bytes": sum(r.size_bytes for r in rows)}
    return render(request, "deletions.html", {"rows": rows, "camera_filter": camera, "days": days, "problems": problems,
                                              "summary": summary, "limit": 500, "tz": zone(app)},
                  status=422 if problems else 200)
