"""Experiment tracking: the :class:`Tracker` interface, MLflow and no-op implementations.

Only the tracker's writer process (:mod:`tuner.tracking.mlflow_process`, through
:mod:`tuner.tracking.mlflow_writer`) imports mlflow, so importing this package is cheap;
:mod:`tuner.tracking.probe` and :mod:`tuner.tracking.lookup` read stores without it.
"""

from __future__ import annotations

from tuner.tracking.base import NullTracker, Tracker
from tuner.tracking.mlflow_tracker import MlflowTracker

__all__ = ["MlflowTracker", "NullTracker", "Tracker"]
