"""The door log on a ticket's pages: who passed its doors in a span, and, when the ticket allows it, when one
CPR or card number passed (docs/design/doorlog.md).

Every lookup is the domain's (vms.doorlog.lookup: the policy, one audit entry per lookup).  The search by
identifier is a POST whose answer is the page itself, never a redirect: the number is never in a URL.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from api.web.i18n import translator
from api.web.pages_tickets import TicketId, message
from api.web.render import error_text, lang_of, parse_local, render
from api.web.session import FormDep, allow, status_of
from vms.access import policy, tickets
from vms.access.auth import Principal
from vms.core.errors import DomainError
from vms.doorlog import lookup

router = APIRouter(include_in_schema=False)
DoorLooker = Annotated[Principal, Depends(allow(policy.Action.DOORLOG_LOOKUP))]


def _page(request: Request, principal, view, *, values: dict, results=None, by: str = "", error: str = "",
          status: int = 200):
    return render(request, "doorlog.html", {"ticket": view, "values": values, "results": results, "by": by,
                                            "error": error}, status=status)


def _span(request: Request, view, start: str, end: str) -> tuple[int, int]:
    app = request.app.state.appliance
    return (parse_local(app, start) if start else view.start_us, parse_local(app, end) if end else view.end_us)


def _error(request: Request, exc: DomainError) -> str:
    return error_text(request, exc)


@router.get("/tickets/{ticket_id}/doorlog")
def doors_page(request: Request, principal: DoorLooker, ticket_id: TicketId, door: str = "", start: str = "",
               end: str = "", search: str = ""):
    app = request.app.state.appliance
    try:
        view = tickets.get(app, principal, ticket_id)
    except DomainError as exc:
        return message(request, exc)
    values = {"door": door[:64], "start_text": start[:40], "end_text": end[:40]}
    if not search:
        return _page(request, principal, view, values=values)
    try:
        start_us, end_us = _span(request, view, start, end)
    except ValueError:
        return _page(request, principal, view, values=values, status=422,
                     error=translator(lang_of(request))("ticket.bad_time"))
    try:
        found = lookup.at_doors(app, principal, ticket_id, doors=[door] if door else None, start_us=start_us,
                                end_us=end_us)
    except DomainError as exc:
        return _page(request, principal, view, values=values, error=_error(request, exc), status=status_of(exc))
    return _page(request, principal, view, values=values, results=found, by="door")


@router.post("/tickets/{ticket_id}/doorlog/identifier")
def identifier_page(request: Request, principal: DoorLooker, ticket_id: TicketId, form: FormDep):
    app = request.app.state.appliance
    try:
        view = tickets.get(app, principal, ticket_id)
    except DomainError as exc:
        return message(request, exc)
    values = {"start_text": (form.get("start") or "")[:40], "end_text": (form.get("end") or "")[:40]}
    try:
        start_us, end_us = _span(request, view, values["start_text"], values["end_text"])
    except ValueError:
        return _page(request, principal, view, values=values, status=422,
                     error=translator(lang_of(request))("ticket.bad_time"))
    try:
        found = lookup.of_identifier(app, principal, ticket_id, (form.get("identifier") or "")[:40],
                                     start_us=start_us, end_us=end_us)
    except DomainError as exc:
        return _page(request, principal, view, values=values, error=_error(request, exc), status=status_of(exc))
    return _page(request, principal, view, values=values, results=found, by="identifier")
