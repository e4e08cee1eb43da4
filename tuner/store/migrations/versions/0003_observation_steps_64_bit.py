"""Observation steps are 64-bit on every database.

The push API accepts any 64-bit step, which SQLite's INTEGER holds and PostgreSQL's
(32-bit) does not: the column becomes BIGINT there. SQLite needs no change (and a batch
rebuild of a large observations table would only cost time).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.alter_column(
        "tuner_observations",
        "step",
        type_=sa.BigInteger(),
        existing_type=sa.Integer(),
        existing_nullable=True,
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.alter_column(
        "tuner_observations",
        "step",
        type_=sa.Integer(),
        existing_type=sa.BigInteger(),
        existing_nullable=True,
    )
