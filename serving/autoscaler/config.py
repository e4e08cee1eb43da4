"""KPA knobs for one revision, with Knative's defaults.

The names follow Knative's ``autoscaling.knative.dev/*`` annotations; the values are
already normalised (seconds, fractions of 1.0 are written as percentages as Knative does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

ScaleMetric = Literal["concurrency", "rps"]

#: Knative's per-replica concurrency target when neither scaleTarget nor
#: containerConcurrency says otherwise (``container-concurrency-target-default``).
DEFAULT_CONCURRENCY_TARGET = 100.0
#: Knative's rps target default (``requests-per-second-target-default``).
DEFAULT_RPS_TARGET = 200.0


@dataclass(frozen=True)
class AutoscalerConfig:
    """Everything the decision function needs besides metrics and the ready count.

    ``target`` is per replica, in the unit of ``metric`` (in-flight requests or requests
    per second); the autoscaler aims at ``target * target_utilization_percentage / 100``.
    ``max_replicas == 0`` means unbounded, as in Knative. ``scale_down_delay`` holds a
    scale-down until the lower count has been wanted for that long (Knative's
    ``scale-down-delay``: the max over that trailing window is applied).
    """

    metric: ScaleMetric = "concurrency"
    target: float = DEFAULT_CONCURRENCY_TARGET
    target_utilization_percentage: float = 70.0
    stable_window: float = 60.0
    panic_window_percentage: float = 10.0
    panic_threshold_percentage: float = 200.0
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0
    min_replicas: int = 1
    max_replicas: int = 0
    initial_replicas: int = 1
    scale_to_zero_grace: float = 30.0
    scale_down_delay: float = 0.0
    tick_interval: float = 2.0

    def __post_init__(self) -> None:
        if self.target <= 0:
            raise ValueError("target must be > 0")
        if not 0 < self.target_utilization_percentage <= 100:
            raise ValueError("target utilization must be in (0, 100]")
        if self.stable_window <= 0 or self.tick_interval <= 0:
            raise ValueError("stable window and tick interval must be > 0")
        if not 0 < self.panic_window_percentage <= 100:
            raise ValueError("panic window percentage must be in (0, 100]")
        if self.panic_threshold_percentage <= 0:
            raise ValueError("panic threshold must be > 0")
        if self.max_scale_up_rate <= 1 or self.max_scale_down_rate <= 1:
            raise ValueError("max scale up/down rates must be > 1")
        if self.scale_down_delay < 0:
            raise ValueError("scale down delay must be >= 0")
        if self.min_replicas < 0 or self.max_replicas < 0:
            raise ValueError("replica bounds must be >= 0")
        if self.max_replicas and self.min_replicas > self.max_replicas:
            raise ValueError("minReplicas > maxReplicas")

    @property
    def target_value(self) -> float:
        """The per-replica value the autoscaler steers towards."""
        return self.target * self.target_utilization_percentage / 100.0

    @property
    def panic_window(self) -> float:
        return self.stable_window * self.panic_window_percentage / 100.0

    @property
    def panic_threshold(self) -> float:
        return self.panic_threshold_percentage / 100.0

    def clamp(self, n: int) -> int:
        """Bound ``n`` by [min_replicas, max_replicas] (0 max = unbounded)."""
        n = max(n, self.min_replicas)
        if self.max_replicas:
            n = min(n, self.max_replicas)
        return n

    def with_(self, **changes: object) -> AutoscalerConfig:
        return replace(self, **changes)  # type: ignore[arg-type]


def concurrency_target(scale_target: float | None, container_concurrency: int | None) -> float:
    """Knative's choice of the concurrency target.

    An explicit target wins; else a hard ``containerConcurrency`` limit is the target
    (Knative uses the limit when no soft target is set); else the default 100. A soft
    target above the hard limit is capped at the limit.
    """
    limit = container_concurrency or 0
    if scale_target and scale_target > 0:
        return float(min(scale_target, limit)) if limit else float(scale_target)
    return float(limit) if limit else DEFAULT_CONCURRENCY_TARGET


def initial_scale(min_replicas: int) -> int:
    """Knative starts a revision with ``initial-scale`` 1 (at least ``min_replicas``)."""
    return max(1, min_replicas)


def ceil_div(value: float, target: float) -> int:
    return math.ceil(value / target) if value > 0 else 0
