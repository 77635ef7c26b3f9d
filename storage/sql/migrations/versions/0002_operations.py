"""Camera state, gaps, deletion records, service state.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "camera_state",
        sa.Column("camera_id", sa.String(64), sa.ForeignKey("cameras.id"), primary_key=True),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("online", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("last_packet_us", sa.BigInteger(), nullable=True),
        sa.Column("packets", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("bytes_received", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("fps", sa.Float(), server_default="0", nullable=False),
        sa.Column("bitrate_bps", sa.Float(), server_default="0", nullable=False),
        sa.Column("reconnects", sa.Integer(), server_default="0", nullable=False),
        sa.Column("gap_since_us", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "gaps",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("camera_id", sa.String(64), sa.ForeignKey("cameras.id"), nullable=False),
        sa.Column("start_us", sa.BigInteger(), nullable=False),
        sa.Column("end_us", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(200), nullable=False),
    )
    op.create_index("ix_gaps_camera_start", "gaps", ["camera_id", "start_us"])
    op.create_table(
        "deletion_records",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("swept_us", sa.BigInteger(), nullable=False),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("start_us", sa.BigInteger(), nullable=False),
        sa.Column("end_us", sa.BigInteger(), nullable=False),
        sa.Column("segments", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
    )
    op.create_index("ix_deletion_records_swept", "deletion_records", ["swept_us"])
    op.create_table(
        "service_state",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("value", sa.String(2000), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    for table in ("service_state", "deletion_records", "gaps", "camera_state"):
        op.drop_table(table)
