"""The KPA decision: a pure function of knobs, state, observed metrics and the clock.

It follows Knative's ``pkg/autoscaler/scaling/autoscaler.go``:

- desired = ceil(observed / (target x utilization)) for the stable and the panic window,
  each kept within the rate limits ``[floor(ready / maxScaleDownRate),
  ceil(ready x maxScaleUpRate)]`` (``ready`` counted as at least 1);
- panic starts when panic-desired / ready >= panic threshold, is extended while that
  holds, and ends only after a full stable window without it; in panic the count never
  goes down (the max seen during the panic is kept);
- scale to zero (local rule in place of Knative's SKS/activator hand-over): only when
  minReplicas is 0, a whole stable window saw no traffic (counted from the last traffic,
  or from the revision's start) and the scale-to-zero grace (Knative's pod retention
  period) has passed since: ``stable window + grace`` after the last request;
- finally clamped to ``[minReplicas, maxReplicas]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from serving.autoscaler.config import AutoscalerConfig, ceil_div


@dataclass(frozen=True)
class ScalerState:
    """What the decision carries from one tick to the next."""

    panic_since: float | None = None
    max_panic_replicas: int = 0


@dataclass(frozen=True)
class Observation:
    """Metric averages at ``now``; ``last_traffic`` is when a non-zero sample was last seen."""

    now: float
    stable: float
    panic: float
    ready: int
    last_traffic: float | None
    started_at: float


@dataclass(frozen=True)
class ScaleDecision:
    desired: int
    panicking: bool
    stable_value: float
    panic_value: float
    stable_desired: int
    panic_desired: int
    reason: str


def decide(
    cfg: AutoscalerConfig, state: ScalerState, obs: Observation
) -> tuple[ScaleDecision, ScalerState]:
    """Desired replica count for this tick and the state for the next one."""
    ready = max(1, obs.ready)
    max_up = math.ceil(cfg.max_scale_up_rate * ready)
    max_down = math.floor(ready / cfg.max_scale_down_rate)

    dspc = ceil_div(obs.stable, cfg.target_value)
    dppc = ceil_div(obs.panic, cfg.target_value)
    stable_desired = min(max(dspc, max_down), max_up)
    panic_desired = min(max(dppc, max_down), max_up)

    over_threshold = dppc / ready >= cfg.panic_threshold
    panic_since = state.panic_since
    max_panic = state.max_panic_replicas
    if over_threshold:
        # Entering panic, or extending it while the surge lasts.
        panic_since = obs.now
    elif panic_since is not None and panic_since + cfg.stable_window < obs.now:
        # The surge has made its way into the stable metric: stop panicking.
        panic_since = None
        max_panic = 0

    desired = stable_desired
    reason = "stable"
    if panic_since is not None:
        desired = max(stable_desired, panic_desired)
        # Never scale down in panic: keep the largest count the panic asked for.
        max_panic = max(max_panic, desired)
        desired = max_panic
        reason = "panic"

    if desired == 0:
        # As Knative: zero is decided once a whole stable window saw no traffic (since the
        # last request, or since the revision started: a young window is no evidence),
        # and the last replica is kept the retention period (grace) after that decision.
        since = obs.last_traffic if obs.last_traffic is not None else obs.started_at
        idle_for = obs.now - since - cfg.stable_window
        if cfg.min_replicas > 0 or idle_for < cfg.scale_to_zero_grace:
            desired = 1
            reason = "idle, within scale-to-zero grace" if cfg.min_replicas == 0 else reason
        else:
            reason = "scaled to zero after grace"

    clamped = cfg.clamp(desired)
    if clamped != desired:
        reason = f"{reason}; clamped to [{cfg.min_replicas}, {cfg.max_replicas or 'inf'}]"
    decision = ScaleDecision(
        desired=clamped,
        panicking=panic_since is not None,
        stable_value=obs.stable,
        panic_value=obs.panic,
        stable_desired=stable_desired,
        panic_desired=panic_desired,
        reason=reason,
    )
    return decision, ScalerState(panic_since=panic_since, max_panic_replicas=max_panic)
