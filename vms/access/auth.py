"""Sign-in, lockout with back-off, sessions, API tokens, password changes, user administration.

Secrets: a session or API token is 256 random bits shown to its holder once;
the database keeps only its SHA-256.  A session's CSRF token is derived from
the session secret (:func:`csrf_token`), so it needs no storage and cannot be
computed without the cookie.  Passwords are Argon2id (vms/users.py); the hash
is computed outside any database transaction so a sign-in never holds a lock
while it hashes.

Every sign-in attempt, good or bad, is audited (``auth.signin``) with the name
tried, the client address and the outcome.  Unknown names, wrong passwords,
locked and disabled accounts get the same refusal (:data:`WRONG`, after the same
Argon2 work), so sign-in does not reveal which names exist: only the audit trail
and the lockout know which it was.  A client address that failed too often is
told so (:class:`AddressLockedOut`): that says nothing about any name.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from storage.sql import auth_store, index
from vms.access import policy, users
from vms.access.audit import Actor, audited, record
from vms.core.counters import SIGNIN_FAILURES
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_

SESSION, TOKEN = "session", "token"
TOKEN_PREFIX = "vms_"
# the one refusal of a name and password, whatever was wrong (no oracle of which names exist or are locked)
WRONG = ("the user name or password is wrong, or the account is locked after too many failed sign-ins "
         "(then try again later, or ask an administrator)")
_DUMMY_HASH = users.hash_password("not a real password, only for equal timing")


class LockedOut(DomainError):
    """Too many failed attempts from a client address; ``retry_after_s`` says when to try again.  (A locked
    account is never told apart from a wrong password.)"""

    def __init__(self, message: str, retry_after_s: int, *, key: str = N_("refused.locked_out")):
        super().__init__(Kind.UNAUTHENTICATED, message, key=key, params={"seconds": retry_after_s})
        self.retry_after_s = retry_after_s


class AddressLockedOut(LockedOut):
    """Too many failed sign-ins from this client address, whatever the names."""


@dataclass(frozen=True)
class Principal:
    """Who a request acts as (from a session cookie or a bearer token)."""

    user_id: int
    name: str
    role: str
    credential_id: int
    kind: str  # SESSION | TOKEN
    must_change_password: bool
    client: str = ""

    @property
    def actor(self) -> Actor:
        return Actor(self.name, self.role, self.client)


@dataclass(frozen=True)
class Issued:
    principal: Principal
    secret: str  # shown once: cookie value or bearer token
    expires_us: int
    csrf_token: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_token(session_secret: str) -> str:
    return hashlib.sha256(b"vms-csrf\x00" + session_secret.encode()).hexdigest()


def same_secret(expected: str, presented: str) -> bool:
    """Constant-time comparison of two texts.  ``hmac.compare_digest`` refuses ``str`` with non-ASCII
    characters (a TypeError, i.e. a 500, from anyone who sends one); bytes it compares in any case."""
    return hmac.compare_digest(expected.encode("utf-8", "surrogatepass"), presented.encode("utf-8", "surrogatepass"))


def csrf_ok(session_secret: str, presented: str | None) -> bool:
    return bool(presented) and same_secret(csrf_token(session_secret), presented)


def lockout_s(failures: int, *, after: int, base_s: int, max_s: int) -> int:
    """Seconds an account stays locked after ``failures`` failures in a row (0: not locked)."""
    if failures < after:
        return 0
    return min(max_s, base_s * 2 ** min(failures - after, 30))


def _issue(s: Session, user, *, kind: str, label: str, now_us: int, lifetime_us: int, client: str) -> Issued:
    secret = (TOKEN_PREFIX if kind == TOKEN else "") + secrets.token_urlsafe(32)
    row = auth_store.add_credential(s, user_id=user.id, kind=kind, label=label, token_hash=hash_secret(secret),
                                    now_us=now_us, expires_us=now_us + lifetime_us)
    principal = Principal(user.id, user.name, user.role, row.id, kind, bool(user.must_change_password), client)
    return Issued(principal, secret, row.expires_us, csrf_token(secret) if kind == SESSION else "")


UNKNOWN_NAME = "(unknown)"  # the actor of a sign-in with a name that matches no user


def sign_in(app, name: str, password: str, *, client: str = "") -> Issued:
    """Check a name and password and open a session; every outcome is audited, every refusal counted
    (``vms_signin_failures_total``)."""
    try:
        return _sign_in(app, name, password, client=client)
    except DomainError:
        SIGNIN_FAILURES.inc()
        raise


def _sign_in(app, name: str, password: str, *, client: str) -> Issued:
    api = app.config.api
    guard = app.signin_guard
    wait = guard.retry_after(client)
    if wait > 0:  # refused before any password is hashed: guessing from one address costs it nothing more
        wait_s = math.ceil(wait)
        reported = guard.refused(client)  # at most one entry a minute per address, counting the others
        if reported is not None:
            more = f"; {reported - 1} more refused since the previous entry" if reported > 1 else ""
            _audit_signin(app, Actor(UNKNOWN_NAME, "", client), app.clock.now_us(),
                          f"refused: too many failed sign-ins from this address; {wait_s} s to wait{more}")
        raise AddressLockedOut(f"too many failed sign-ins from your address; try again in {wait_s} s", wait_s,
                               key=N_("signin.address_locked"))
    with Session(app.engine) as s:
        user = index.user_by_name(s, name)
        snapshot = None if user is None else (user.id, user.role, user.password_hash, user.disabled, user.locked_until_us)
    now = app.clock.now_us()
    actor = Actor(name[:64], snapshot[1] if snapshot else "", client)
    if snapshot is None:
        users.verify_password(_DUMMY_HASH, password)  # same cost as a real check
        # the typed name is not kept: the trail is permanent, and a name that matches no user is often a
        # password typed into the wrong field.  The client address still shows who keeps trying.
        _audit_signin(app, Actor(UNKNOWN_NAME, "", client), now, "refused: unknown user" + _counted(app, client))
        raise DomainError(Kind.UNAUTHENTICATED, WRONG, key=N_("signin.wrong"))
    user_id, _role, password_hash, disabled, locked_until_us = snapshot
    if locked_until_us is not None and locked_until_us > now:
        users.verify_password(_DUMMY_HASH, password)  # the same cost and answer as a wrong password
        wait_s = -(-(locked_until_us - now) // 1_000_000)
        _audit_signin(app, actor, now, f"refused: account locked for {wait_s} s more" + _counted(app, client))
        raise DomainError(Kind.UNAUTHENTICATED, WRONG, key=N_("signin.wrong"))
    if not users.verify_password(password_hash, password):
        with Session(app.engine) as s, s.begin():
            failures = auth_store.record_failed_login(s, user_id, locked_until_us=None)
            lock = lockout_s(failures, after=api.lockout_after, base_s=api.lockout_base_s, max_s=api.lockout_max_s)
            if lock:
                auth_store.set_lock(s, user_id, now + lock * 1_000_000)
            note = f"; locked for {lock} s" if lock else ""
            record(s, actor, "auth.signin", now_us=now, obj=f"user:{name[:64]}",
                   outcome=f"refused: wrong password ({failures} in a row{note}){_counted(app, client)}")
        raise DomainError(Kind.UNAUTHENTICATED, WRONG, key=N_("signin.wrong"))
    if disabled:
        _audit_signin(app, actor, now, "refused: account disabled")
        raise DomainError(Kind.UNAUTHENTICATED, WRONG, key=N_("signin.wrong"))
    with Session(app.engine) as s, s.begin():
        user = auth_store.user_by_id(s, user_id)
        auth_store.clear_failed_logins(s, user_id)
        issued = _issue(s, user, kind=SESSION, label="sign-in", now_us=now,
                        lifetime_us=api.session_hours * 3600 * 1_000_000, client=client)
        record(s, actor, "auth.signin", now_us=now, obj=f"user:{name}")
    return issued


def _counted(app, client: str) -> str:
    """Count a failed password check against the client address; what to add to the audit outcome."""
    if app.signin_guard.failed(client):
        api = app.config.api
        return (f"; address locked out ({api.signin_address_failures} failures within "
                f"{api.signin_address_window_s} s)")
    return ""


def _audit_signin(app, actor: Actor, now_us: int, outcome: str) -> None:
    with Session(app.engine) as s, s.begin():
        record(s, actor, "auth.signin", now_us=now_us, obj=f"user:{actor.name}", outcome=outcome)


def authenticate(app, secret: str, *, client: str = "") -> Principal:
    """The principal a session secret or bearer token stands for, or UNAUTHENTICATED."""
    now = app.clock.now_us()
    with Session(app.engine) as s:
        cred = auth_store.credential_by_hash(s, hash_secret(secret)) if secret else None
    if cred is None:
        raise DomainError(Kind.UNAUTHENTICATED, "not signed in, or the session/token is unknown; sign in again",
                          key=N_("signin.err.unknown"))
    if cred.revoked_us is not None:
        raise DomainError(Kind.UNAUTHENTICATED, f"this {cred.kind} was revoked or signed out; sign in again",
                          key=N_("signin.err.revoked"))
    if cred.expires_us <= now:
        raise DomainError(Kind.UNAUTHENTICATED, f"this {cred.kind} has expired; sign in again",
                          key=N_("signin.err.expired"))
    if cred.disabled:
        raise DomainError(Kind.UNAUTHENTICATED, "this account is disabled; ask an administrator",
                          key=N_("signin.err.disabled"))
    principal = Principal(cred.user_id, cred.name, cred.role, cred.credential_id, cred.kind, cred.must_change_password,
                          client)
    stale = cred.last_used_us is None or now - cred.last_used_us > 60_000_000
    if stale:  # at most one write a minute per credential
        with Session(app.engine) as s, s.begin():
            auth_store.touch_credential(s, principal.credential_id, now)
    return principal


def sign_out(app, principal: Principal) -> None:
    with audited(app.engine, app.clock, principal.actor, "auth.signout", obj=f"{principal.kind}:{principal.credential_id}") as (s, _):
        auth_store.revoke_credential(s, principal.credential_id, app.clock.now_us())


def change_password(app, principal: Principal, old: str, new: str) -> None:
    """Replace the caller's password; other sessions and tokens of the user are revoked."""
    api = app.config.api
    with Session(app.engine) as s:
        current_hash = auth_store.user_by_id(s, principal.user_id).password_hash
    old_ok = users.verify_password(current_hash, old)
    new_hash = users.hash_password(new)
    with audited(app.engine, app.clock, principal.actor, "auth.password", obj=f"user:{principal.name}") as (s, _):
        if not old_ok:
            raise DomainError(Kind.FORBIDDEN, "the current password is wrong", key=N_("password.wrong"))
        refusal = password_refusal(new, name=principal.name, old=old, min_length=api.min_password_length)
        if refusal:
            raise refusal
        auth_store.set_password(s, principal.user_id, new_hash, must_change=False)
        now = app.clock.now_us()
        auth_store.revoke_all_of_user(s, principal.user_id, now, except_id=principal.credential_id)


