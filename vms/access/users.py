"""User accounts: roles, Argon2id password hashes and their administration (the one module for it).

Services here own their transaction (one per use case), with its audit entry inside it."""

from __future__ import annotations

import json
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from storage.sql import audit as store
from storage.sql import auth_store, index
from storage.sql import outbox as outbox_store
from vms.access import policy
from vms.access.audit import Actor, audited
from vms.core.clock import Clock
from vms.core.errors import DomainError, Kind
from vms.core.i18n import LANGUAGES, N_
from vms.core.mail_config import address_problem

ROLES = policy.ROLES  # operator, manager, auditor, admin
USER_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
CONSOLE = Actor("cli", "console", "local")  # the audit trail's name for the `vms user` commands
CONFIRMER_ROLES = (policy.Role.ADMIN.value, policy.Role.AUDITOR.value)
DONE, PENDING, UNCONFIRMED = "done", "pending", "unconfirmed"  # how a change to an account took effect
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
        raise DomainError(Kind.INVALID, f"user name {name!r} must be 2-64 lower-case letters, digits, '.', '-' or '_'",
                          key=N_("users.bad_name"))
    if role not in ROLES:
        raise DomainError(Kind.INVALID, f"role {role!r} is not one of {', '.join(ROLES)}",
                          key=N_("input.not_one_of"),
                          params={"field": "role", "value": str(role)[:40], "allowed": ", ".join(ROLES)})


# ---------------------------------------------------------------- administration (the API, the web UI, the CLI)
#
# One function per change, each one audited transaction (refusals audited too).  ``actor`` is who acts: an
# administrator's principal.actor, or CONSOLE for the ``vms user`` commands; ``by_user_id`` is the acting
# account's id, so that nobody disables or re-roles their own account.


def _target(s: Session, name: str):
    user = index.user_by_name(s, name)
    if user is None:
        raise DomainError(Kind.NOT_FOUND, f"user {name!r} does not exist",
                          key=N_("users.err.unknown"), params={"name": name[:64]})
    return user


def _four_eyes(s: Session, actor: Actor, entry, change: str, subject: str, *, old_role: str | None,
               new_role: str | None, detail: dict) -> str:
    """Decide how a change takes effect and say so in its entry: ``pending`` (a second person must confirm
    it first), ``unconfirmed`` (nobody else could confirm: made, and flagged until someone does) or
    ``done`` (a change that needs no second person)."""
    entry.detail = json.dumps({"change": change, "user": subject, **detail}, sort_keys=True)
    if not policy.needs_confirmation(change, old_role=old_role, new_role=new_role):
        return DONE
    if auth_store.confirmers(s, CONFIRMER_ROLES, excluding=(actor.name, subject)):
        entry.outcome = f"{store.PENDING}awaits confirmation by another administrator or the auditor"
        return PENDING
    entry.outcome = (f"{store.UNCONFIRMED}: nobody else could confirm it (no other administrator or auditor); "
                     "flagged until someone does")
    return UNCONFIRMED


def add_user(engine: Engine, clock: Clock, actor: Actor, name: str, role: str, *, bootstrap: bool = False) -> str:
    """Create a user with a one-time password (returned, shown once, never stored).  An account with a role
    that sees or approves footage or administers works only once a second person confirms it (it is made
    disabled until then); ``bootstrap``: the first administrator, made by ``vms init``."""
    password = one_time_password()
    password_hash = hash_password(password)
    with audited(engine, clock, actor, "user.add", obj=f"user:{name[:64]}") as (s, entry):
        validate(name, role)
        if index.user_by_name(s, name) is not None:
            raise DomainError(Kind.CONFLICT, f"user {name!r} already exists", key=N_("users.exists"),
                              params={"name": name})
        user_id = index.add_user(s, name, role=role, password_hash=password_hash, now_us=clock.now_us())
        if bootstrap:
            entry.detail = json.dumps({"change": "add", "user": name, "role": role, "bootstrap":
                                       "the first administrator, made by vms init"}, sort_keys=True)
        elif _four_eyes(s, actor, entry, "add", name, old_role=None, new_role=role, detail={"role": role}) == PENDING:
            auth_store.set_disabled(s, user_id, True)
    return password


