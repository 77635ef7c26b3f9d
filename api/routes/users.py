"""User administration (administrators only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from api import deps
from api.schemas import UserChanged, UserCreate, UserCreated, UserPage, UserPublic, UserUpdate, from_us
from vms.access import account_changes, auth, policy, users
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_

UserName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9._-]{1,63}$", description="user name")]
router = APIRouter(prefix="/api/users", tags=["users"], dependencies=[Depends(deps.require(policy.Action.ADMINISTER))])


def public(u) -> UserPublic:
    return UserPublic(id=u.id, name=u.name, role=u.role, disabled=bool(u.disabled),
                      must_change_password=bool(u.must_change_password), locked_until=from_us(u.locked_until_us))


def _user(app, name: str) -> UserPublic:
    return public(auth.user_by_name(app, name))


@router.get("", response_model=UserPage, summary="List users")
def list_users(app: deps.ApplianceDep, limit: Annotated[int, Query(ge=1, le=500)] = 50,
               offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> UserPage:
    rows, total = users.list_users(app.engine, limit=limit, offset=offset)
    nxt = offset + len(rows) if offset + len(rows) < total else None
    return UserPage(items=[public(u) for u in rows], total=total, limit=limit, offset=offset, next_offset=nxt)


@router.post("", response_model=UserCreated, status_code=201, summary="Add a user (returns a one-time password)")
def add_user(body: UserCreate, principal: deps.Administrator, app: deps.ApplianceDep) -> UserCreated:
    password = users.add_user(app.engine, app.clock, principal.actor, body.name, body.role)
    return UserCreated(user=_user(app, body.name), one_time_password=password,
                       confirmation=account_changes.state_of(app.engine, body.name))


@router.get("/{name}", response_model=UserPublic, summary="One user")
def get_user(name: UserName, app: deps.ApplianceDep) -> UserPublic:
    return _user(app, name)


@router.patch("/{name}", response_model=UserChanged, summary="Change a user's role or disable/enable the account")
def update_user(name: UserName, body: UserUpdate, principal: deps.Administrator, app: deps.ApplianceDep) -> UserChanged:
    if body.role is None and body.disabled is None:
        raise DomainError(Kind.INVALID, "body: give role and/or disabled", key=N_("users.err.nothing"))
    how = None
    if body.role is not None:
        how = users.set_role(app.engine, app.clock, principal.actor, name, body.role, by_user_id=principal.user_id)
    if body.disabled is not None:
        how = users.set_disabled(app.engine, app.clock, principal.actor, name, body.disabled,
                                 by_user_id=principal.user_id) if how in (None, users.DONE) else how
    return UserChanged(**_user(app, name).model_dump(), confirmation=how)


@router.post("/{name}/reset-password", response_model=UserCreated, summary="Give a user a new one-time password")
def reset_password(name: UserName, principal: deps.Administrator, app: deps.ApplianceDep) -> UserCreated:
    password = users.reset_password(app.engine, app.clock, principal.actor, name)
    return UserCreated(user=_user(app, name), one_time_password=password, confirmation=account_changes.state_of(app.engine, name))