def password_refusal(new: str, *, name: str, old: str, min_length: int) -> DomainError | None:
    """The password policy: why ``new`` may not be ``name``'s password (None: it may)."""
    if len(new) < min_length:
        return DomainError(Kind.INVALID, f"new password: at least {min_length} characters are required (got {len(new)})",
                           key=N_("password.too_short"), params={"min": min_length, "got": len(new)})
    if len(new) > 256:
        return DomainError(Kind.INVALID, "new password: at most 256 characters", key=N_("password.too_long"),
                           params={"max": 256})
    if new == old:
        return DomainError(Kind.INVALID, "new password: must differ from the current one", key=N_("password.same"))
    if name.lower() in new.lower():
        return DomainError(Kind.INVALID, "new password: must not contain the user name", key=N_("password.has_name"))
    return None


def create_token(app, principal: Principal, *, label: str, days: int) -> Issued:
    api = app.config.api
    if not 1 <= days <= api.token_max_days:
        raise DomainError(Kind.INVALID, f"days: a token lives 1..{api.token_max_days} days (got {days})",
                          key=N_("token.err.days"), params={"max": api.token_max_days, "days": days})
    with audited(app.engine, app.clock, principal.actor, "auth.token.create", obj=f"user:{principal.name}") as (s, entry):
        user = auth_store.user_by_id(s, principal.user_id)
        issued = _issue(s, user, kind=TOKEN, label=label, now_us=app.clock.now_us(),
                        lifetime_us=days * 86400 * 1_000_000, client=principal.client)
        entry.obj = f"token:{issued.principal.credential_id}"
        entry.detail = f"label={label!r} days={days}"
    return issued


