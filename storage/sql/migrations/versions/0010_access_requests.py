"""Data-subject access requests (GDPR art. 15; docs/design/access-requests.md).

Revision ID: 0010
Revises: 0009

One new table: which tickets answer a request of access, when it was received (the deadline runs from
then) and which package a manager approved for delivery after reviewing it.  Downgrading drops it: the
tickets stay, as ordinary tickets.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_requests",
        sa.Column("ticket_id", sa.BigInteger(), sa.ForeignKey("tickets.id"), primary_key=True, autoincrement=False),
        sa.Column("received_us", sa.BigInteger(), nullable=False),
        sa.Column("released_package", sa.String(32), nullable=True),
        sa.Column("released_by", sa.BigInteger(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("released_us", sa.BigInteger(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("access_requests")
