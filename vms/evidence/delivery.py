"""Delivery links: an evidence package handed to a recipient who has no account.

A manager makes one link per recipient for a package (:func:`create_link`).
The link is ``/d/<token>``: 256 random bits (``secrets.token_urlsafe(32)``)
shown once, of which the database keeps only the SHA-256.  The token has to be
in the link's path (that is what a link is); it is never logged, never put in
an error message, and the API's routes redact it from their problem responses.
A link has an expiry (default 72 h), a download limit and optionally a passcode
(Argon2id-hashed like a password) that the manager sends by another channel.
A manager may revoke a link at any time.

The recipient:

* :func:`link_info` (``GET /d/<token>``) says what the link gives, without
  using a download;
* :func:`open_download` (``POST /d/<token>``, with the passcode if the link has
  one) counts one download (a conditional update: the limit holds under
  concurrency) and returns the decrypted ZIP as an iterator of chunks, each
  authenticated before it is yielded.  Nothing clear is written to disk.

Every outcome is audited with the client address: ``delivery.open``,
``delivery.download`` (time, client, count), and refusals (unknown token,
expired, revoked, exhausted, wrong passcode) as ``refused: <reason>``.
Guessing is rate limited in memory (:class:`GuessGuard`): after
``guess_limit`` failed attempts from one address within ``guess_window_s``
the address gets 429 until the window has passed (one audit entry per
lockout, so a guesser cannot flood the trail), and a link whose passcode was
wrong ``passcode_attempts`` times in a row is locked with a doubling back-off.
The counters live in this process (an appliance runs one API process; several
API nodes would each keep their own).

Packages expire with their deliveries: the package's ``expires_us`` (its
sidecar, vms/packages.py) is kept at *the latest live link's expiry plus
``grace_h``*; once no link is live (all expired, exhausted or revoked) it is
*now plus the grace*; a package never delivered keeps ``default_expiry_h +
grace_h`` from its creation.  :func:`expire_packages` (on a timer while the API
runs, :class:`PackageExpiryTimer`) deletes what is due and audits each
deletion (``package.delete``, actor ``system``).

Transactions: each use case writes its rows and its audit entry in one
transaction.  :func:`create_link` asks the policy (``Action.DELIVERY_MANAGE`` on
the ticket: exported, inside its access window) and inserts the link; the
ticket stays ``exported``.  It becomes ``delivered`` only when a recipient has
downloaded the package (:func:`vms.evidence.download.open_download` through
:func:`vms.access.tickets.mark_delivered`, audited with the link as the actor).
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from storage.sql import auth_store
from storage.sql import deliveries as store
from vms.access import policy as access_policy
from vms.access import tickets, users
from vms.access.address_guard import AddressGuard
from vms.access.audit import SYSTEM, Actor, audited, record
from vms.access.auth import hash_secret
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_
from vms.core.numbers import decimal
from vms.core.periodic import Periodic
from vms.evidence import release as released
from vms.evidence.export import package_store
from vms.evidence.packages import PackageInfo

log = logging.getLogger(__name__)

US_PER_H = 3_600_000_000
TOKEN_BYTES = 32  # 256 bits
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")
_PACKAGE_ID = re.compile(r"^[0-9a-f]{32}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
LINK_PREFIX = "/d/"
ANONYMOUS = "anonymous"


class LinkGone(DomainError):
    """The link existed but cannot be used any more (expired, revoked, used up, package deleted).
    The API answers 410 Gone."""

    def __init__(self, message: str, *, key: str = "", params: dict | None = None):
        super().__init__(Kind.FORBIDDEN, message, key=key, params=params)


@dataclass(frozen=True)
class DeliveryPolicy:
    """Limits of delivery links; :func:`configure` sets them per appliance."""

    default_expiry_h: int = 72
    max_expiry_h: int = 30 * 24
    default_max_downloads: int = 3
    max_downloads_limit: int = 100
    grace_h: int = 24  # a package outlives its last live link by this much
    min_passcode_length: int = 8
    guess_limit: int = 10  # failed attempts from one address ...
    guess_window_s: float = 600.0  # ... within this many seconds lock the address out
    passcode_attempts: int = 5  # wrong passcodes in a row before a link is locked
    passcode_lockout_s: float = 300.0  # first lockout of a link; doubles, at most a day


@dataclass(frozen=True)
class DeliveryView:
    """A link as managers see it (never its token or hashes)."""

    id: int
    ticket_id: int
    package_id: str
    recipient: str
    created_by: str
    created_us: int
    expires_us: int
    max_downloads: int
    downloads: int
    revoked_us: int | None
    passcode_required: bool
    state: str  # live | expired | revoked | exhausted

    @property
    def downloads_left(self) -> int:
        return max(0, self.max_downloads - self.downloads) if self.state == "live" else 0


@dataclass(frozen=True)
class NewLink:
    """A link just made: the only time its token (and a generated passcode) exist outside the recipient."""

    delivery: DeliveryView
    token: str
    passcode: str | None  # only when the appliance generated it

    @property
    def path(self) -> str:
        return link_path(self.token)


@dataclass(frozen=True)
class LinkInfo:
    """What a recipient may know before downloading."""

    delivery_id: int
    recipient: str
    filename: str
    size_bytes: int
    created_us: int
    expires_us: int
    downloads_left: int
    passcode_required: bool
    key_fingerprint: str
    manifest_sha256: str
    downloads: int = 0  # used so far
    downloaded_us: int | None = None  # the newest successful download (None: not downloaded yet)
    state: str = "live"  # live | expired | revoked | exhausted


@dataclass
class Download:
    """An authorised download: the ZIP's bytes as authenticated chunks (nothing clear on disk)."""

    info: LinkInfo
    chunks: Iterator[bytes]