def list_tokens(app, principal: Principal):
    with Session(app.engine) as s:
        return auth_store.tokens_of_user(s, principal.user_id, now_us=app.clock.now_us())


def revoke_token(app, principal: Principal, token_id: int) -> None:
    """Revoke one of the caller's tokens (an administrator may revoke anyone's)."""
    with audited(app.engine, app.clock, principal.actor, "auth.token.revoke", obj=f"token:{token_id}") as (s, _):
        cred = auth_store.credential(s, token_id)
        if cred is None or cred.kind != TOKEN or not policy.token_revocable(principal.role, principal.user_id,
                                                                          cred.user_id):
            raise DomainError(Kind.NOT_FOUND, f"token {token_id} does not exist or is not yours",
                              key=N_("token.err.unknown"), params={"id": token_id})
        if not auth_store.revoke_credential(s, token_id, app.clock.now_us()):
            raise DomainError(Kind.CONFLICT, f"token {token_id} is already revoked",
                              key=N_("token.err.revoked"), params={"id": token_id})


def user_by_name(app, name: str):
    with Session(app.engine) as s:
        user = index.user_by_name(s, name)
        if user is None:
            raise DomainError(Kind.NOT_FOUND, f"user {name!r} does not exist",
                              key=N_("users.err.unknown"), params={"name": name[:64]})
        return user
