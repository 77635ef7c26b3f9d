"""Recipients without an account: a delivery link's page and the download behind its passcode.

Every refusal is audited (never the passcode), wrong guesses are counted per client address and per link
(:class:`vms.evidence.delivery.GuessGuard`, held by the appliance), and a download is audited when it
starts and when it ends.  The first download makes the ticket ``delivered``.  Links are made, listed and
revoked by managers in :mod:`vms.evidence.delivery`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from sqlalchemy.orm import Session

from storage.format.blobs import BlobError
from storage.sql import audit as audit_store
from storage.sql import deliveries as store
from vms.access import tickets, users
from vms.access.audit import Actor, record
from vms.access.auth import LockedOut, hash_secret
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_
from vms.evidence.delivery import (
    _TOKEN,
    ANONYMOUS,
    Download,
    LinkGone,
    LinkInfo,
    _iso,
    _refusal,
    _state,
    link_state,
    policy,
    refresh_package_expiry,
)
from vms.evidence.export import package_store
from vms.evidence.packages import PackageInfo
from vms.notify import outbox

log = logging.getLogger(__name__)


def _recipient(row: store.DeliveryRow, client: str) -> Actor:
    return Actor(f"link:{row.id}", "recipient", client)


def _find(app, token: str, client: str, action: str) -> store.DeliveryRow:
    """The live link for ``token``; refusals are audited and counted against the address."""
    st = _state(app)
    wait = st.guard.address_retry_after(client)
    if wait > 0:
        raise LockedOut(f"too many failed attempts from your address; try again in {int(wait) + 1} s",
                        int(wait) + 1)
    row = None
    if isinstance(token, str) and _TOKEN.match(token):
        with Session(app.engine) as s:
            row = store.by_token_hash(s, hash_secret(token))
    if row is None:
        _failed_attempt(app, client, Actor(ANONYMOUS, ANONYMOUS, client), action, "", None,
                        DomainError(Kind.NOT_FOUND, "this download link is not valid; check that the whole link "
                                                    "was copied, or ask the sender for a new one",
                                    key=N_("dl.invalid")))
    now = app.clock.now_us()
    state = link_state(row, now)
    if state != "live":
        why = {
            "revoked": "this download link was revoked by the sender",
            "expired": f"this download link expired at {_iso(row.expires_us)}",
            "exhausted": f"this download link has been used {row.downloads} time(s), which is its limit",
        }[state]
        exc = LinkGone(f"{why}; ask the sender for a new link", key=f"dl.gone.{state}",
                       params={"at": _iso(row.expires_us), "n": row.downloads})
        _refusal(app, _recipient(row, client), action, f"delivery:{row.id}", row.ticket_id, exc)
        raise exc
    return row


def _failed_attempt(app, client: str, actor: Actor, action: str, obj: str, ticket_id: int | None,
                    exc: DomainError) -> None:
    """Audit a failed attempt, count it against the address and raise ``exc``."""
    locked = _state(app).guard.address_failed(client)
    _refusal(app, actor, action, obj, ticket_id, exc)
    if locked:
        p = policy(app)
        _refusal(app, actor, "delivery.guessing", "", None, DomainError(
            Kind.FORBIDDEN, f"{p.guess_limit} failed attempts from this address within {p.guess_window_s:g} s; "
                            f"address locked for {p.guess_window_s:g} s"))
    raise exc


def _info(row: store.DeliveryRow, pkg: PackageInfo, downloaded_us: int | None = None,
          state: str = "live") -> LinkInfo:
    left = max(0, row.max_downloads - row.downloads) if state in ("live", "exhausted") else 0
    return LinkInfo(row.id, row.recipient, pkg.filename, pkg.size_bytes, row.created_us, row.expires_us, left,
                    row.passcode_hash is not None, pkg.key_fingerprint, pkg.manifest_sha256, row.downloads,
                    downloaded_us, state)


def _last_download_us(s: Session, row: store.DeliveryRow) -> int | None:
    """When the link was last used for a download (its audit entry; None before the first)."""
    if row.downloads == 0:
        return None
    entry = audit_store.latest(s, action="delivery.download", object=f"delivery:{row.id}", outcome="ok")
    return entry.at_us if entry else None


def _package(app, row: store.DeliveryRow, client: str, action: str) -> PackageInfo:
    try:
        return package_store(app).info(row.package_id)
    except DomainError:
        exc = LinkGone("the package behind this link has been deleted; ask the sender for a new link",
                       key=N_("dl.gone.deleted"))
        _refusal(app, _recipient(row, client), action, f"delivery:{row.id}", row.ticket_id, exc)
        raise exc from None


def link_info(app, token: str, *, client: str) -> LinkInfo:
    """What the link gives (no download is used); audited as ``delivery.open``."""
    row = _find(app, token, client, "delivery.open")
    pkg = _package(app, row, client, "delivery.open")
    with Session(app.engine) as s, s.begin():
        record(s, _recipient(row, client), "delivery.open", now_us=app.clock.now_us(), obj=f"delivery:{row.id}",
               ticket_id=row.ticket_id, detail=f"package={row.package_id}")
        downloaded_us = _last_download_us(s, row)
    return _info(row, pkg, downloaded_us)


def link_facts(app, token: str) -> LinkInfo | None:
    """The facts of the link ``token`` in any state (None for an unknown token or a deleted package), for the
    recipient's page beside a refusal that was audited already: after a wrong passcode the page keeps what the
    link gives, and after the last download it keeps when it was downloaded.  No audit entry, no throttling:
    the caller has just been through :func:`_find`'s."""
    if not (isinstance(token, str) and _TOKEN.match(token)):
        return None
    with Session(app.engine) as s:
        row = store.by_token_hash(s, hash_secret(token))
        if row is None:
            return None
        downloaded_us = _last_download_us(s, row)
    try:
        pkg = package_store(app).info(row.package_id)
    except DomainError:
        return None
    return _info(row, pkg, downloaded_us, link_state(row, app.clock.now_us()))