def link_path(token: str) -> str:
    return f"{LINK_PREFIX}{token}"


def link_state(row: store.DeliveryRow, now_us: int) -> str:
    if row.revoked_us is not None:
        return "revoked"
    if now_us >= row.expires_us:
        return "expired"
    if row.downloads >= row.max_downloads:
        return "exhausted"
    return "live"


# ---------------------------------------------------------------- per-appliance state


class GuessGuard:
    """Failed redemptions per client address and wrong passcodes per link (in memory, thread-safe)."""

    def __init__(self, policy: DeliveryPolicy, monotonic_s: Callable[[], float]):
        self.policy, self._now = policy, monotonic_s
        self._lock = threading.Lock()
        self._addresses = AddressGuard(policy.guess_limit, policy.guess_window_s, monotonic_s)
        self._links: dict[int, tuple[int, float]] = {}  # delivery id -> (wrong in a row, locked until)

    def address_retry_after(self, client: str) -> float:
        """Seconds the address must wait (0: it may try)."""
        return self._addresses.retry_after(client)

    def address_failed(self, client: str) -> bool:
        """Count a failure; True when this one locks the address out."""
        return self._addresses.failed(client)

    def link_retry_after(self, delivery_id: int) -> float:
        with self._lock:
            return max(0.0, self._links.get(delivery_id, (0, 0.0))[1] - self._now())

    def passcode_wrong(self, delivery_id: int) -> None:
        p = self.policy
        with self._lock:
            n = self._links.get(delivery_id, (0, 0.0))[0] + 1
            until = 0.0
            if n >= p.passcode_attempts:
                until = self._now() + min(86400.0, p.passcode_lockout_s * 2 ** min(n - p.passcode_attempts, 20))
            self._links[delivery_id] = (n, until)

    def passcode_right(self, delivery_id: int) -> None:
        with self._lock:
            self._links.pop(delivery_id, None)


@dataclass
class DeliveryState:
    """An appliance's delivery limits and guessing counters (in memory), held by the
    :class:`~vms.appliance.Appliance` as ``app.delivery_state``."""

    policy: DeliveryPolicy
    guard: GuessGuard

    @classmethod
    def for_config(cls, config, monotonic_s: Callable[[], float]) -> DeliveryState:
        policy = policy_from_config(config)
        return cls(policy, GuessGuard(policy, monotonic_s))


def _state(app) -> DeliveryState:
    return app.delivery_state


