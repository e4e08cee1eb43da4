"""An experiment's claim records its controller's host and heartbeat.

Two server replicas on different hosts share one PostgreSQL store: a controller pid from
another host means nothing in this host's process table. ``controller_host`` says where
the pid lives; ``controller_heartbeat`` (renewed by the running controller) says how
long ago it was alive there. Rows claimed before (no host) are checked as before.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tuner_experiments") as batch:
        batch.add_column(sa.Column("controller_host", sa.String(255), nullable=True))
        batch.add_column(sa.Column("controller_heartbeat", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tuner_experiments") as batch:
        batch.drop_column("controller_heartbeat")
        batch.drop_column("controller_host")
