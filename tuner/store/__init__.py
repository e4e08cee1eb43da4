"""The tuner's persistent store (SQLAlchemy)."""

from tuner.store.store import (
    Condition,
    ExperimentRecord,
    Store,
    StoreError,
    TrialRecord,
    create_store_engine,
)

__all__ = [
    "Condition",
    "ExperimentRecord",
    "Store",
    "StoreError",
    "TrialRecord",
    "create_store_engine",
]
