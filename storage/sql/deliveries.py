"""Queries for delivery links (table ``deliveries``, migration 0003).

A row is one link for one recipient to one package.  Only hashes are stored:
``token_hash`` is the SHA-256 of the link token, ``passcode_hash`` an Argon2id
hash (or NULL when the link has no passcode).  A link is *live* while it is
not revoked, not expired and has downloads left (:func:`is_live`).

Counting a download and revoking are conditional updates, so two downloads at
once cannot exceed the limit and a revoked link stays revoked.  Functions
never commit; the caller's transaction holds the audit entry too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage.sql.models import Delivery


class DeliveryRow(NamedTuple):
    id: int
    ticket_id: int
    package_id: str
    recipient: str
    token_hash: str
    passcode_hash: str | None
    expires_us: int
    max_downloads: int
    downloads: int
    revoked_us: int | None
    created_by: int
    created_us: int


_COLS = tuple(getattr(Delivery, name) for name in DeliveryRow._fields)


def is_live(row: DeliveryRow, now_us: int) -> bool:
    return row.revoked_us is None and now_us < row.expires_us and row.downloads < row.max_downloads


def insert(s: Session, *, ticket_id: int, package_id: str, recipient: str, token_hash: str,
           passcode_hash: str | None, expires_us: int, max_downloads: int, created_by: int, now_us: int) -> int:
    row = Delivery(ticket_id=ticket_id, package_id=package_id, recipient=recipient, token_hash=token_hash,
                   passcode_hash=passcode_hash, expires_us=expires_us, max_downloads=max_downloads, downloads=0,
                   created_by=created_by, created_us=now_us)
    s.add(row)
    s.flush()
    return row.id


def _one(s: Session, *where) -> DeliveryRow | None:
    row = s.execute(select(*_COLS).where(*where)).first()
    return DeliveryRow(*row) if row else None


def by_id(s: Session, delivery_id: int) -> DeliveryRow | None:
    return _one(s, Delivery.id == delivery_id)


def by_token_hash(s: Session, token_hash: str) -> DeliveryRow | None:
    return _one(s, Delivery.token_hash == token_hash)


def of_package(s: Session, package_id: str) -> list[DeliveryRow]:
    rows = s.execute(select(*_COLS).where(Delivery.package_id == package_id).order_by(Delivery.id))
    return [DeliveryRow(*r) for r in rows]


def of_packages(s: Session, package_ids: Sequence[str]) -> dict[str, list[DeliveryRow]]:
    out: dict[str, list[DeliveryRow]] = {p: [] for p in package_ids}
    if package_ids:
        rows = s.execute(select(*_COLS).where(Delivery.package_id.in_(list(package_ids))).order_by(Delivery.id))
        for r in rows:
            out[r.package_id].append(DeliveryRow(*r))
    return out


def count_download(s: Session, delivery_id: int, *, now_us: int) -> bool:
    """Use one download if the link is still live; False when it is not (any more)."""
    result = s.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.revoked_us.is_(None), Delivery.expires_us > now_us,
               Delivery.downloads < Delivery.max_downloads)
        .values(downloads=Delivery.downloads + 1)
    )
    return result.rowcount > 0


def revoke(s: Session, delivery_id: int, *, now_us: int) -> bool:
    """Revoke a link; False when it was revoked already."""
    result = s.execute(
        update(Delivery).where(Delivery.id == delivery_id, Delivery.revoked_us.is_(None)).values(revoked_us=now_us)
    )
    return result.rowcount > 0


def revoke_package(s: Session, package_id: str, *, now_us: int) -> int:
    """Revoke every link of a package that is not revoked yet; returns how many."""
    result = s.execute(
        update(Delivery).where(Delivery.package_id == package_id, Delivery.revoked_us.is_(None))
        .values(revoked_us=now_us)
    )
    return result.rowcount
