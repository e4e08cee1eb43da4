"""Protocol-neutral data plane: models, readiness, V1/V2 inference, batching, metrics."""

from __future__ import annotations

from serving.dataplane.batcher import Batcher
from serving.dataplane.metrics import Metrics
from serving.dataplane.plane import DataPlane
from serving.dataplane.runner import PredictRunner

__all__ = ["Batcher", "DataPlane", "Metrics", "PredictRunner"]
