"""One revision's autoscaler: metric windows + the pure decision + an injectable clock."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace

from serving.autoscaler.config import AutoscalerConfig
from serving.autoscaler.decision import Observation, ScaleDecision, ScalerState, decide
from serving.autoscaler.window import MetricWindow

Clock = Callable[[], float]


class Autoscaler:
    """Collects per-tick metric samples and answers the desired replica count.

    Not thread-safe: the router's event loop is the only caller. ``clock`` is any
    monotonic seconds function (tests pass a fake one and never sleep).
    """

    def __init__(self, config: AutoscalerConfig, clock: Clock = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._window = MetricWindow(horizon=config.stable_window)
        self._state = ScalerState()
        self._started_at = clock()
        self._last_traffic: float | None = None
        self.last_decision: ScaleDecision | None = None
        self._recent: deque[tuple[float, int]] = deque()

    def record(self, value: float, now: float | None = None) -> None:
        """Add one sample (mean in-flight requests, or requests/s, over the last tick)."""
        t = self._clock() if now is None else now
        self._window.record(t, value)
        if value > 0:
            self._last_traffic = t

    def scale(self, ready: int, now: float | None = None) -> ScaleDecision:
        """Decide the desired count given ``ready`` replicas at ``now``."""
        t = self._clock() if now is None else now
        cfg = self.config
        stable = self._window.average(t, cfg.stable_window) or 0.0
        panic = self._window.average(t, cfg.panic_window) or 0.0
        obs = Observation(
            now=t,
            stable=stable,
            panic=panic,
            ready=ready,
            last_traffic=self._last_traffic,
            started_at=self._started_at,
        )
        decision, self._state = decide(cfg, self._state, obs)
        if cfg.scale_down_delay > 0:
            decision = self._delay_scale_down(t, decision)
        self.last_decision = decision
        return decision

    def _delay_scale_down(self, now: float, decision: ScaleDecision) -> ScaleDecision:
        """Apply the max desired count of the trailing ``scale_down_delay`` window."""
        self._recent.append((now, decision.desired))
        cutoff = now - self.config.scale_down_delay
        while self._recent and self._recent[0][0] <= cutoff:
            self._recent.popleft()
        held = max(n for _, n in self._recent)
        if held == decision.desired:
            return decision
        return replace(
            decision,
            desired=held,
            reason=f"{decision.reason}; scale-down delayed ({decision.desired} wanted)",
        )
