"""The Alembic migrations and the SQLAlchemy models describe the same schema,
on SQLite and on PostgreSQL; and downgrading to the start and up again works."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from storage.sql.db import MIGRATIONS, make_engine, migrate
from storage.sql.models import Base


def _differences(engine) -> list:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(ctx, Base.metadata)
    # alembic_version is the migration tool's own table, not part of the models
    return [d for d in diffs if not (d[0] == "remove_table" and d[1].name == "alembic_version")]


def test_models_match_migrations(database_url):
    engine = make_engine(database_url)
    try:
        migrate(engine)
        assert _differences(engine) == []
    finally:
        engine.dispose()


def test_downgrade_to_base_and_upgrade_again(database_url):
    engine = make_engine(database_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    try:
        migrate(engine)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "base")
        with engine.connect() as conn:
            left = set(conn.dialect.get_table_names(conn)) - {"alembic_version"}
        assert left == set()
        migrate(engine)
        assert _differences(engine) == []
    finally:
        engine.dispose()
