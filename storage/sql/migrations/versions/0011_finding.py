"""Reserved for issue 15: finding the incident (activity, searches).

Revision ID: 0011
Revises: 0010

Empty until that work lands: the revision numbers are handed out in advance so that work
on several issues at once keeps one linear history.
"""

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
