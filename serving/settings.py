"""Where hyperflow keeps its files and which MLflow store it uses: one definition for all.

Serving is the lowest layer, so the tuner (whose runs serving loads with ``runs:/...``)
resolves both through these functions too: a model logged by a tuning run is found by a
replica with no extra settings.
"""

from __future__ import annotations

import os
from pathlib import Path


def default_home() -> Path:
    return Path.home() / ".hyperflow"


def hyperflow_home() -> Path:
    """``$HYPERFLOW_HOME``, default ``~/.hyperflow``."""
    return Path(os.environ.get("HYPERFLOW_HOME") or default_home())


def mlflow_tracking_uri(home: Path | None = None, configured: str | None = None) -> str:
    """``$MLFLOW_TRACKING_URI``, then ``configured`` (default
    ``$HYPERFLOW_MLFLOW_TRACKING_URI``), then the SQLite store in ``home``."""
    if configured is None:
        configured = os.environ.get("HYPERFLOW_MLFLOW_TRACKING_URI")
    return (
        os.environ.get("MLFLOW_TRACKING_URI")
        or configured
        or f"sqlite:///{(home or hyperflow_home()) / 'mlflow.db'}"
    )
