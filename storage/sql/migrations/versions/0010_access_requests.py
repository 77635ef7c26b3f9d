"""Reserved for issue 17: data-subject access requests.

Revision ID: 0010
Revises: 0009

Empty until that work lands: the revision numbers are handed out in advance so that work
on several issues at once keeps one linear history.
"""

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
