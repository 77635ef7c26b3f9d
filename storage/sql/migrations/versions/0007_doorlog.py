"""The door access log and tickets' door scopes (docs/design/doorlog.md).

Revision ID: 0007
Revises: 0006

New tables only: door-log keys (wrapped by the master key), entries (identifier sealed and keyed-hashed,
never in clear), imported files, doors, door holds and the doors a ticket covers.  Downgrading drops them,
and with the keys every entry (crypto-shredded).
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "doorlog_keys",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("label", sa.String(40), nullable=False, unique=True),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=True),
        sa.Column("master_id", sa.String(16), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("shredded_us", sa.BigInteger(), nullable=True),
    )
    op.create_table(
        "doorlog_entries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("key_id", sa.BigInteger(), sa.ForeignKey("doorlog_keys.id"), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("door_id", sa.String(64), nullable=False),
        sa.Column("id_hash", sa.LargeBinary(), nullable=False),
        sa.Column("id_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("file_id", sa.BigInteger(), nullable=False),
    )
    op.create_index("uq_doorlog_entries_who", "doorlog_entries", ["id_hash", "at_us", "door_id"], unique=True)
    op.create_index("ix_doorlog_entries_door", "doorlog_entries", ["door_id", "at_us"])
    op.create_index("ix_doorlog_entries_key", "doorlog_entries", ["key_id"])
    op.create_table(
        "doorlog_files",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("source", sa.String(80), nullable=False),
        sa.Column("received_us", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("report", sa.String(4000), nullable=False),
    )
    op.create_index("ix_doorlog_files_sha", "doorlog_files", ["sha256"])
    op.create_index("ix_doorlog_files_received", "doorlog_files", ["received_us"])
    op.create_table(
        "doorlog_doors",
        sa.Column("door_id", sa.String(64), primary_key=True),
        sa.Column("first_us", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "doorlog_holds",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("door_id", sa.String(64), nullable=False),
        sa.Column("start_us", sa.BigInteger(), nullable=False),
        sa.Column("end_us", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("ticket_id", sa.BigInteger(), nullable=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("released_us", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_doorlog_holds_door", "doorlog_holds", ["door_id", "start_us"])
    op.create_table(
        "ticket_doors",
        sa.Column("ticket_id", sa.BigInteger(), sa.ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("door_id", sa.String(64), primary_key=True),
        sa.Column("id_lookup", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ticket_doors")
    op.drop_index("ix_doorlog_holds_door", table_name="doorlog_holds")
    op.drop_table("doorlog_holds")
    op.drop_table("doorlog_doors")
    op.drop_index("ix_doorlog_files_received", table_name="doorlog_files")
    op.drop_index("ix_doorlog_files_sha", table_name="doorlog_files")
    op.drop_table("doorlog_files")
    op.drop_index("ix_doorlog_entries_key", table_name="doorlog_entries")
    op.drop_index("ix_doorlog_entries_door", table_name="doorlog_entries")
    op.drop_index("uq_doorlog_entries_who", table_name="doorlog_entries")
    op.drop_table("doorlog_entries")
    op.drop_table("doorlog_keys")
