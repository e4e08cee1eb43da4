"""KPA-like autoscaler (Knative semantics): stable/panic windows, target per replica,
rate limits, min/max bounds and scale-to-zero after a grace period."""

from __future__ import annotations

from serving.autoscaler.config import (
    DEFAULT_CONCURRENCY_TARGET,
    AutoscalerConfig,
    concurrency_target,
    initial_scale,
)
from serving.autoscaler.decision import Observation, ScaleDecision, ScalerState, decide
from serving.autoscaler.kpa import Autoscaler, Clock
from serving.autoscaler.window import MetricWindow

__all__ = [
    "DEFAULT_CONCURRENCY_TARGET",
    "Autoscaler",
    "AutoscalerConfig",
    "Clock",
    "MetricWindow",
    "Observation",
    "ScaleDecision",
    "ScalerState",
    "concurrency_target",
    "decide",
    "initial_scale",
]
