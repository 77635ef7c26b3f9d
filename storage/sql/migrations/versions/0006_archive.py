"""The S3 archive tier: where each segment lives and the upload queue (docs/design/archive.md).

Revision ID: 0006
Revises: 0005

One table, ``archive_objects``: a row per segment of a node with ``[archive]`` (queued, archived,
or expired and still to be deleted from the bucket).  Downgrading drops it: the bucket's objects
stay, unknown to the index (``vms check`` on a later upgrade names them).
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "archive_objects",
        sa.Column("segment_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("object_key", sa.String(512), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("local", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("held", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_try_us", sa.BigInteger(), nullable=False),
        sa.Column("queued_us", sa.BigInteger(), nullable=False),
        sa.Column("archived_us", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
    )
    op.create_index("ix_archive_objects_node_state", "archive_objects", ["node_id", "state", "next_try_us"])


def downgrade() -> None:
    op.drop_index("ix_archive_objects_node_state", table_name="archive_objects")
    op.drop_table("archive_objects")
