"""Queries of the door access log: keys, imported files, entries, doors, door holds, tickets' doors.

Entries carry the identifier only sealed and keyed-hashed (storage/keys/doorlog_keys.py); nothing here sees
it in clear.  Functions never commit; :func:`scrub` takes the engine because ``VACUUM`` runs outside a
transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, and_, delete, exists, func, or_, select, text, update
from sqlalchemy.orm import Session

from storage.sql.models import (
    DoorlogDoor,
    DoorlogEntry,
    DoorlogFile,
    DoorlogHold,
    DoorlogKey,
    Ticket,
    TicketDoor,
)

_K, _E, _F, _H, _TD = (DoorlogKey.__table__.c, DoorlogEntry.__table__.c, DoorlogFile.__table__.c,
                       DoorlogHold.__table__.c, TicketDoor.__table__.c)


# ---------------------------------------------------------------- keys


def insert_key(s: Session, *, label: str, day: str, wrapped: bytes, master_id: str, now_us: int) -> int:
    return int(s.connection().execute(DoorlogKey.__table__.insert().returning(_K.id), {
        "label": label, "day": day, "wrapped": wrapped, "master_id": master_id, "created_us": now_us}).scalar_one())


def key_by_label(s: Session, label: str):
    return s.connection().execute(select(DoorlogKey.__table__).where(_K.label == label)).first()


def keys_by_ids(s: Session, ids: Iterable[int]):
    ids = list(ids)
    return list(s.connection().execute(select(DoorlogKey.__table__).where(_K.id.in_(ids)))) if ids else []


def live_keys_between(s: Session, first_day: str, last_day: str):
    return list(s.connection().execute(select(DoorlogKey.__table__).where(
        _K.day >= first_day, _K.day <= last_day, _K.wrapped.is_not(None)).order_by(_K.day, _K.id)))


def live_keys(s: Session):
    return list(s.connection().execute(select(DoorlogKey.__table__).where(_K.wrapped.is_not(None))))


def count_keys_of_day(s: Session, day: str) -> int:
    return int(s.connection().execute(select(func.count()).select_from(DoorlogKey).where(_K.day == day)).scalar() or 0)


def shred_key(s: Session, key_id: int, *, now_us: int) -> bool:
    return s.execute(update(DoorlogKey).where(DoorlogKey.id == key_id, DoorlogKey.wrapped.is_not(None))
                     .values(wrapped=None, shredded_us=now_us)).rowcount > 0


def rewrap_key(s: Session, key_id: int, wrapped: bytes, master_id: str) -> None:
    s.execute(update(DoorlogKey).where(DoorlogKey.id == key_id).values(wrapped=wrapped, master_id=master_id))


def expired_day_keys(s: Session, before_day: str) -> list[tuple[int, str]]:
    """Live day keys (not held ones) of days before ``before_day``: (id, day)."""
    return [tuple(r) for r in s.connection().execute(select(_K.id, _K.day).where(
        _K.label.like("day:%"), _K.day < before_day, _K.wrapped.is_not(None)).order_by(_K.day))]


def empty_held_keys(s: Session) -> list[int]:
    """Live held keys no entry uses any more."""
    used = exists().where(_E.key_id == _K.id)
    return list(s.connection().execute(select(_K.id).where(
        _K.label.like("held:%"), _K.wrapped.is_not(None), ~used)).scalars())


def scrub(engine: Engine) -> bool:
    """Remove old copies of shredded key bytes and deleted entries from the database's files (as
    :func:`storage.sql.retention_queries.scrub_shredded_keys` does for footage keys)."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            busy, _log, _done = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
            conn.commit()
        return busy == 0
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM doorlog_keys, doorlog_entries"))
    return True


# ---------------------------------------------------------------- files


def file_by_sha(s: Session, sha256: str, status: str = "imported"):
    return s.connection().execute(select(DoorlogFile.__table__).where(
        _F.sha256 == sha256, _F.status == status).limit(1)).first()


def insert_file(s: Session, *, sha256: str, name: str, source: str, now_us: int, status: str, rows: int,
                added: int, report: str) -> int:
    return int(s.connection().execute(DoorlogFile.__table__.insert().returning(_F.id), {
        "sha256": sha256, "name": name[:255], "source": source[:80], "received_us": now_us, "status": status,
        "rows": rows, "added": added, "report": report[:4000]}).scalar_one())


def set_file_added(s: Session, file_id: int, added: int) -> None:
    s.execute(update(DoorlogFile).where(DoorlogFile.id == file_id).values(added=added))


def recent_files(s: Session, limit: int = 50):
    return list(s.connection().execute(select(DoorlogFile.__table__).order_by(_F.id.desc()).limit(limit)))


def delete_files_before(s: Session, before_us: int) -> int:
    return s.execute(delete(DoorlogFile).where(DoorlogFile.received_us < before_us)).rowcount


# ---------------------------------------------------------------- entries


