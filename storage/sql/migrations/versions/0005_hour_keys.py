"""Hour keys: one data key per camera per UTC hour, wrapped by its day key (docs/design/keys.md).

Revision ID: 0005
Revises: 0004

Existing rows are untouched: segments written before this revision (format version 1)
keep deriving their keys from their day key, which the janitor shreds as before; new
segments (format version 2) derive theirs from the hour key of their start, so a copy
is unreadable within an hour of its retention's end.  Downgrading drops the hour keys,
which destroys every version-2 segment (they can no longer be decrypted).
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hour_keys",
        sa.Column("day_key_id", sa.BigInteger(), sa.ForeignKey("day_keys.id"), primary_key=True),
        sa.Column("hour", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("start_us", sa.BigInteger(), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("shredded_us", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_hour_keys_live", "hour_keys", ["camera_id", "start_us"],
                    sqlite_where=sa.text("wrapped IS NOT NULL"), postgresql_where=sa.text("wrapped IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_hour_keys_live", table_name="hour_keys")
    op.drop_table("hour_keys")
