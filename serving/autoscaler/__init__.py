"""Autoscalers: KPA-like (Knative semantics: stable/panic windows, target per replica,
rate limits, min/max bounds, scale to zero after a grace period) for concurrency and rps,
and the Kubernetes HPA's algorithm for cpu and memory (as KServe configures it)."""

from __future__ import annotations

from serving.autoscaler.config import (
    DEFAULT_CONCURRENCY_TARGET,
    AutoscalerConfig,
    concurrency_target,
    initial_scale,
)
from serving.autoscaler.decision import Observation, ScaleDecision, ScalerState, decide
from serving.autoscaler.hpa import HorizontalAutoscaler, HorizontalConfig, ResourceUsage
from serving.autoscaler.kpa import Autoscaler, Clock
from serving.autoscaler.window import MetricWindow

__all__ = [
    "DEFAULT_CONCURRENCY_TARGET",
    "Autoscaler",
    "AutoscalerConfig",
    "Clock",
    "HorizontalAutoscaler",
    "HorizontalConfig",
    "MetricWindow",
    "Observation",
    "ResourceUsage",
    "ScaleDecision",
    "ScalerState",
    "concurrency_target",
    "decide",
    "initial_scale",
]
