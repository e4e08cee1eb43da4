"""alembic environment of the pipelines' tables (see tuner.store.migrate)."""

from pipelines.models import Base
from pipelines.schema import VERSION_TABLE
from tuner.store.migrate import run_env

run_env(Base.metadata, VERSION_TABLE)
