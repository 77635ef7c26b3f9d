"""Reserved for issue 16: cameras edited in the web UI (names, places, settings).

Revision ID: 0009
Revises: 0008

Empty until that work lands: the revision numbers are handed out in advance so that work
on several issues at once keeps one linear history.
"""

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
