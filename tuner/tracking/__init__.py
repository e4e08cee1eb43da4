"""Experiment tracking: the :class:`Tracker` interface, MLflow and no-op implementations.

Only :mod:`tuner.tracking.mlflow_writer` imports mlflow, and only from the tracker's
background thread, so importing this package is cheap.
"""

from __future__ import annotations

from tuner.tracking.base import NullTracker, Tracker
from tuner.tracking.mlflow_tracker import MlflowTracker

__all__ = ["MlflowTracker", "NullTracker", "Tracker"]