def policy_from_config(config) -> DeliveryPolicy:
    """The ``[delivery]`` section of the appliance's config (defaults without one)."""
    d = getattr(config, "delivery", None)
    if d is None:
        return DeliveryPolicy()
    return replace(DeliveryPolicy(), default_expiry_h=d.default_expiry_hours, max_expiry_h=d.max_expiry_hours,
                   default_max_downloads=d.default_max_downloads, grace_h=d.package_grace_hours)


def configure(app, policy: DeliveryPolicy) -> None:
    """Set the delivery limits of an appliance (resets the guessing counters)."""
    app.delivery_state = DeliveryState(policy, GuessGuard(policy, app.clock.monotonic_s))


def policy(app) -> DeliveryPolicy:
    return _state(app).policy


# ---------------------------------------------------------------- checks (pure)


def check_recipient(value: str) -> str:
    value = (value or "").strip()
    if not 1 <= len(value) <= 200:
        raise DomainError(Kind.INVALID, "recipient: 1 to 200 characters (who receives the link, e.g. a police unit)",
                          key=N_("link.err.recipient"))
    if _CONTROL.search(value):
        raise DomainError(Kind.INVALID, "recipient: a single line without control characters",
                          key=N_("link.err.recipient_line"))
    return value


def check_limits(p: DeliveryPolicy, expires_h: int | None, max_downloads: int | None) -> tuple[int, int]:
    expires_h = p.default_expiry_h if expires_h is None else expires_h
    max_downloads = p.default_max_downloads if max_downloads is None else max_downloads
    if not isinstance(expires_h, int) or not 1 <= expires_h <= p.max_expiry_h:
        raise DomainError(Kind.INVALID, f"expires_hours: 1 to {p.max_expiry_h} hours (default {p.default_expiry_h})",
                          key=N_("link.err.expiry"), params={"max": p.max_expiry_h, "default": p.default_expiry_h})
    if not isinstance(max_downloads, int) or not 1 <= max_downloads <= p.max_downloads_limit:
        raise DomainError(Kind.INVALID, f"max_downloads: 1 to {p.max_downloads_limit} (default {p.default_max_downloads})",
                          key=N_("link.err.downloads"),
                          params={"max": p.max_downloads_limit, "default": p.default_max_downloads})
    return expires_h, max_downloads


def check_passcode(p: DeliveryPolicy, passcode: str | None, generate: bool) -> str | None:
    if passcode is not None and generate:
        raise DomainError(Kind.INVALID, "passcode: give a passcode or ask for one to be generated, not both",
                          key=N_("link.err.passcode_both"))
    if generate:
        return users.one_time_password()
    if passcode is None:
        return None
    if not p.min_passcode_length <= len(passcode) <= 256:
        raise DomainError(Kind.INVALID, f"passcode: {p.min_passcode_length} to 256 characters",
                          key=N_("link.err.passcode_length"), params={"min": p.min_passcode_length})
    if _CONTROL.search(passcode):
        raise DomainError(Kind.INVALID, "passcode: no control characters", key=N_("link.err.passcode_control"))
    return passcode


def check_package_id(package_id: str) -> str:
    if not isinstance(package_id, str) or not _PACKAGE_ID.match(package_id):
        raise DomainError(Kind.INVALID, "package id must be 32 lower-case hex digits", key=N_("export.err.package_id"))
    return package_id


def _ticket_of(info: PackageInfo) -> int:
    try:
        return int(info.ticket_id)
    except ValueError:
        raise DomainError(Kind.PRECONDITION, f"package {info.package_id} was not made from a ticket of this "
                                             "appliance's API; it cannot be delivered by link",
                                             key=N_("link.err.not_ours"), params={"package": info.package_id}) from None