def set_disabled(engine: Engine, clock: Clock, actor: Actor, name: str, disabled: bool, *,
                 by_user_id: int | None = None) -> str:
    """Disable (ending its sessions and tokens) or enable an account; enabling needs a second person.
    Returns how it took effect (:data:`DONE`, :data:`PENDING`, :data:`UNCONFIRMED`)."""
    action = "user.disable" if disabled else "user.enable"
    with audited(engine, clock, actor, action, obj=f"user:{name[:64]}") as (s, entry):
        user = _target(s, name)
        policy.enforce(policy.account_refusal(by_user_id, user.id, "disable" if disabled else "enable"))
        how = DONE if disabled else _four_eyes(s, actor, entry, "enable", name, old_role=user.role, new_role=None,
                                               detail={})
        if how != PENDING:
            auth_store.set_disabled(s, user.id, disabled)
        if disabled:
            auth_store.revoke_all_of_user(s, user.id, clock.now_us())
    return how


def reset_password(engine: Engine, clock: Clock, actor: Actor, name: str, *, by_user_id: int | None = None) -> str:
    """A new one-time password (returned, shown once); unlocks the account and ends its sessions and tokens.
    For a manager or an administrator the account stays disabled until a second person confirms."""
    password = one_time_password()
    password_hash = hash_password(password)
    with audited(engine, clock, actor, "user.reset-password", obj=f"user:{name[:64]}") as (s, entry):
        user = _target(s, name)
        policy.enforce(policy.account_refusal(by_user_id, user.id, "reset"))
        auth_store.set_password(s, user.id, password_hash, must_change=True)
        auth_store.clear_failed_logins(s, user.id)
        auth_store.revoke_all_of_user(s, user.id, clock.now_us())
        if _four_eyes(s, actor, entry, "reset", name, old_role=user.role, new_role=None, detail={}) == PENDING:
            auth_store.set_disabled(s, user.id, True)
    return password


def set_role(engine: Engine, clock: Clock, actor: Actor, name: str, role: str, *,
             by_user_id: int | None = None) -> str:
    """Give an account another role (ending its sessions and tokens); a role that sees or approves footage or
    administers takes effect when a second person confirms.  Returns how it took effect."""
    with audited(engine, clock, actor, "user.role", obj=f"user:{name[:64]}") as (s, entry):
        if role not in ROLES:
            raise DomainError(Kind.INVALID, f"role {role!r} is not one of {', '.join(ROLES)}",
                              key=N_("input.not_one_of"),
                              params={"field": "role", "value": str(role)[:40], "allowed": ", ".join(ROLES)})
        user = _target(s, name)
        policy.enforce(policy.account_refusal(by_user_id, user.id, "role"))
        how = _four_eyes(s, actor, entry, "role", name, old_role=user.role, new_role=role,
                         detail={"from": user.role, "to": role})
        if how != PENDING:
            auth_store.set_role(s, user.id, role)
            auth_store.revoke_all_of_user(s, user.id, clock.now_us())
    return how


def list_users(engine: Engine, *, limit: int, offset: int):
    with Session(engine) as s:
        return auth_store.list_users(s, limit=limit, offset=offset)


def set_contact(engine: Engine, clock: Clock, actor: Actor, name: str, email: str, language: str, *,
                by_user_id: int | None = None) -> None:
    """Set (or with ``""`` clear) an account's e-mail address for notifications, and the language of its mails
    (``da``, ``en``, or ``""`` for the default, Danish).  Audited without the address itself."""
    email, language = (email or "").strip(), (language or "").strip()
    with audited(engine, clock, actor, "user.contact", obj=f"user:{name[:64]}") as (s, entry):
        if email and (problem := address_problem(email)):
            raise DomainError(Kind.INVALID, f"e-mail address {email[:60]!r}: {problem}",
                              key=N_("users.err.bad_email"), params={"email": email[:60]})
        if language not in ("", *LANGUAGES):
            raise DomainError(Kind.INVALID, f"language {language[:10]!r} is not one of {', '.join(LANGUAGES)} "
                                            "(or empty for Danish)",
                                            key=N_("input.not_one_of"),
                                            params={"field": "language", "value": language[:10], "allowed": ", ".join(LANGUAGES)})
        user = _target(s, name)
        policy.enforce(policy.account_refusal(by_user_id, user.id, "contact"))  # another administrator does
        outbox_store.set_contact(s, user.id, email=email or None, language=language or None)
        entry.detail = json.dumps({"change": "contact", "user": name, "email": "set" if email else "none",
                                   "language": language or "default"}, sort_keys=True)


def remember_language(engine: Engine, user_id: int, language: str) -> None:
    """The language a signed-in user chose in the web UI becomes the language of their mails."""
    if language in LANGUAGES:
        with Session(engine) as s, s.begin():
            outbox_store.set_language(s, user_id, language)