def open_download(app, token: str, *, passcode: str | None, client: str) -> Download:
    """Check the link (and passcode), count one download, and return the ZIP's chunks."""
    action = "delivery.download"
    row = _find(app, token, client, action)
    actor, obj = _recipient(row, client), f"delivery:{row.id}"
    if row.passcode_hash is not None:
        guard = _state(app).guard
        wait = guard.link_retry_after(row.id)
        if wait > 0:
            _failed_attempt(app, client, actor, action, obj, row.ticket_id, LockedOut(
                f"the passcode was wrong too often; this link is locked for {int(wait) + 1} s", int(wait) + 1,
                key=N_("dl.passcode_locked")))
        if not passcode:
            exc = DomainError(Kind.UNAUTHENTICATED, "this link needs the passcode the sender gave you separately",
                              key=N_("dl.passcode_needed"))
            _refusal(app, actor, action, obj, row.ticket_id, exc)
            raise exc
        if not users.verify_password(row.passcode_hash, passcode[:256]):
            guard.passcode_wrong(row.id)
            _failed_attempt(app, client, actor, action, obj, row.ticket_id,
                            DomainError(Kind.FORBIDDEN, "the passcode is wrong", key=N_("dl.passcode_wrong")))
        guard.passcode_right(row.id)
    pkg = _package(app, row, client, action)
    chunks = package_store(app).open(row.package_id)
    try:
        first = next(chunks, b"")
    except (BlobError, DomainError) as exc:
        log.error("delivery %s: package %s cannot be read (%s)", row.id, row.package_id, exc.__class__.__name__)
        err = DomainError(Kind.PRECONDITION, "the package cannot be read on the appliance; the sender has been told",
                          key=N_("dl.err.unreadable"))
        _refusal(app, actor, action, obj, row.ticket_id, err)
        raise err from None
    with Session(app.engine) as s, s.begin():
        now = app.clock.now_us()
        if not store.count_download(s, row.id, now_us=now):
            used = None
        else:
            used = row.downloads + 1
            record(s, actor, action, now_us=now, obj=obj, ticket_id=row.ticket_id,
                   detail=f"package={row.package_id} download={used}/{row.max_downloads} bytes={pkg.size_bytes}")
            outbox.delivery_downloaded(s, app.config, delivery_id=row.id, ticket_id=row.ticket_id,
                                       created_by=row.created_by, count=used, limit=row.max_downloads, now_us=now)
    if used is None:  # another download took the last one meanwhile, or the link was revoked
        _find(app, token, client, action)  # refuses with the reason
        raise LinkGone("this download link was used up meanwhile; ask the sender for a new link",
                       key=N_("dl.gone.exhausted"), params={"n": row.downloads})
    if used >= row.max_downloads:
        refresh_package_expiry(app, row.package_id)
    _delivered(app, actor, row, used)
    left = row._replace(downloads=used)
    return Download(_info(left, pkg, now), _stream(app, first, chunks, actor, obj, row.ticket_id))


def _delivered(app, actor: Actor, row: store.DeliveryRow, used: int) -> None:
    """The first download through any link makes the ticket ``delivered`` (audited, the link as the actor).  A
    ticket closed or expired meanwhile stays as it is: the download itself was the link's to give."""
    try:
        if tickets.get_unchecked(app, row.ticket_id).state == "exported":
            tickets.mark_delivered(app, actor, row.ticket_id,
                                   detail=f"package={row.package_id} delivery={row.id} download={used}")
    except DomainError as exc:
        log.info("delivery %s: ticket %s stays as it is (%s)", row.id, row.ticket_id, exc.kind.value)


def _stream(app, first: bytes, rest: Iterator[bytes], actor: Actor, obj: str, ticket_id: int) -> Iterator[bytes]:
    if first:
        yield first
    try:
        yield from rest
    except (BlobError, OSError) as exc:  # the package was damaged on disk: the recipient gets a short file
        log.error("%s: package read failed mid-download (%s)", obj, exc.__class__.__name__)
        with Session(app.engine) as s, s.begin():
            record(s, actor, "delivery.download", now_us=app.clock.now_us(), obj=obj, ticket_id=ticket_id,
                   outcome="failed: the package could not be read to the end")


