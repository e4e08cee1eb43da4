"""The tuner's persistent store (SQLAlchemy), and its records.

The records import nothing heavy; :class:`Store` (SQLAlchemy) loads when first used, so
that read-only code importing a record type stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuner.store.records import Condition, ExperimentRecord, TrialRecord

if TYPE_CHECKING:
    from tuner.store.engine import create_store_engine
    from tuner.store.store import ExperimentExists, Store, StoreError

_LAZY = ("ExperimentExists", "Store", "StoreError")


def __getattr__(name: str) -> Any:
    if name == "create_store_engine":  # without the ORM models (the pipeline store's way in)
        from tuner.store import engine

        return engine.create_store_engine
    if name in _LAZY:
        from tuner.store import store

        return getattr(store, name)
    raise AttributeError(f"module 'tuner.store' has no attribute {name!r}")


__all__ = [
    "Condition",
    "ExperimentExists",
    "ExperimentRecord",
    "Store",
    "StoreError",
    "TrialRecord",
    "create_store_engine",
]
