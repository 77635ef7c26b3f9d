"""storage.sql.db.make_engine: pools sized for the worker threads on files; in-memory SQLite still opens."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.pool import QueuePool

from storage.sql.db import POOL_SIZE, make_engine


def test_a_file_database_keeps_a_pool_for_the_worker_threads(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'index.db'}")
    assert isinstance(engine.pool, QueuePool) and engine.pool.size() == POOL_SIZE
    engine.dispose()


def test_in_memory_sqlite_still_opens():
    for url in ("sqlite:///:memory:", "sqlite://"):
        engine = make_engine(url)
        with engine.connect() as conn:
            assert conn.execute(text("select 1")).scalar() == 1
        engine.dispose()
