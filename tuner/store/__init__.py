"""The tuner's persistent store (SQLAlchemy)."""

from tuner.store.store import (
    Condition,
    ExperimentExists,
    ExperimentRecord,
    Store,
    StoreError,
    TrialRecord,
    create_store_engine,
)

__all__ = [
    "Condition",
    "ExperimentExists",
    "ExperimentRecord",
    "Store",
    "StoreError",
    "TrialRecord",
    "create_store_engine",
]
