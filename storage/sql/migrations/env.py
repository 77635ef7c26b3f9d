"""Alembic environment: runs on the connection handed in by storage.sql.db.migrate."""

from alembic import context

from storage.sql.models import Base

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only storage.sql.db.migrate drives migrations
    raise RuntimeError("run migrations through storage.sql.db.migrate (or 'vms db upgrade')")
context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
