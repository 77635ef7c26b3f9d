"""The administrator's pages: cameras with their live state and storage use,
free space, and users with their roles.  Administrators see no footage.

User changes go through vms.access.auth (audited there): add (a one-time password is
shown once on the page), change role, disable/enable, reset password.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.web.render import render, zone
from api.web.session import Administrator, FormDep, status_of
from vms.access import users
from vms.core.errors import DomainError
from vms.ops import overview as queries

router = APIRouter(include_in_schema=False)
USER_PAGE = 200


@router.get("/admin")
def cameras_page(request: Request, principal: Administrator):
    app = request.app.state.appliance
    overview = queries.camera_overview(app, zone(app))
    return render(request, "admin.html", {"overview": overview, "now": app.clock.now_us()})


def users_page(request: Request, *, error: str = "", issued: dict | None = None, done: str = "",
               status: int = 200):
    app = request.app.state.appliance
    rows, total = users.list_users(app.engine, limit=USER_PAGE, offset=0)
    return render(request, "users.html", {"users": rows, "total": total, "roles": users.ROLES, "error": error,
                                          "issued": issued, "done": done, "now": app.clock.now_us()},
                  status=status)


@router.get("/admin/users")
def users_list(request: Request, principal: Administrator):
    return users_page(request)


@router.post("/admin/users")
def user_change(request: Request, principal: Administrator, form: FormDep):
    """One form handler for every user change (``op`` says which)."""
    app = request.app.state.appliance
    op, name = form.get("op"), form.get("name").strip()
    try:
        if op == "add":
            password = users.add_user(app.engine, app.clock, principal.actor, name, form.get("role"))
            return users_page(request, issued={"name": name, "password": password, "added": True})
        if op == "reset":
            password = users.reset_password(app.engine, app.clock, principal.actor, name)
            return users_page(request, issued={"name": name, "password": password, "added": False})
        if op == "role":
            users.set_role(app.engine, app.clock, principal.actor, name, form.get("role"), by_user_id=principal.user_id)
        elif op in ("disable", "enable"):
            users.set_disabled(app.engine, app.clock, principal.actor, name, op == "disable", by_user_id=principal.user_id)
        else:
            return users_page(request, error=f"unknown operation {op[:20]!r}", status=422)
    except DomainError as exc:
        return users_page(request, error=exc.message, status=status_of(exc))
    return users_page(request, done=op)
