"""Inference services: desired state, running revisions, replica processes.

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
    op.create_table(
        "hyperflow_inference_services",
        sa.Column("uid", sa.String(36), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("base_dir", sa.Text(), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("latest_revision", sa.Integer(), nullable=False),
        sa.Column("rolled_out_revision", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("uid"),
        sa.UniqueConstraint("namespace", "name", name="uq_isvc_namespace_name"),
    )
    op.create_table(
        "hyperflow_isvc_revisions",
        sa.Column("service_uid", sa.String(36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_uid"], ["hyperflow_inference_services.uid"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("service_uid", "number"),
    )
    op.create_table(
        "hyperflow_isvc_replicas",
        sa.Column("pid", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("create_time", sa.Float(), nullable=False),
        sa.Column("service_uid", sa.String(36), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("pid"),
    )
    with op.batch_alter_table("hyperflow_isvc_replicas") as batch:
        batch.create_index("ix_hyperflow_isvc_replicas_service_uid", ["service_uid"])


def downgrade() -> None:
    op.drop_table("hyperflow_isvc_replicas")
    op.drop_table("hyperflow_isvc_revisions")
    op.drop_table("hyperflow_inference_services")
