"""Finding the incident: each segment's activity record (storage/format/activity.py).

Revision ID: 0011
Revises: 0010

One row per segment that has one: its per-second activity levels, encrypted under a key derived from
the segment's hour key (so destroyed with it), removed with the segment.  Segments recorded before this
revision have no row; their activity shows as unknown.  Downgrading drops the records (the footage
itself is untouched).
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "segment_activity",
        sa.Column("segment_id", sa.BigInteger(), sa.ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("record", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("segment_activity")
