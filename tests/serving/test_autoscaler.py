"""KPA decisions on synthetic metric series with a fake clock (no sleeping)."""

from __future__ import annotations

import pytest

from serving.autoscaler import (
    Autoscaler,
    AutoscalerConfig,
    Observation,
    ScalerState,
    concurrency_target,
    decide,
)


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def drive(
    scaler: Autoscaler, clock: FakeClock, series: list[float], ready: int | None = None
) -> list[int]:
    """Feed one sample per second; the 'cluster' follows the decision instantly."""
    out: list[int] = []
    current = ready if ready is not None else 1
    for value in series:
        clock.t += 1.0
        scaler.record(value)
        current = scaler.scale(current).desired
        out.append(current)
    return out


def make(**kw: object) -> tuple[Autoscaler, FakeClock]:
    clock = FakeClock()
    cfg = AutoscalerConfig(**{"target": 10.0, "stable_window": 60.0, **kw})  # type: ignore[arg-type]
    return Autoscaler(cfg, clock=clock), clock


def test_defaults_match_knative() -> None:
    cfg = AutoscalerConfig()
    assert cfg.target == 100.0
    assert cfg.target_value == pytest.approx(70.0)
    assert cfg.panic_window == pytest.approx(6.0)
    assert cfg.panic_threshold == pytest.approx(2.0)
    assert (cfg.max_scale_up_rate, cfg.max_scale_down_rate) == (1000.0, 2.0)
    assert cfg.scale_to_zero_grace == 30.0


def test_concurrency_target_choice() -> None:
    assert concurrency_target(None, None) == 100.0
    assert concurrency_target(None, 8) == 8.0
    assert concurrency_target(5, 8) == 5.0
    assert concurrency_target(20, 8) == 8.0


def test_steady_load_gives_ceil_of_observed_over_target_times_utilization() -> None:
    scaler, clock = make()
    # 21 in flight / (10 * 0.7) = 3 replicas, reached gradually via the stable average.
    out = drive(scaler, clock, [21.0] * 70, ready=3)
    assert out[-1] == 3


def test_ramp_up_scales_up_monotonically() -> None:
    scaler, clock = make(panic_threshold_percentage=1000.0)  # stay out of panic
    out = drive(scaler, clock, [float(i) for i in range(0, 60)])
    assert out == sorted(out)
    assert out[-1] >= 5  # mean of 0..59 over 60 s is 29.5 -> ceil(29.5 / 7) = 5


def test_spike_enters_panic_and_never_scales_down_in_panic() -> None:
    scaler, clock = make()
    drive(scaler, clock, [5.0] * 60)  # 1 replica, quiet
    assert scaler.last_decision is not None and not scaler.last_decision.panicking
    out = drive(scaler, clock, [70.0] * 3)
    d = scaler.last_decision
    assert d is not None and d.panicking
    # The panic window (6 s) sees the spike quickly: 70 / 7 -> 10 replicas.
    assert out[-1] >= 6
    peak = max(out)
    # The spike stops: in panic the count must not drop.
    out2 = drive(scaler, clock, [0.0] * 30, ready=peak)
    assert min(out2) == peak
    assert scaler.last_decision is not None and scaler.last_decision.panicking


def test_panic_ends_after_stable_window_without_condition_then_scales_down() -> None:
    scaler, clock = make()
    drive(scaler, clock, [70.0] * 5)
    assert scaler.last_decision is not None and scaler.last_decision.panicking
    out = drive(scaler, clock, [7.0] * 200, ready=10)
    assert scaler.last_decision is not None and not scaler.last_decision.panicking
    assert out[-1] == 1


def test_scale_down_is_rate_limited_by_half() -> None:
    cfg = AutoscalerConfig(target=10.0, min_replicas=1)
    obs = Observation(now=10.0, stable=0.0, panic=0.0, ready=8, last_traffic=9.0, started_at=0)
    d, _ = decide(cfg, ScalerState(), obs)
    assert d.desired == 4  # floor(8 / 2)


def test_scale_up_rate_limit() -> None:
    cfg = AutoscalerConfig(target=1.0, target_utilization_percentage=100.0, max_scale_up_rate=2.0)
    obs = Observation(now=10.0, stable=50.0, panic=50.0, ready=3, last_traffic=9.0, started_at=0)
    d, _ = decide(cfg, ScalerState(), obs)
    assert d.desired == 6  # ceil(2 * 3)


def test_scale_to_zero_only_after_grace_when_min_is_zero() -> None:
    scaler, clock = make(min_replicas=0, stable_window=10.0, scale_to_zero_grace=30.0)
    drive(scaler, clock, [3.0] * 10)
    out = drive(scaler, clock, [0.0] * 50)
    # As Knative: zero is decided once the 10 s stable window saw no traffic, and the
    # grace (pod retention) keeps the last replica 30 s after that: 40 s idle.
    assert out[:39] == [1] * 39
    assert out[-1] == 0
    first_zero = out.index(0)
    assert 39 <= first_zero <= 40
    # Traffic again (e.g. the activator's held requests) -> back to 1 immediately.
    assert drive(scaler, clock, [2.0], ready=0) == [1]


def test_never_zero_when_min_replicas_positive() -> None:
    scaler, clock = make(min_replicas=2)
    out = drive(scaler, clock, [0.0] * 200, ready=2)
    assert set(out) == {2}


def test_fresh_revision_with_min_zero_starts_at_one_then_scales_to_zero() -> None:
    scaler, clock = make(min_replicas=0, stable_window=4.0, scale_to_zero_grace=5.0)
    out = drive(scaler, clock, [0.0] * 12)
    # A young window is no evidence of idleness: a whole window, then the grace (it was
    # scaled away after the grace alone).
    assert out[:8] == [1] * 8 and out[-1] == 0


def test_bounds_clamp_to_max_replicas() -> None:
    scaler, clock = make(max_replicas=3)
    out = drive(scaler, clock, [500.0] * 20)
    assert max(out) == 3 and out[-1] == 3


def test_rps_metric_uses_same_math() -> None:
    scaler, clock = make(metric="rps", target=100.0, target_utilization_percentage=100.0)
    out = drive(scaler, clock, [250.0] * 70, ready=3)
    assert out[-1] == 3


def test_scale_down_delay_holds_the_higher_count() -> None:
    scaler, clock = make(stable_window=6.0, scale_down_delay=10.0, min_replicas=1)
    drive(scaler, clock, [35.0] * 6, ready=5)
    out = drive(scaler, clock, [0.0] * 30, ready=5)
    high = max(out[:5])
    # Without the delay the count halves per tick once the window drains; with it, the
    # count wanted 10 s ago still applies.
    first_drop = next(i for i, n in enumerate(out) if n < high)
    assert first_drop >= 9
    assert out[-1] == 1
    assert scaler.last_decision is not None


@pytest.mark.parametrize(
    "bad",
    [
        {"target": 0},
        {"target_utilization_percentage": 0},
        {"min_replicas": 3, "max_replicas": 2},
        {"max_scale_down_rate": 1.0},
        {"scale_down_delay": -1.0},
    ],
)
def test_invalid_config_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        AutoscalerConfig(**bad)  # type: ignore[arg-type]
