"""Notifications: the mail outbox, the problems mailed about, and each user's e-mail address and language.

Revision ID: 0008
Revises: 0007

Users get two optional columns (``email``, ``language``); nothing is mailed to a user without an address.
Downgrading drops the outbox (mails not yet sent are lost) and the two columns.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("email", sa.String(254), nullable=True))
        batch.add_column(sa.Column("language", sa.String(8), nullable=True))
    op.create_table(
        "mail_outbox",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("event", sa.String(128), nullable=False),
        sa.Column("user_id", sa.BigInteger(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("recipient", sa.String(254), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("body", sa.String(4000), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("next_attempt_us", sa.BigInteger(), nullable=False),
        sa.Column("sent_us", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.UniqueConstraint("event", "user_id", name="uq_mail_outbox_event_user"),
    )
    op.create_index("ix_mail_outbox_due", "mail_outbox", ["state", "next_attempt_us"])
    op.create_table(
        "notice_problems",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("message", sa.String(500), nullable=False),
        sa.Column("opened_us", sa.BigInteger(), nullable=False),
        sa.Column("cleared_us", sa.BigInteger(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("notice_problems")
    op.drop_index("ix_mail_outbox_due", table_name="mail_outbox")
    op.drop_table("mail_outbox")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("language")
        batch.drop_column("email")
