"""Initial schema: cameras, day keys, segments, held segment keys, holds, users.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cameras",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("removed_us", sa.BigInteger(), nullable=True),
        sa.Column("retain_days", sa.Integer(), nullable=False),
    )
    op.create_table(
        "day_keys",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("camera_id", sa.String(64), sa.ForeignKey("cameras.id"), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=True),
        sa.Column("master_id", sa.String(16), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("shredded_us", sa.BigInteger(), nullable=True),
        sa.UniqueConstraint("camera_id", "day", name="uq_day_keys_camera_day"),
    )
    op.create_table(
        "segments",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("camera_id", sa.String(64), sa.ForeignKey("cameras.id"), nullable=False),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("key_id", sa.BigInteger(), sa.ForeignKey("day_keys.id"), nullable=False),
        sa.Column("start_us", sa.BigInteger(), nullable=False),
        sa.Column("end_us", sa.BigInteger(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("packets", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(255), nullable=False),
        sa.Column("status", sa.String(10), server_default="sealed", nullable=False),
        sa.Column("recovered", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.create_index("ix_segments_camera_start", "segments", ["camera_id", "start_us"])
    op.create_index("ix_segments_key", "segments", ["key_id"])
    op.create_index("uq_segments_path", "segments", ["path"], unique=True)
    op.create_index(
        "ix_segments_deleting",
        "segments",
        ["status"],
        sqlite_where=sa.text("status = 'deleting'"),
        postgresql_where=sa.text("status = 'deleting'"),
    )
    op.create_table(
        "segment_keys",
        sa.Column("segment_id", sa.BigInteger(), sa.ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("master_id", sa.String(16), nullable=False),
    )
    op.create_table(
        "holds",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("camera_id", sa.String(64), sa.ForeignKey("cameras.id"), nullable=False),
        sa.Column("start_us", sa.BigInteger(), nullable=False),
        sa.Column("end_us", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("ticket_id", sa.BigInteger(), nullable=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("released_us", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_holds_camera", "holds", ["camera_id", "start_us"])
    op.create_table(
        "users",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("must_change_password", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until_us", sa.BigInteger(), nullable=True),
    )


def downgrade() -> None:
    for table in ("users", "holds", "segment_keys", "segments", "day_keys", "cameras"):
        op.drop_table(table)
