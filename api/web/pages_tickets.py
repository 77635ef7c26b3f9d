"""Tickets: file one (operators, managers), list them, the manager's queue,
approve/deny (four-eyes), close, and play approved footage with a timeline.

Every decision is the domain's (vms.access.tickets, vms.access.policy, vms.evidence.playback): a
refusal is shown on the page with the domain's reason.  The player's
``<video>`` element streams from the API's playback route
(``/api/tickets/{id}/cameras/{camera}/play``), which checks and audits each play.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse

from api.web import ticket_export, timeline
from api.web.i18n import translator
from api.web.render import error_text, fmt_local, iso_utc, lang_of, parse_local, render
from api.web.session import (
    FormDep,
    PageRefused,
    TicketCloser,
    TicketDecider,
    TicketFiler,
    TicketReader,
    status_of,
)
from vms.access import policy as access
from vms.access import requests, tickets
from vms.core.errors import DomainError
from vms.core.numbers import decimal, id_number
from vms.doorlog import lookup
from vms.evidence import playback, plays

router = APIRouter(include_in_schema=False)


def ticket_number(request: Request, ticket_id: Annotated[str, Path(max_length=40)]) -> int:
    """The ticket number of the path; anything else is a page saying so (not a 422 body)."""
    if (number := id_number(ticket_id)) is None:
        t = translator(lang_of(request))
        raise PageRefused(404, t("ticket.not_a_number").format(text=ticket_id[:40]))
    return number

TicketId = Annotated[int, Depends(ticket_number)]
DONE = ("filed", "approved", "denied", "closed", "export_started", "export_cancelled", "link_revoked",
        "package_deleted", "released")
PAGE = 50


def _app(request: Request):
    return request.app.state.appliance


def message(request: Request, exc: DomainError):
    return render(request, "message.html", {"message": error_text(request, exc), "status": status_of(exc)}, status=status_of(exc))


# ---------------------------------------------------------------- lists


@router.get("/tickets")
def list_page(request: Request, principal: TicketReader, state: str = "", offset: str = "0"):
    states = [state] if state in tickets.STATES else None
    offset = decimal(offset, max_digits=9) or 0
    rows, total = tickets.list_tickets(_app(request), principal, states=states, limit=PAGE, offset=offset)
    return render(request, "tickets.html", {"tickets": rows, "total": total, "state": state if states else "",
                                            "states": tickets.STATES, "offset": offset, "page": PAGE})


@router.get("/queue")
def queue_page(request: Request, principal: TicketDecider, offset: str = "0", done: str = "", ticket: str = ""):
    offset = decimal(offset, max_digits=9) or 0
    rows, total = tickets.list_tickets(_app(request), principal, states=["requested"], limit=PAGE, offset=offset)
    decided = {"done": done, "ticket": id_number(ticket)} if done in ("approved", "denied") and id_number(ticket) else None
    return render(request, "queue.html", {"tickets": rows, "total": total, "offset": offset, "page": PAGE,
                                          "decided": decided})


# ---------------------------------------------------------------- filing


def _new_form(request: Request, values: dict, *, error: str = "", status: int = 200):
    app = _app(request)
    cams = [c for c in tickets.cameras(app) if c.removed_us is None or c.id in values.get("cameras", ())]
    doors = lookup.door_ids(app) if app.config.doorlog is not None else []
    return render(request, "ticket_new.html", {
        "cameras": cams, "values": values, "error": error, "actions": tickets.ACTIONS,
        "recipients": tickets.RECIPIENTS, "doors": doors,
    }, status=status)


@router.get("/tickets/new")
def new_form(request: Request, principal: TicketFiler):
    now = _app(request).clock.now_us()
    hour = 3_600_000_000
    start = (now - hour) // 60_000_000 * 60_000_000
    values = {"cameras": [], "doors": [], "start": start, "end": start + hour, "action": "view",
              "recipient": "internal"}
    return _new_form(request, values)


@router.post("/tickets/new")
def file(request: Request, principal: TicketFiler, form: FormDep):
    app, t = _app(request), translator(lang_of(request))
    values = {k: form.get(k) for k in ("description", "purpose", "legal_basis", "action", "recipient")}
    values["cameras"] = form.getlist("cameras")
    values["doors"], values["door_id_lookup"] = form.getlist("doors"), form.get("door_id_lookup") == "on"
    values["start_text"], values["end_text"] = form.get("start"), form.get("end")
    values["start"] = values["end"] = None
    values["received"] = form.get("received").strip()
    try:
        start_us = parse_local(app, form.get("start"))
        end_us = parse_local(app, form.get("end"))
        received_us = parse_local(app, values["received"] + "T00:00") if values["received"] else None
    except ValueError:
        return _new_form(request, values, error=t("ticket.bad_time"), status=422)
    values["start"], values["end"] = start_us, end_us
    try:
        view = tickets.file_ticket(app, principal, cameras=values["cameras"], start_us=start_us, end_us=end_us,
                                   description=values["description"], purpose=values["purpose"],
                                   legal_basis=values["legal_basis"], action=values["action"],
                                   recipient=values["recipient"], doors=values["doors"],
                                   door_id_lookup=values["door_id_lookup"], received_us=received_us)
    except DomainError as exc:
        error = error_text(request, exc)
        if exc.key.startswith("window."):  # the policy's window rule, "now" in the reader's words for times
            error = t.format(exc.key, {**exc.params, "now": fmt_local(app, app.clock.now_us(), seconds=False,
                                                                       lang=t.lang)}, default=error)
        return _new_form(request, values, error=error, status=status_of(exc))
    return RedirectResponse(f"/tickets/{view.id}?done=filed", status_code=303)


# ---------------------------------------------------------------- one ticket


def _scope(view: tickets.TicketView) -> access.TicketScope:
    return access.TicketScope(view.id, view.state, view.requester_id, view.cameras, view.start_us, view.end_us,
                              view.access_until_us, view.action)


def _footage(app, principal, view, camera: str, at_us: int | None) -> dict:
    """Timeline bars per camera and the piece the player shows."""
    max_s = app.config.api.playback_max_s
    now = app.clock.now_us()
    window = (view.start_us, view.end_us)
    cams, player = [], None
    for cam in playback.footage(app, principal, view.id):
        parts = timeline.pieces(cam.recorded, max_s)
        cams.append({"id": cam.camera_id, "bars": timeline.bars(window, cam.recorded, cam.gaps, cam.missing, now_us=now),
                     "pieces": parts, "gaps": cam.gaps, "coverage": timeline.coverage_pct(window, cam.recorded)})
    chosen = next((c for c in cams if c["id"] == camera), None) or next((c for c in cams if c["pieces"]), None)
    if chosen and chosen["pieces"]:
        start, end = chosen["pieces"][0]
        if at_us is not None:
            for a, b in chosen["pieces"]:
                if a <= at_us < b:
                    start, end = at_us, min(b, at_us + max_s * 1_000_000)
                    break
        query = urlencode({"start": iso_utc(start), "end": iso_utc(end)})
        player = {"camera": chosen["id"], "start": start, "end": end,
                  "src": f"/api/tickets/{view.id}/cameras/{chosen['id']}/play?{query}"}
    first = chosen["id"] if chosen else (cams[0]["id"] if cams else "")
    return {"cameras": cams, "player": player, "max_s": max_s, "first_camera": first}


def ticket_page(request: Request, principal, ticket_id: int, *, error: str = "", status: int = 200,
                camera: str = "", at_us: int | None = None, done: str = "", new_link: dict | None = None):
    app = _app(request)
    try:
        view = tickets.get(app, principal, ticket_id)
    except DomainError as exc:
        return message(request, exc)
    now = app.clock.now_us()
    refused = access.ticket_refusal(principal.role, principal.user_id, access.Action.FOOTAGE_VIEW, _scope(view),
                                    now_us=now)
    refusal = error_text(request, refused.error()) if refused else None
    footage = None
    if refusal is None:
        try:
            footage = _footage(app, principal, view, camera, at_us)
            plays.page_view(app, principal, view.id, view.cameras, view.start_us, view.end_us)
        except DomainError as exc:
            refusal = error_text(request, exc)
    # which forms the page offers is the template's question to the policy: can('ticket.decide', ticket) ...
    ctx = {
        "deadline_us": requests.deadline_us(view.received_us, app.config.timezone) if view.received_us else None,
        "ticket": view, "error": error, "done": done if done in DONE else "",
        "footage": footage, "footage_refusal": refusal, "now": now, "new_link": new_link,
    }
    ctx.update(extra_sections(request, principal, view))
    return render(request, "ticket.html", ctx, status=status)


def extra_sections(request: Request, principal, view) -> dict:
    """Export and delivery sections (api/web/ticket_export.py)."""
    return ticket_export.ticket_sections(request, principal, view)


@router.get("/tickets/{ticket_id}")
def ticket(request: Request, principal: TicketReader, ticket_id: TicketId, camera: str = "", at: str = "",
           done: str = ""):
    at_us = decimal(at, max_digits=18)
    return ticket_page(request, principal, ticket_id, camera=camera, at_us=at_us, done=done)


@router.post("/tickets/{ticket_id}/decide")
def decide(request: Request, principal: TicketDecider, ticket_id: TicketId, form: FormDep):
    decision = form.get("decision")
    app = _app(request)
    if decision not in ("approve", "deny"):
        return ticket_page(request, principal, ticket_id, error=translator(lang_of(request))("ticket.pick_decision"),
                           status=422)
    try:
        tickets.decide(app, principal, ticket_id, approve=decision == "approve", reason=form.get("reason"))
    except DomainError as exc:
        return ticket_page(request, principal, ticket_id, error=error_text(request, exc), status=status_of(exc))
    done = "approved" if decision == "approve" else "denied"
    if form.get("back") == "queue":  # decided from the queue's card (a phone): back to the queue
        return RedirectResponse(f"/queue?done={done}&ticket={ticket_id}", status_code=303)
    return RedirectResponse(f"/tickets/{ticket_id}?done={done}", status_code=303)


@router.post("/tickets/{ticket_id}/close")
def close(request: Request, principal: TicketCloser, ticket_id: TicketId, form: FormDep):
    try:
        tickets.close(_app(request), principal, ticket_id, reason=form.get("reason"))
    except DomainError as exc:
        return ticket_page(request, principal, ticket_id, error=error_text(request, exc), status=status_of(exc))
    return RedirectResponse(f"/tickets/{ticket_id}?done=closed", status_code=303)
