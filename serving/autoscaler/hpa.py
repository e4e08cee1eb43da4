"""The Kubernetes HPA's decision for cpu and memory, as KServe's HPA reconciler sets it up.

What KServe creates for ``scaleMetric: cpu|memory``: a HorizontalPodAutoscaler with one
Resource metric whose target is an average utilization percentage of the container's
request (``scaleTarget``, cpu default 80), ``minReplicas`` at least 1 and the default
behavior. The HPA controller's algorithm, per decision:

- ``desired = ceil(current * currentUtilization / targetUtilization)``, where the
  utilization is the mean over the replicas that reported usage; no change while the
  ratio is within the tolerance (0.1) of 1;
- replicas without a usage sample yet (just started) count as idle when scaling up and
  as at the target when scaling down, so they never cause a move the data does not back;
- scale up at most to ``max(2 x current, current + 4)`` at a time (the default scale-up
  policies, 100% or 4 pods), no stabilization;
- scale down only to the highest count recommended over the stabilization window
  (default 300 s), so a short lull does not remove replicas;
- clamped to ``[minReplicas, maxReplicas]`` (0 max: unbounded).

Knative's HPA class with a memory target (``autoscaling.knative.dev/target``) sets an
average value in MiB instead of a utilization: ``target_type="AverageValue"``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from serving.autoscaler.decision import ScaleDecision

Clock = Callable[[], float]
MIB = 2**20


@dataclass(frozen=True)
class ResourceUsage:
    """One replica's usage: cores busy (averaged since its previous sample) and bytes
    resident."""

    cpu: float
    memory: float


@dataclass(frozen=True)
class HorizontalConfig:
    """The HPA's knobs for one revision; ``resource_request`` is cores (cpu) or bytes."""

    metric: Literal["cpu", "memory"] = "cpu"
    target: float = 80.0
    target_type: Literal["Utilization", "AverageValue"] = "Utilization"
    resource_request: float = 1.0
    min_replicas: int = 1
    max_replicas: int = 0
    initial_replicas: int = 1
    tolerance: float = 0.1
    scale_down_stabilization: float = 300.0
    tick_interval: float = 2.0

    def __post_init__(self) -> None:
        if self.target <= 0 or self.resource_request <= 0:
            raise ValueError("target and resource request must be > 0")
        if self.min_replicas < 1:
            raise ValueError("the HPA keeps at least one replica")
        if self.max_replicas and self.min_replicas > self.max_replicas:
            raise ValueError("minReplicas > maxReplicas")

    def value(self, usage: ResourceUsage) -> float:
        """``usage`` in the target's unit: percent of the request, or MiB."""
        used = usage.cpu if self.metric == "cpu" else usage.memory
        if self.target_type == "AverageValue":
            return used / MIB if self.metric == "memory" else used
        return 100.0 * used / self.resource_request

    def clamp(self, n: int) -> int:
        n = max(n, self.min_replicas)
        return min(n, self.max_replicas) if self.max_replicas else n

    def describe(self) -> str:
        if self.target_type == "AverageValue":
            unit = " MiB" if self.metric == "memory" else " cores"
            return f"{self.metric} {self.target:g}{unit} per replica"
        request = (
            f"{self.resource_request:g} core"
            if self.metric == "cpu"
            else f"{self.resource_request / MIB:g}Mi"
        )
        return f"{self.metric} {self.target:g}% of {request}"


class HorizontalAutoscaler:
    """One revision's HPA. Not thread-safe; ``clock`` is injectable (tests never sleep)."""

    def __init__(self, config: HorizontalConfig, clock: Clock = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._recommendations: deque[tuple[float, int]] = deque()
        self.last_decision: ScaleDecision | None = None

    def scale(
        self, current: int, usages: Sequence[ResourceUsage], now: float | None = None
    ) -> ScaleDecision:
        """The desired count, ``current`` replicas running, ``usages`` from those that
        reported (the others are still starting)."""
        t = self._clock() if now is None else now
        cfg = self.config
        current = max(current, 1)
        values = [cfg.value(u) for u in usages]
        if not values:
            value, raw, reason = 0.0, current, "no usage reported yet"
        else:
            value = sum(values) / len(values)
            raw, reason = self._recommend(current, values)
        # Recommendations of the trailing window (t - stabilization, t], this one included.
        cutoff = t - cfg.scale_down_stabilization
        while self._recommendations and self._recommendations[0][0] <= cutoff:
            self._recommendations.popleft()
        self._recommendations.append((t, raw))
        desired = raw
        if raw < current:
            held = max(n for _, n in self._recommendations)
            if held > raw:
                desired = min(held, current)
                reason += f"; scale-down stabilized ({raw} wanted)"
        desired = min(desired, max(2 * current, current + 4))
        clamped = cfg.clamp(desired)
        if clamped != desired:
            reason += f"; clamped to [{cfg.min_replicas}, {cfg.max_replicas or 'inf'}]"
        decision = ScaleDecision(
            desired=clamped,
            panicking=False,
            stable_value=value,
            panic_value=value,
            stable_desired=raw,
            panic_desired=raw,
            reason=reason,
        )
        self.last_decision = decision
        return decision

    def _recommend(self, current: int, values: list[float]) -> tuple[int, str]:
        cfg = self.config
        n = len(values)
        measured = sum(values) / n / cfg.target
        missing = max(0, current - n)
        unit = "%" if cfg.target_type == "Utilization" else " MiB"
        mean = f"{cfg.metric} {sum(values) / n:.0f}{unit} (target {cfg.target:g}{unit})"
        if abs(measured - 1.0) <= cfg.tolerance:
            return current, f"{mean}: within tolerance"
        ratio = measured
        if missing and measured > 1:
            ratio = sum(values) / ((n + missing) * cfg.target)  # starting ones: idle
        elif missing:
            ratio = (sum(values) + missing * cfg.target) / ((n + missing) * cfg.target)
        if abs(ratio - 1.0) <= cfg.tolerance or (ratio > 1) != (measured > 1):
            return current, f"{mean}: held for the replicas still starting"
        return max(1, math.ceil(ratio * (n + missing))), mean
