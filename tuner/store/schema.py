"""The tuner's schema: its tables (``models``) and their migrations (``migrations/``)."""

from __future__ import annotations

from pathlib import Path

from tuner.store.migrate import Schema
from tuner.store.models import Base

VERSION_TABLE = "tuner_alembic_version"

SCHEMA = Schema(
    name="tuner",
    script_location=Path(__file__).parent / "migrations",
    version_table=VERSION_TABLE,
    metadata=Base.metadata,
    head="0004",
    baseline="0001",
    baseline_table="tuner_experiments",
)
