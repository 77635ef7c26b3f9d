"""Reserved for issue 17: the door access log and tickets' door scopes.

Revision ID: 0007
Revises: 0006

Empty until that work lands: the revision numbers are handed out in advance so that work
on several issues at once keeps one linear history.
"""

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