_COLS = "key_id, at_us, door_id, id_hash, id_sealed, file_id"
_SQLITE_INSERT = f"INSERT OR IGNORE INTO doorlog_entries ({_COLS}) VALUES (?, ?, ?, ?, ?, ?)"
# PostgreSQL: COPY cannot skip a row already stored, so the rows are copied into a temporary table of the
# transaction (dropped at its end) and moved by one INSERT ... SELECT ... ON CONFLICT DO NOTHING; an INSERT
# per row, even pipelined, costs a round of parsing and executing per row
_PG_STAGE = ("CREATE TEMPORARY TABLE IF NOT EXISTS doorlog_import (key_id bigint, at_us bigint, "
             "door_id varchar(64), id_hash bytea, id_sealed bytea, file_id bigint) ON COMMIT DROP")
_PG_COPY = f"COPY pg_temp.doorlog_import ({_COLS}) FROM STDIN (FORMAT BINARY)"
_PG_COPY_FRESH = f"COPY doorlog_entries ({_COLS}) FROM STDIN (FORMAT BINARY)"
_PG_TYPES = ("int8", "int8", "varchar", "bytea", "bytea", "int8")
_PG_MOVE = (f"INSERT INTO doorlog_entries ({_COLS}) SELECT {_COLS} FROM pg_temp.doorlog_import "
            f"ON CONFLICT DO NOTHING")


def insert_entries(s: Session, rows: Sequence[tuple], *, fresh_key: bool = False) -> int:
    """Insert entries, tuples of (key_id, at_us, door_id, id_hash, id_sealed, file_id), in the order given; an
    entry already stored (same keyed hash, time and door) is skipped.  Returns how many were stored.  Driver
    SQL: the ORM's per-row bind processing costs more than the insert itself.

    ``fresh_key``: every row is under a key made in this transaction and no two rows are the same passage.
    No stored entry can then equal one of them (the keyed hash is per key, and a day's entries are all under
    its key), so PostgreSQL copies them straight into the table, without the temporary table and the
    conflict check (a third of the insert's time)."""
    if not rows:
        return 0
    raw = s.connection().connection.driver_connection
    if s.get_bind().dialect.name == "sqlite":
        cur = raw.cursor()
        try:
            cur.executemany(_SQLITE_INSERT, rows)
            return cur.rowcount
        finally:
            cur.close()
    if fresh_key:
        with raw.cursor() as cur:
            with cur.copy(_PG_COPY_FRESH) as copy:
                copy.set_types(_PG_TYPES)
                for row in rows:
                    copy.write_row(row)
            return len(rows)
    with raw.cursor() as cur:
        cur.execute(_PG_STAGE)
        with cur.copy(_PG_COPY) as copy:
            copy.set_types(_PG_TYPES)
            for row in rows:
                copy.write_row(row)
        cur.execute(_PG_MOVE)
        added = cur.rowcount
        cur.execute("TRUNCATE pg_temp.doorlog_import")  # for the next call in the same transaction
        return added


def count_entries(s: Session) -> int:
    return int(s.connection().execute(select(func.count()).select_from(DoorlogEntry)).scalar() or 0)


@dataclass(frozen=True)
class SealedEntry:
    id: int
    at_us: int
    door_id: str
    key_id: int
    id_sealed: bytes


_ENTRY_COLS = (_E.id, _E.at_us, _E.door_id, _E.key_id, _E.id_sealed)


def entries_at_doors(s: Session, doors: Sequence[str], start_us: int, end_us: int, *, limit: int) -> list[SealedEntry]:
    """Entries of ``doors`` in [start_us, end_us), oldest first, at most ``limit``."""
    rows = s.connection().execute(select(*_ENTRY_COLS).where(
        _E.door_id.in_(list(doors)), _E.at_us >= start_us, _E.at_us < end_us).order_by(_E.at_us, _E.id).limit(limit))
    return [SealedEntry(*r) for r in rows]


def entries_with_hashes(s: Session, hashes: Sequence[bytes], doors: Sequence[str], start_us: int, end_us: int, *,
                        limit: int) -> list[SealedEntry]:
    """Entries whose keyed hash is one of ``hashes`` at ``doors`` in [start_us, end_us), oldest first.  The doors
    are filtered here, not in SQL: the query then has one plan, a probe per hash in ``uq_doorlog_entries_who``
    (with the doors in SQL, SQLite may scan the doors' index over the whole span instead)."""
    if not hashes:
        return []
    rows = s.connection().execute(select(*_ENTRY_COLS).where(
        _E.id_hash.in_(list(hashes)), _E.at_us >= start_us, _E.at_us < end_us).order_by(_E.at_us, _E.id))
    wanted = set(doors)
    return [SealedEntry(*r) for r in rows if r[2] in wanted][:limit]


def entries_of_key(s: Session, key_id: int) -> list[SealedEntry]:
    return [SealedEntry(*r) for r in s.connection().execute(select(*_ENTRY_COLS).where(_E.key_id == key_id))]


def reseal_entry(s: Session, entry_id: int, *, key_id: int, id_hash: bytes, id_sealed: bytes) -> None:
    s.execute(update(DoorlogEntry).where(DoorlogEntry.id == entry_id)
              .values(key_id=key_id, id_hash=id_hash, id_sealed=id_sealed))


