"""alembic environment of hyperflow's own tables (see tuner.store.migrate)."""

from hyperflow.store.models import Base
from tuner.store.migrate import run_env

run_env(Base.metadata, "hyperflow_alembic_version")