def _iso(t_us: int) -> str:
    return datetime.fromtimestamp(t_us // 1_000_000, UTC).strftime("%Y-%m-%d %H:%M UTC")


# ---------------------------------------------------------------- managers


def _view(s: Session, row: store.DeliveryRow, now_us: int, names: dict[int, str] | None = None) -> DeliveryView:
    names = names if names is not None else {}
    if row.created_by not in names:
        user = auth_store.user_by_id(s, row.created_by)
        names[row.created_by] = user.name if user else "?"
    return DeliveryView(row.id, row.ticket_id, row.package_id, row.recipient, names[row.created_by], row.created_us,
                        row.expires_us, row.max_downloads, row.downloads, row.revoked_us, row.passcode_hash is not None,
                        link_state(row, now_us))


def _require_manager(principal) -> None:
    access_policy.enforce(access_policy.role_refusal(principal.role, access_policy.Action.DELIVERY_MANAGE))


def create_link(app, principal, package_id: str, *, recipient: str, expires_h: int | None = None,
                max_downloads: int | None = None, passcode: str | None = None,
                generate_passcode: bool = False) -> NewLink:
    """A new link for ``recipient`` (a manager; the ticket must be exported and inside its access window)."""
    p = policy(app)
    try:
        _require_manager(principal)
        recipient = check_recipient(recipient)
        expires_h, max_downloads = check_limits(p, expires_h, max_downloads)
        passcode = check_passcode(p, passcode, generate_passcode)
        info = package_store(app).info(package_id)
        ticket_id = _ticket_of(info)
    except DomainError as exc:
        _refusal(app, principal.actor, "delivery.create", f"package:{package_id}"[:255], None, exc)
        raise
    detail = (f"package={package_id} recipient={recipient[:100]!r} expires_hours={expires_h} "
              f"max_downloads={max_downloads} passcode={'yes' if passcode else 'no'}")
    try:
        tickets.delivery_check(app, principal, ticket_id)
        if (refusal := released.delivery_refusal(app, ticket_id, package_id)) is not None:
            raise refusal
    except DomainError as exc:
        _refusal(app, principal.actor, "delivery.create", f"package:{package_id}", ticket_id, exc)
        raise
    passcode_hash = users.hash_password(passcode) if passcode else None  # slow on purpose: outside the transaction
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with audited(app.engine, app.clock, principal.actor, "delivery.create", ticket_id=ticket_id) as (s, entry):
        now = app.clock.now_us()
        delivery_id = store.insert(s, ticket_id=ticket_id, package_id=package_id, recipient=recipient,
                                   token_hash=hash_secret(token), passcode_hash=passcode_hash,
                                   expires_us=now + expires_h * US_PER_H, max_downloads=max_downloads,
                                   created_by=principal.user_id, now_us=now)
        entry.obj, entry.detail = f"delivery:{delivery_id}", detail
        view = _view(s, store.by_id(s, delivery_id), now)
    refresh_package_expiry(app, package_id)
    return NewLink(view, token, passcode if generate_passcode else None)


def list_links(app, principal, package_id: str) -> list[DeliveryView]:
    _require_manager(principal)
    check_package_id(package_id)
    now = app.clock.now_us()
    with Session(app.engine) as s:
        names: dict[int, str] = {}
        return [_view(s, r, now, names) for r in store.of_package(s, package_id)]


def links_of_packages(app, package_ids: list[str]) -> dict[str, list[DeliveryView]]:
    """Links per package (for listings; no permission check: the caller has made it)."""
    now = app.clock.now_us()
    with Session(app.engine) as s:
        names: dict[int, str] = {}
        return {pid: [_view(s, r, now, names) for r in rows] for pid, rows in store.of_packages(s, package_ids).items()}


def revoke_link(app, principal, delivery_id: int) -> DeliveryView:
    """Revoke a link (a manager); revoking a revoked link is a conflict naming when it was revoked."""
    with audited(app.engine, app.clock, principal.actor, "delivery.revoke", obj=f"delivery:{delivery_id}") as (s, entry):
        _require_manager(principal)
        now = app.clock.now_us()
        row = store.by_id(s, delivery_id)
        if row is None:
            raise DomainError(Kind.NOT_FOUND, f"delivery link {delivery_id} does not exist",
                              key=N_("link.err.unknown"), params={"id": delivery_id})
        entry.ticket_id = row.ticket_id
        if not store.revoke(s, delivery_id, now_us=now):
            raise DomainError(Kind.CONFLICT, f"delivery link {delivery_id} was revoked already ({_iso(row.revoked_us or now)})",
                              key=N_("link.err.revoked"), params={"id": delivery_id, "at": _iso(row.revoked_us or now)})
        entry.detail = f"package={row.package_id} recipient={row.recipient[:100]!r} downloads={row.downloads}"
        view = _view(s, store.by_id(s, delivery_id), now)
    refresh_package_expiry(app, view.package_id)
    return view


def _refusal(app, actor: Actor, action: str, obj: str, ticket_id: int | None, exc: DomainError) -> None:
    with Session(app.engine) as s, s.begin():
        record(s, actor, action, now_us=app.clock.now_us(), obj=obj, ticket_id=ticket_id,
               outcome=f"refused: {exc.message}"[:500])


# ---------------------------------------------------------------- package expiry


def package_deadline(rows: list[store.DeliveryRow], *, created_us: int, now_us: int, p: DeliveryPolicy) -> int:
    """When a package is to be deleted, given its links (pure)."""
    grace = p.grace_h * US_PER_H
    if not rows:
        return created_us + p.default_expiry_h * US_PER_H + grace
    live = [r.expires_us for r in rows if store.is_live(r, now_us)]
    return (max(live) if live else now_us) + grace


def undelivered_expiry(app, created_us: int) -> int:
    """The deletion time of a package no link has been made for yet."""
    return package_deadline([], created_us=created_us, now_us=created_us, p=policy(app))


def refresh_package_expiry(app, package_id: str) -> int | None:
    """Recompute the package's deletion time from its links; returns it (None if the package is gone)."""
    pkgs = package_store(app)
    try:
        info = pkgs.info(package_id)
    except DomainError:
        return None
    now = app.clock.now_us()
    with Session(app.engine) as s:
        rows = store.of_package(s, package_id)
    deadline = package_deadline(rows, created_us=info.created_us, now_us=now, p=policy(app))
    if rows and info.expires_us is not None and not any(store.is_live(r, now) for r in rows):
        deadline = min(deadline, max(info.expires_us, now))  # a dead package's deadline never moves later
    if deadline != info.expires_us:
        pkgs.set_expiry(package_id, deadline)
    return deadline


def delete_package(app, principal, package_id: str) -> PackageInfo:
    """Delete a package now (a manager): its links are revoked, its key destroyed, its file removed."""
    pkgs = package_store(app)
    with audited(app.engine, app.clock, principal.actor, "package.delete", obj=f"package:{package_id}"[:255]) as (s, entry):
        _require_manager(principal)
        info = pkgs.info(package_id)
        entry.ticket_id = decimal(info.ticket_id)
        revoked = store.revoke_package(s, package_id, now_us=app.clock.now_us())
        entry.detail = f"by manager; links_revoked={revoked} size_bytes={info.size_bytes} cameras={','.join(info.cameras)}"
        s.flush()
        pkgs.delete(package_id)
    return info


def expire_packages(app) -> list[PackageInfo]:
    """Delete every package whose deliveries have ended (plus the grace); each deletion audited."""
    now = app.clock.now_us()
    pkgs = package_store(app)
    deleted = []
    for info in pkgs.expired(now):
        ticket_id = decimal(info.ticket_id)
        with Session(app.engine) as s, s.begin():
            rows = store.of_package(s, info.package_id)
            if any(store.is_live(r, now) for r in rows):
                refresh_package_expiry(app, info.package_id)  # its deadline was stale: a live link keeps it
                continue
            reason = "never delivered" if not rows else "its delivery links have ended"
            record(s, SYSTEM, "package.delete", now_us=now, obj=f"package:{info.package_id}", ticket_id=ticket_id,
                   detail=f"{reason}; expired_at={info.expires_us} size_bytes={info.size_bytes} "
                          f"cameras={','.join(info.cameras)} links={len(rows)}")
            s.flush()
            pkgs.delete(info.package_id)
        deleted.append(info)
    return deleted


class PackageExpiryTimer(Periodic):
    """Runs :func:`expire_packages` every ``interval_s`` in a daemon thread (started by the API app)."""

    def __init__(self, app, *, interval_s: float = 60.0):
        self.app = app
        super().__init__("package-expiry", interval_s, lambda: expire_packages(app))
