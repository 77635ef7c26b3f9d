"""Queries for users and sign-in credentials (sessions and API tokens).

Credentials are stored only as the SHA-256 of their secret.  Functions take an
open session and never commit (the caller owns the transaction).
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from storage.sql.models import AuthCredential, User


def user_by_id(s: Session, user_id: int) -> User | None:
    return s.get(User, user_id)


def user_names(s: Session, user_ids) -> dict[int, str]:
    """id -> name of the given users, in one query."""
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return {}
    u = User.__table__.c  # table columns: see storage.sql.tickets.TICKET_COLUMNS
    return dict(s.connection().execute(select(u.id, u.name).where(u.id.in_(ids))).all())


def list_users(s: Session, *, limit: int, offset: int) -> tuple[list[User], int]:
    rows = list(s.scalars(select(User).order_by(User.name).limit(limit).offset(offset)))
    total = s.scalar(select(func.count()).select_from(User)) or 0
    return rows, int(total)


def record_failed_login(s: Session, user_id: int, *, locked_until_us: int | None) -> int:
    """Count one more failure (atomically); returns the new count."""
    s.execute(update(User).where(User.id == user_id).values(failed_logins=User.failed_logins + 1))
    if locked_until_us is not None:
        s.execute(update(User).where(User.id == user_id).values(locked_until_us=locked_until_us))
    return int(s.scalar(select(User.failed_logins).where(User.id == user_id)) or 0)


def set_lock(s: Session, user_id: int, locked_until_us: int | None) -> None:
    s.execute(update(User).where(User.id == user_id).values(locked_until_us=locked_until_us))


def clear_failed_logins(s: Session, user_id: int) -> None:
    s.execute(update(User).where(User.id == user_id).values(failed_logins=0, locked_until_us=None))


def set_password(s: Session, user_id: int, password_hash: str, *, must_change: bool) -> None:
    s.execute(update(User).where(User.id == user_id).values(password_hash=password_hash, must_change_password=must_change))


def set_disabled(s: Session, user_id: int, disabled: bool) -> None:
    s.execute(update(User).where(User.id == user_id).values(disabled=disabled))


def confirmers(s: Session, roles: tuple[str, ...], *, excluding: tuple[str, ...]) -> list[str]:
    """Names of enabled accounts with one of ``roles``, other than ``excluding``."""
    q = select(User.name).where(User.role.in_(roles), User.disabled.is_(False), User.name.not_in(excluding))
    return list(s.scalars(q.order_by(User.name)))


def set_role(s: Session, user_id: int, role: str) -> None:
    s.execute(update(User).where(User.id == user_id).values(role=role))


# ---------------------------------------------------------------- credentials


def add_credential(s: Session, *, user_id: int, kind: str, label: str, token_hash: str, now_us: int,
                   expires_us: int) -> AuthCredential:
    row = AuthCredential(user_id=user_id, kind=kind, label=label, token_hash=token_hash, created_us=now_us,
                         expires_us=expires_us)
    s.add(row)
    s.flush()
    return row


class CredentialOwner(NamedTuple):
    """A credential and its user, as a request's authentication needs them."""

    credential_id: int
    kind: str
    expires_us: int
    revoked_us: int | None
    last_used_us: int | None
    user_id: int
    name: str
    role: str
    disabled: bool
    must_change_password: bool


_C, _U = AuthCredential.__table__.c, User.__table__.c  # table columns: see storage.sql.tickets.TICKET_COLUMNS
_BY_HASH = (select(_C.id, _C.kind, _C.expires_us, _C.revoked_us, _C.last_used_us, _U.id, _U.name, _U.role,
                   _U.disabled, _U.must_change_password)
            .join_from(AuthCredential.__table__, User.__table__, _U.id == _C.user_id))


def credential_by_hash(s: Session, token_hash: str) -> CredentialOwner | None:
    """Every request runs this once: plain columns, no ORM objects."""
    row = s.connection().execute(_BY_HASH.where(_C.token_hash == token_hash)).first()
    return None if row is None else CredentialOwner(*row[:8], bool(row[8]), bool(row[9]))


def credential(s: Session, credential_id: int) -> AuthCredential | None:
    return s.get(AuthCredential, credential_id)


def touch_credential(s: Session, credential_id: int, now_us: int) -> None:
    s.execute(update(AuthCredential).where(AuthCredential.id == credential_id).values(last_used_us=now_us))


def revoke_credential(s: Session, credential_id: int, now_us: int) -> bool:
    result = s.execute(
        update(AuthCredential)
        .where(AuthCredential.id == credential_id, AuthCredential.revoked_us.is_(None))
        .values(revoked_us=now_us)
    )
    return result.rowcount > 0


def revoke_all_of_user(s: Session, user_id: int, now_us: int, *, except_id: int | None = None) -> int:
    q = update(AuthCredential).where(AuthCredential.user_id == user_id, AuthCredential.revoked_us.is_(None))
    if except_id is not None:
        q = q.where(AuthCredential.id != except_id)
    result = s.execute(q.values(revoked_us=now_us))
    return result.rowcount


def tokens_of_user(s: Session, user_id: int, *, now_us: int) -> list[AuthCredential]:
    """The user's API tokens that are neither revoked nor expired, newest first."""
    return list(
        s.scalars(
            select(AuthCredential)
            .where(AuthCredential.user_id == user_id, AuthCredential.kind == "token",
                   AuthCredential.revoked_us.is_(None), AuthCredential.expires_us > now_us)
            .order_by(AuthCredential.id.desc())
        )
    )