def count_entries_before(s: Session, cutoff_us: int) -> int:
    """Entries at or before ``cutoff_us`` (held or not)."""
    return int(s.connection().execute(select(func.count()).select_from(DoorlogEntry)
                                      .where(_E.at_us <= cutoff_us)).scalar() or 0)


def entry_span(s: Session) -> tuple[int | None, int | None, int]:
    """(oldest at_us, newest at_us, count) of all entries."""
    lo, hi, n = s.connection().execute(select(func.min(_E.at_us), func.max(_E.at_us), func.count())).one()
    return lo, hi, int(n or 0)


# ---------------------------------------------------------------- doors


def add_doors(s: Session, doors: Iterable[str], *, now_us: int) -> None:
    known = set(s.connection().execute(select(DoorlogDoor.door_id)).scalars())
    new = sorted(set(doors) - known)
    if new:
        s.connection().execute(DoorlogDoor.__table__.insert(), [{"door_id": d, "first_us": now_us} for d in new])


def doors(s: Session) -> list[str]:
    return list(s.connection().execute(select(DoorlogDoor.door_id).order_by(DoorlogDoor.door_id)).scalars())


# ---------------------------------------------------------------- holds


def hold_in_force(now_us: int, grace_us: int):
    """SQL for "this door hold still protects entries at ``now_us``" (the rule of
    :func:`storage.sql.index.hold_in_force` for camera holds)."""
    ticket_over = exists().where(Ticket.id == DoorlogHold.ticket_id, or_(
        and_(Ticket.access_until_us.is_not(None), Ticket.access_until_us + grace_us <= now_us),
        and_(Ticket.closed_us.is_not(None), Ticket.closed_us + grace_us <= now_us)))
    return and_(or_(DoorlogHold.released_us.is_(None), DoorlogHold.released_us > now_us), ~ticket_over)


def add_hold(s: Session, *, door_id: str, start_us: int, end_us: int, reason: str, now_us: int,
             ticket_id: int | None = None) -> int:
    return int(s.connection().execute(DoorlogHold.__table__.insert().returning(_H.id), {
        "door_id": door_id, "start_us": start_us, "end_us": end_us, "reason": reason, "ticket_id": ticket_id,
        "created_us": now_us}).scalar_one())


def release_holds_of(s: Session, ticket_id: int, *, at_us: int) -> int:
    return s.execute(update(DoorlogHold).where(
        DoorlogHold.ticket_id == ticket_id, or_(DoorlogHold.released_us.is_(None), DoorlogHold.released_us > at_us))
        .values(released_us=at_us)).rowcount


def holds_of(s: Session, ticket_id: int) -> list[DoorlogHold]:
    return list(s.scalars(select(DoorlogHold).where(DoorlogHold.ticket_id == ticket_id).order_by(DoorlogHold.door_id)))


def active_holds(s: Session, now_us: int, grace_us: int) -> list[DoorlogHold]:
    return list(s.scalars(select(DoorlogHold).where(hold_in_force(now_us, grace_us)).order_by(DoorlogHold.id)))


def _held(now_us: int, grace_us: int):
    return exists().where(DoorlogHold.door_id == DoorlogEntry.door_id, DoorlogHold.start_us <= DoorlogEntry.at_us,
                          DoorlogHold.end_us > DoorlogEntry.at_us, hold_in_force(now_us, grace_us))


def delete_expired(s: Session, *, cutoff_us: int, now_us: int, grace_us: int) -> int:
    """Delete entries at or before ``cutoff_us`` that no door hold in force covers; returns how many."""
    return s.execute(delete(DoorlogEntry).where(DoorlogEntry.at_us <= cutoff_us, ~_held(now_us, grace_us))
                     .execution_options(synchronize_session=False)).rowcount


def held_expired(s: Session, *, cutoff_us: int, now_us: int, grace_us: int) -> tuple[int, int | None]:
    """(count, oldest at_us) of entries past ``cutoff_us`` kept because a hold covers them."""
    n, oldest = s.execute(select(func.count(), func.min(DoorlogEntry.at_us)).where(
        DoorlogEntry.at_us <= cutoff_us, _held(now_us, grace_us))).one()
    return int(n or 0), oldest


# ---------------------------------------------------------------- tickets' doors


def add_ticket_doors(s: Session, ticket_id: int, doors: Sequence[str], *, id_lookup: bool) -> None:
    if doors:
        s.connection().execute(TicketDoor.__table__.insert(),
                               [{"ticket_id": ticket_id, "door_id": d, "id_lookup": id_lookup} for d in doors])


def ticket_doors(s: Session, ticket_id: int) -> tuple[list[str], bool]:
    """The doors a ticket covers, and whether it allows identifier lookups."""
    rows = list(s.connection().execute(select(_TD.door_id, _TD.id_lookup).where(_TD.ticket_id == ticket_id)
                                       .order_by(_TD.door_id)))
    return [r[0] for r in rows], any(bool(r[1]) for r in rows)
