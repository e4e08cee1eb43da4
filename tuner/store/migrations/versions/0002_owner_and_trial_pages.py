"""Experiments record who runs them; trial pages by creation order and by objective.

``owner``: NULL for an experiment run by the process that created it (``experiment
run``, ``tune()``), ``"server"`` for one the control plane owns (it resumes those after
a restart). The two indexes serve the API's trial pages (``seq`` order, ``objective``
sort) without sorting every trial of a large experiment.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tuner_experiments") as batch:
        batch.add_column(sa.Column("owner", sa.String(32), nullable=True))
    op.create_index("ix_trial_experiment_seq", "tuner_trials", ["experiment_uid", "seq"])
    op.create_index(
        "ix_trial_experiment_objective", "tuner_trials", ["experiment_uid", "objective_value"]
    )


def downgrade() -> None:
    op.drop_index("ix_trial_experiment_objective", table_name="tuner_trials")
    op.drop_index("ix_trial_experiment_seq", table_name="tuner_trials")
    with op.batch_alter_table("tuner_experiments") as batch:
        batch.drop_column("owner")
