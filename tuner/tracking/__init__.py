"""Experiment tracking: the :class:`Tracker` interface, MLflow and no-op implementations.

Only the tracker's writer process (:mod:`tuner.tracking.mlflow_process`, through
:mod:`tuner.tracking.mlflow_writer`) imports mlflow, so importing this package is cheap;
:mod:`tuner.tracking.probe` and :mod:`tuner.tracking.lookup` read stores without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tuner.tracking.base import NullTracker, Tracker
    from tuner.tracking.mlflow_tracker import MlflowTracker

__all__ = ["MlflowTracker", "NullTracker", "Tracker"]


def __getattr__(name: str) -> Any:
    # Lazily: the writer process (python -m tuner.tracking.mlflow_process) imports this
    # package first and must not load the spec's models that the tracker classes use.
    if name in ("NullTracker", "Tracker"):
        from tuner.tracking import base

        return getattr(base, name)
    if name == "MlflowTracker":
        from tuner.tracking.mlflow_tracker import MlflowTracker

        return MlflowTracker
    raise AttributeError(f"module 'tuner.tracking' has no attribute {name!r}")
