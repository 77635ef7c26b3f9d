"""Reserved for issue 18: the S3 archive tier (where each segment lives, the upload queue).

Revision ID: 0006
Revises: 0005

Empty until that work lands: the revision numbers are handed out in advance so that work
on several issues at once keeps one linear history.
"""

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
