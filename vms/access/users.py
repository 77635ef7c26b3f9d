"""User accounts: roles and Argon2id password hashes.  Services here own their
transaction (one per use case)."""

from __future__ import annotations

import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from storage.sql import auth_store, index
from vms.access.audit import Actor, record
from vms.core.clock import Clock
from vms.core.errors import DomainError, Kind

ROLES = ("operator", "manager", "auditor", "admin")
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


def add_user(engine: Engine, clock: Clock, name: str, role: str) -> str:
    """Create a user with a one-time password (returned, shown once, never stored)."""
    validate(name, role)
    password = one_time_password()
    with Session(engine) as s, s.begin():
        if index.user_by_name(s, name) is not None:
            raise DomainError(Kind.CONFLICT, f"user {name!r} already exists")
        index.add_user(s, name, role=role, password_hash=hash_password(password), now_us=clock.now_us())
        record(s, CONSOLE, "user.add", now_us=clock.now_us(), obj=f"user:{name}", detail=f"role={role}")
    return password


def disable_user(engine: Engine, name: str, clock: Clock | None = None) -> None:
    """Disable the account and end its sessions and tokens."""
    now = (clock or Clock()).now_us()
    with Session(engine) as s, s.begin():
        user = index.user_by_name(s, name)
        if user is None:
            raise DomainError(Kind.NOT_FOUND, f"user {name!r} does not exist")
        user.disabled = True
        auth_store.revoke_all_of_user(s, user.id, now)
        record(s, CONSOLE, "user.disable", now_us=now, obj=f"user:{name}")


def reset_password(engine: Engine, name: str, clock: Clock | None = None) -> str:
    """Give a user a new one-time password (returned, shown once); unlocks the account
    and ends its sessions and tokens."""
    now = (clock or Clock()).now_us()
    password = one_time_password()
    with Session(engine) as s, s.begin():
        user = index.user_by_name(s, name)
        if user is None:
            raise DomainError(Kind.NOT_FOUND, f"user {name!r} does not exist")
        user.password_hash = hash_password(password)
        user.must_change_password = True
        user.failed_logins = 0
        user.locked_until_us = None
        auth_store.revoke_all_of_user(s, user.id, now)
        record(s, CONSOLE, "user.reset-password", now_us=now, obj=f"user:{name}")
    return password
