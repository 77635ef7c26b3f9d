"""Cameras as people read them: display name, place and whether recording is on.

Revision ID: 0009
Revises: 0008

``cameras.name``, ``cameras.place`` and ``cameras.enabled`` mirror the camera's keys in the
configuration of the node that records it (written by ``Appliance.sync_cameras`` at start and on every
reload), so every node's pages, the API and exported manifests show the same name and place for any
camera of the cluster.  The configuration file stays the only place cameras are defined
(docs/design/cameras.md).
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cameras") as batch:
        batch.add_column(sa.Column("name", sa.String(80), nullable=True))
        batch.add_column(sa.Column("place", sa.String(120), nullable=False, server_default=""))
        batch.add_column(sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.text("true")))


def downgrade() -> None:
    with op.batch_alter_table("cameras") as batch:
        batch.drop_column("enabled")
        batch.drop_column("place")
        batch.drop_column("name")
