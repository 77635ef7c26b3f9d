"""Camera state: why a camera's frame order cannot be kept (B-frames reordered deeper than learned).

Revision ID: 0004
Revises: 0003

``camera_state.stream_problem`` is set by the recorder while a camera's stream
cannot be stamped correctly and cleared when a new connection stamps cleanly;
the camera watch raises an alarm from it and ``vms doctor`` names the camera.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("camera_state") as batch:
        batch.add_column(sa.Column("stream_problem", sa.String(500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("camera_state") as batch:
        batch.drop_column("stream_problem")
