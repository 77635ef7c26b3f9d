"""The administrator's pages: cameras with their live state and storage use,
free space, and users with their roles.  Administrators see no footage.

User changes go through vms.access.auth (audited there): add (a one-time password is
shown once on the page), change role, disable/enable, reset password.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse

from api.web.i18n import translator
from api.web.render import error_text, lang_of, render, zone
from api.web.session import Administrator, FormDep, allow, status_of
from vms.access import account_changes, policy, users
from vms.access.auth import Principal
from vms.core.errors import DomainError
from vms.core.numbers import decimal
from vms.doorlog import ingest
from vms.ops import overview as queries

router = APIRouter(include_in_schema=False)
Confirmer = Annotated[Principal, Depends(allow(policy.Action.ACCOUNT_CONFIRM))]
USER_PAGE = 200


@router.get("/admin")
def cameras_page(request: Request, principal: Administrator):
    app = request.app.state.appliance
    overview = queries.camera_overview(app, zone(app))
    files = ingest.recent_files(app, 20) if app.config.doorlog is not None else None  # no identifiers in them
    return render(request, "admin.html", {"overview": overview, "now": app.clock.now_us(), "doorlog_files": files})


def users_page(request: Request, *, error: str = "", issued: dict | None = None, done: str = "",
               status: int = 200, how: str = ""):
    app = request.app.state.appliance
    rows, total = users.list_users(app.engine, limit=USER_PAGE, offset=0)
    return render(request, "users.html", {"users": rows, "total": total, "roles": users.ROLES, "error": error,
                                          "issued": issued, "done": done, "now": app.clock.now_us(), "how": how,
                                          "changes": account_changes.open_changes(app.engine),
                                          "back": "/admin/users"},
                  status=status)



@router.get("/admin/users")
def users_list(request: Request, principal: Administrator, change_done: str = "", change_error: str = ""):
    if change_error:
        return users_page(request, error=translator(lang_of(request))("changes.error"))
    return users_page(request, done="change" if change_done in ("confirm", "reject") else "")


@router.post("/admin/users")
def user_change(request: Request, principal: Administrator, form: FormDep):
    """One form handler for every user change (``op`` says which)."""
    app = request.app.state.appliance
    op, name = form.get("op"), form.get("name").strip()
    try:
        if op == "add":
            password = users.add_user(app.engine, app.clock, principal.actor, name, form.get("role"))
            return users_page(request, issued={"name": name, "password": password, "added": True},
                              how=account_changes.state_of(app.engine, name))
        if op == "reset":
            password = users.reset_password(app.engine, app.clock, principal.actor, name, by_user_id=principal.user_id)
            return users_page(request, issued={"name": name, "password": password, "added": False},
                              how=account_changes.state_of(app.engine, name))
        if op == "role":
            how = users.set_role(app.engine, app.clock, principal.actor, name, form.get("role"),
                                 by_user_id=principal.user_id)
        elif op == "contact":
            users.set_contact(app.engine, app.clock, principal.actor, name, form.get("email"), form.get("language"),
                              by_user_id=principal.user_id)
            how = ""
        elif op in ("disable", "enable"):
            how = users.set_disabled(app.engine, app.clock, principal.actor, name, op == "disable",
                                     by_user_id=principal.user_id)
        else:
            return users_page(request, error=f"unknown operation {op[:20]!r}", status=422)
    except DomainError as exc:
        return users_page(request, error=error_text(request, exc), status=status_of(exc))
    return users_page(request, done=op, how=how)


@router.post("/account-changes")
def account_change_decision(request: Request, principal: Confirmer, form: FormDep):
    """Confirm or reject a change to an account (administrators and the auditor; the policy decides who)."""
    app = request.app.state.appliance
    back = "/audit" if form.get("back") == "/audit" else "/admin/users"
    op = form.get("op")
    entry = decimal(form.get("entry"), max_digits=18)
    if op not in ("confirm", "reject") or entry is None:
        return RedirectResponse(f"{back}?change_error=1", status_code=303)
    try:
        account_changes.decide(app.engine, app.clock, principal.actor, entry, confirm=op == "confirm",
                               reason=form.get("reason").strip())
    except DomainError:
        return RedirectResponse(f"{back}?change_error=1", status_code=303)
    return RedirectResponse(f"{back}?change_done={op}", status_code=303)
