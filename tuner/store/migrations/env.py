"""alembic environment of the tuner's tables (see tuner.store.migrate)."""

from tuner.store.migrate import run_env
from tuner.store.models import Base
from tuner.store.schema import VERSION_TABLE

run_env(Base.metadata, VERSION_TABLE)
