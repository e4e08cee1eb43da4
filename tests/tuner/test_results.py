"""Metric strategies, ranking and Katib's medianstop rule."""

from __future__ import annotations

from tuner.earlystopping import MedianStop
from tuner.results import final_metrics, goal_reached, is_better, objective_value, summarize
from tuner.spec.models import EarlyStoppingSpec, ObjectiveSpec
from tuner.types import Observation


def _objective(
    type_: str = "minimize", strategies: list | None = None, goal: float | None = None
) -> ObjectiveSpec:
    return ObjectiveSpec.model_validate(
        {
            "type": type_,
            "goal": goal,
            "objectiveMetricName": "loss",
            "additionalMetricNames": ["acc"],
            "metricStrategies": strategies or [],
        }
    )


OBS = [Observation("loss", v, i, 0.0) for i, v in enumerate([3.0, 1.0, 2.0])] + [
    Observation("acc", 0.5, None, 0.0),
    Observation("acc", 0.7, None, 0.0),
]


def test_strategies() -> None:
    summaries = summarize(OBS)
    assert summaries["loss"].to_dict() == {"min": 1.0, "max": 3.0, "latest": 2.0}
    assert objective_value(_objective(), summaries) == 1.0
    assert objective_value(_objective("maximize"), summaries) == 3.0
    latest = _objective(strategies=[{"name": "loss", "value": "latest"}])
    assert objective_value(latest, summaries) == 2.0
    # each metric by its own strategy: acc follows the objective type (minimize -> min)
    assert final_metrics(_objective(), summaries) == {"loss": 1.0, "acc": 0.5}
    assert objective_value(_objective(), summarize([Observation("acc", 1.0)])) is None


def test_ranking_and_goal() -> None:
    assert is_better(_objective(), 1.0, 2.0) and not is_better(_objective(), 2.0, 1.0)
    assert is_better(_objective("maximize"), 2.0, 1.0)
    assert is_better(_objective(), 5.0, None)
    assert goal_reached(_objective(goal=0.5), 0.5) and not goal_reached(_objective(goal=0.5), 0.6)
    assert goal_reached(_objective("maximize", goal=0.9), 0.95)
    assert not goal_reached(_objective(), 0.0)


def test_median_stop() -> None:
    spec = EarlyStoppingSpec.model_validate(
        {
            "algorithmName": "medianstop",
            "algorithmSettings": [
                {"name": "min_trials_required", "value": "2"},
                {"name": "start_step", "value": "2"},
            ],
        }
    )
    rule = MedianStop.from_spec(spec, _objective())
    # Added one by one, as the controller adds each succeeded trial.
    assert rule.add_succeeded([1.0, 1.0, 9.0]) is None  # fewer than min_trials_required
    assert rule.add_succeeded([3.0, 3.0]) == 2.0  # even count: mean of the middle two
    median = rule.add_succeeded([2.0, 2.0])
    assert median == 2.0  # averages of the first start_step values: 1, 3, 2
    assert rule.add_succeeded([]) == median  # no objective value: not counted
    assert rule.threshold() == median
    assert not rule.should_stop([5.0], median)  # before start_step
    assert rule.should_stop([5.0, 4.0], median)
    assert not rule.should_stop([5.0, 1.5], median)
    rule.reset()
    assert rule.threshold() is None
