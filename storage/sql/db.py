"""Database engine, sessions and schema migrations.

``open_database(url)`` returns an engine whose schema is at the newest
migration.  SQLite gets WAL journaling, foreign keys, ``secure_delete`` (so a
shredded key's bytes are overwritten in the file, not left in a free page) and
a busy timeout.  Callers own their transactions: ``with Session(engine) as s,
s.begin(): ...``; nothing in ``storage`` commits on its own except migrations.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")
# connections kept open / opened beyond that on demand: room for api.worker_threads (default 8) plus the
# recorder, janitor and timers without closing and reopening connections (SQLAlchemy's default keeps 5)
POOL_SIZE, POOL_OVERFLOW = 16, 32


class DatabaseError(Exception):
    """The database is unreachable or its URL is unusable; the message is safe to show
    (it never contains the password)."""


def safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA secure_delete=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseError("database_url is not a valid SQLAlchemy URL (e.g. sqlite:////var/lib/vms/index.db)") from None
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        if sqlite3.sqlite_version_info < (3, 35):
            raise DatabaseError(f"SQLite {sqlite3.sqlite_version} is too old: the appliance needs 3.35 or newer "
                                "(UPDATE ... RETURNING); Debian 12 has 3.40")
        in_memory = parsed.database in (None, "", ":memory:")  # one connection per thread: no pool to size
        pool = {} if in_memory else {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW}
        engine = create_engine(parsed, connect_args={"timeout": 5}, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(parsed, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)
    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except OperationalError as exc:
        raise DatabaseError(f"database {safe_url(str(engine.url))} is unreachable: {exc.orig.__class__.__name__}") from None


def open_database(url: str, *, upgrade: bool = True) -> Engine:
    engine = make_engine(url)
    if upgrade:
        migrate(engine)
    else:
        check_reachable(engine)
    return engine


def check_reachable(engine: Engine) -> None:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        raise DatabaseError(f"database {safe_url(str(engine.url))} is unreachable: {exc.orig.__class__.__name__}") from None


def sessions(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
