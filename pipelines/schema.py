"""The pipelines' schema: their tables (``models``) and their migrations (``migrations/``)."""

from __future__ import annotations

from pathlib import Path

from pipelines.models import Base
from tuner.store.migrate import Schema

VERSION_TABLE = "pipelines_alembic_version"

SCHEMA = Schema(
    name="pipelines",
    script_location=Path(__file__).parent / "migrations",
    version_table=VERSION_TABLE,
    metadata=Base.metadata,
    head="0001",
    # Stores of the releases before these migrations got the tables from create_all.
    baseline="0001",
    baseline_table="pipeline_runs",
)
