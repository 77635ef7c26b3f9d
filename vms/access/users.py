"""User accounts: roles, Argon2id password hashes and their administration (the one module for it).

Services here own their transaction (one per use case), with its audit entry inside it."""

from __future__ import annotations

import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from storage.sql import auth_store, index
from vms.access import policy
from vms.access.audit import Actor, audited
from vms.core.clock import Clock
from vms.core.errors import DomainError, Kind

ROLES = policy.ROLES  # operator, manager, auditor, admin
USER_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
CONSOLE = Actor("cli", "console", "local")  # the audit trail's name for the `vms user` commands
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def one_time_password() -> str:
    """A 20-character password from a 32-letter alphabet (100 bits)."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(4))


def validate(name: str, role: str) -> None:
    if not USER_NAME.match(name):
        raise DomainError(Kind.INVALID, f"user name {name!r} must be 2-64 lower-case letters, digits, '.', '-' or '_'")
    if role not in ROLES:
        raise DomainError(Kind.INVALID, f"role {role!r} is not one of {', '.join(ROLES)}")


# ---------------------------------------------------------------- administration (the API, the web UI, the CLI)
#
# One function per change, each one audited transaction (refusals audited too).  ``actor`` is who acts: an
# administrator's principal.actor, or CONSOLE for the ``vms user`` commands; ``by_user_id`` is the acting
# account's id, so that nobody disables or re-roles their own account.


def _target(s: Session, name: str):
    user = index.user_by_name(s, name)
    if user is None:
        raise DomainError(Kind.NOT_FOUND, f"user {name!r} does not exist")
    return user


def add_user(engine: Engine, clock: Clock, actor: Actor, name: str, role: str) -> str:
    """Create a user with a one-time password (returned, shown once, never stored)."""
    password = one_time_password()
    password_hash = hash_password(password)
    with audited(engine, clock, actor, "user.add", obj=f"user:{name[:64]}") as (s, entry):
        validate(name, role)
        if index.user_by_name(s, name) is not None:
            raise DomainError(Kind.CONFLICT, f"user {name!r} already exists")
        index.add_user(s, name, role=role, password_hash=password_hash, now_us=clock.now_us())
        entry.detail = f"role={role}"
    return password


def set_disabled(engine: Engine, clock: Clock, actor: Actor, name: str, disabled: bool, *,
                 by_user_id: int | None = None) -> None:
    """Disable (ending its sessions and tokens) or enable an account."""
    action = "user.disable" if disabled else "user.enable"
    with audited(engine, clock, actor, action, obj=f"user:{name[:64]}") as (s, _):
        user = _target(s, name)
        if disabled and user.id == by_user_id:
            raise DomainError(Kind.CONFLICT, "you cannot disable your own account; ask another administrator")
        auth_store.set_disabled(s, user.id, disabled)
        if disabled:
            auth_store.revoke_all_of_user(s, user.id, clock.now_us())


def reset_password(engine: Engine, clock: Clock, actor: Actor, name: str) -> str:
    """A new one-time password (returned, shown once); unlocks the account and ends its sessions and tokens."""
    password = one_time_password()
    password_hash = hash_password(password)
    with audited(engine, clock, actor, "user.reset-password", obj=f"user:{name[:64]}") as (s, _):
        user = _target(s, name)
        auth_store.set_password(s, user.id, password_hash, must_change=True)
        auth_store.clear_failed_logins(s, user.id)
        auth_store.revoke_all_of_user(s, user.id, clock.now_us())
    return password


def set_role(engine: Engine, clock: Clock, actor: Actor, name: str, role: str, *,
             by_user_id: int | None = None) -> None:
    """Give an account another role (ending its sessions and tokens)."""
    with audited(engine, clock, actor, "user.role", obj=f"user:{name[:64]}") as (s, entry):
        if role not in ROLES:
            raise DomainError(Kind.INVALID, f"role {role!r} is not one of {', '.join(ROLES)}")
        user = _target(s, name)
        if user.id == by_user_id:
            raise DomainError(Kind.CONFLICT, "you cannot change your own role; ask another administrator")
        entry.detail = f"{user.role} -> {role}"
        auth_store.set_role(s, user.id, role)
        auth_store.revoke_all_of_user(s, user.id, clock.now_us())


def list_users(engine: Engine, *, limit: int, offset: int):
    with Session(engine) as s:
        return auth_store.list_users(s, limit=limit, offset=offset)
