"""Every package's schema, lower layers first: what ``hyperflow server`` upgrades on start.

Adding a package's tables is one line here (its ``Schema``, with its own migrations).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from hyperflow.store.models import Base
from pipelines.schema import SCHEMA as PIPELINES
from tuner.store.migrate import Schema, upgrade_all
from tuner.store.schema import SCHEMA as TUNER

HYPERFLOW = Schema(
    name="hyperflow",
    script_location=Path(__file__).parent / "migrations",
    version_table="hyperflow_alembic_version",
    metadata=Base.metadata,
    head="0003",
)

SCHEMAS = [
    TUNER,
    PIPELINES,
    HYPERFLOW,
]


def upgrade_store(engine: Engine) -> None:
    upgrade_all(engine, SCHEMAS)
