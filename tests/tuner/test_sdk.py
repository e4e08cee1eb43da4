"""``tuner.sdk.tune``: real worker processes, the real store, a real MLflow store (once)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tuner.report import report
from tuner.sdk import build_experiment, get_optimal_hyperparameters, search, tune
from tuner.settings import TunerSettings
from tuner.spec import SpecError
from tuner.store import Store


def quadratic(parameters: dict[str, Any]) -> dict[str, float]:
    return {"loss": (parameters["x"] - 0.3) ** 2, "other": 1.0}


def printing(x: float) -> None:
    print(f"loss={(x - 0.3) ** 2}")


def streaming(parameters: dict[str, Any]) -> None:
    for step in range(3):
        report(loss=parameters["x"] + step, step=step)


def typed(n: int, color: str, rate: float) -> dict[str, float]:
    # Wrong types fail the trial (an AssertionError), which the test would see.
    assert type(n) is int, (type(n), n)
    assert type(color) is str and color in ("red", "blue"), color
    assert type(rate) is float and rate in (0.5, 2.0), rate
    return {"score": n * rate}


def flaky(parameters: dict[str, Any]) -> dict[str, float]:
    if parameters["mode"] == "boom":
        raise ValueError("bad mode boom")
    return {"loss": 1.0 if parameters["mode"] == "a" else 2.0}


def reports_then_returns(parameters: dict[str, Any]) -> dict[str, float]:
    for step, loss in enumerate((3.0, 2.0, 2.5)):
        report(step=step, loss=loss)
    return {"loss": 1.5}


def not_finite(parameters: dict[str, Any]) -> Any:
    return {"nan": float("nan"), "inf": {"loss": float("-inf")}, "ok": 1.0}[parameters["mode"]]


def _observations(trial_id: int) -> list[Any]:
    store = Store(TunerSettings().store_url)
    try:
        return store.observations(trial_id)
    finally:
        store.close()


def test_dict_returning_function(caplog: pytest.LogCaptureFixture) -> None:
    def run() -> Any:
        return tune(
            "sdk-dict",
            quadratic,
            {"x": search.double(min=0, max=1)},
            objective_metric_name="loss",
            objective_type="minimize",
            additional_metric_names=["other"],
            max_trial_count=4,
            parallel_trial_count=2,
            track=False,
        )

    result = run()
    assert result.succeeded, result.experiment.message
    assert not result.already_finished
    with caplog.at_level("WARNING", logger="tuner.sdk"):
        again = run()  # the stored result, said out loud
    assert again.already_finished and again.experiment.uid == result.experiment.uid
    assert "had already finished; returning its stored result" in caplog.text
    assert len(result.trials) == 4 and all(t.phase.value == "Succeeded" for t in result.trials)
    best = min(result.trials, key=lambda t: t.objective_value)
    assert result.best_trial is not None and result.best_trial.name == best.name
    assert result.best_parameters == best.assignments
    assert best.metrics is not None and best.metrics["other"]["latest"] == 1.0
    assert result.status["trialsSucceeded"] == 4
    assert result.status["currentOptimalTrial"]["bestTrialName"] == best.name

    optimal = get_optimal_hyperparameters("sdk-dict")
    assert optimal["bestTrialName"] == best.name
    assert optimal["parameterAssignments"] == [{"name": "x", "value": str(best.assignments["x"])}]
    with pytest.raises(LookupError, match="not found"):
        get_optimal_hyperparameters("no-such-experiment")


def test_printed_metrics_and_keyword_arguments() -> None:
    result = tune(
        "sdk-print",
        printing,
        {"x": search.double(min=0, max=1)},
        objective_metric_name="loss",
        objective_type="minimize",
        max_trial_count=2,
        parallel_trial_count=1,
        track=False,
    )
    assert result.succeeded
    for t in result.trials:
        assert t.phase.value == "Succeeded", t.message
        assert t.objective_value == pytest.approx((t.assignments["x"] - 0.3) ** 2)


def test_report_streams_steps() -> None:
    result = tune(
        "sdk-report",
        streaming,
        {"x": search.double(min=0, max=1)},
        objective_metric_name="loss",
        objective_type="minimize",
        max_trial_count=2,
        parallel_trial_count=2,
        track=False,
    )
    assert result.succeeded
    for t in result.trials:
        assert t.phase.value == "Succeeded", t.message
        x = t.assignments["x"]
        obs = [(o.step, o.value) for o in _observations(t.id) if o.name == "loss"]
        assert obs == [(0, x), (1, x + 1), (2, x + 2)]
        assert t.objective_value == pytest.approx(x)  # minimize: min over the steps


def test_search_types_reach_the_function() -> None:
    result = tune(
        "sdk-types",
        typed,
        {
            "n": search.int(min=1, max=3),
            "color": search.categorical(["red", "blue"]),
            "rate": search.discrete([0.5, 2.0]),
        },
        objective_metric_name="score",
        algorithm_name="grid",
        max_trial_count=5,
        parallel_trial_count=2,
        track=False,
    )
    assert [t.phase.value for t in result.trials] == ["Succeeded"] * 5, [
        t.message for t in result.trials
    ]


def test_an_exception_fails_the_trial_and_the_experiment_goes_on() -> None:
    result = tune(
        "sdk-flaky",
        flaky,
        {"mode": search.categorical(["a", "boom", "b"])},
        objective_metric_name="loss",
        objective_type="minimize",
        algorithm_name="grid",
        parallel_trial_count=1,
        max_failed_trial_count=2,
        track=False,
    )
    assert result.succeeded, result.experiment.message
    by = {t.assignments["mode"]: t for t in result.trials}
    assert by["boom"].phase.value == "Failed"
    assert "ValueError: bad mode boom" in by["boom"].message
    assert by["a"].phase.value == by["b"].phase.value == "Succeeded"
    assert result.best_parameters == {"mode": "a"}


def test_a_nan_or_infinite_result_is_no_observation_and_the_experiment_goes_on() -> None:
    # A NaN reached the store once (SQLite keeps it as NULL): every commit after failed,
    # and the experiment could not be run again.
    result = tune(
        "sdk-nan",
        not_finite,
        {"mode": search.categorical(["nan", "inf", "ok"])},
        objective_metric_name="loss",
        objective_type="minimize",
        algorithm_name="grid",
        parallel_trial_count=1,
        max_failed_trial_count=3,
        track=False,
    )
    assert result.succeeded, result.experiment.message
    by = {t.assignments["mode"]: t for t in result.trials}
    for mode in ("nan", "inf"):
        assert by[mode].phase.value == "MetricsUnavailable", by[mode].message
        assert "no 'loss' was reported" in by[mode].message
        assert _observations(by[mode].id) == []
    assert result.best_parameters == {"mode": "ok"}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"objective_type": "minimise"}, "spec.objective.type"),
        ({"parameters": {"x": 3}}, "parameters['x']"),
        ({"parameters": [search.double(0, 1)]}, "parameters"),
        ({"parameters": {"x": search.double(min=1, max=0)}}, "feasibleSpace.min"),
        ({"parameters": {}}, "spec.parameters"),
        ({"algorithm_name": "nope"}, "spec.algorithm.algorithmName"),
        # a 0 given is a 0 refused, not Katib's default of 3 in its place
        ({"parallel_trial_count": 0}, "spec.parallelTrialCount"),
        ({"max_trial_count": "5"}, "spec.max_trial_count: must be an integer"),
        ({"max_trial_count": True}, "spec.max_trial_count: must be an integer"),
        ({"objective_goal": True}, "spec.objective.goal: must be a number"),
    ],
)
def test_bad_arguments_raise_spec_errors(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {
        "name": "bad",
        "parameters": {"x": search.double(min=0, max=1)},
        "objective_metric_name": "loss",
        **kwargs,
    }
    with pytest.raises(SpecError) as info:
        build_experiment(**args)
    assert field in str(info.value)
    assert "pydantic" not in str(info.value)


def test_the_default_parallel_trial_count_stays_within_a_small_budget() -> None:
    args: dict[str, Any] = {
        "name": "small",
        "parameters": {"x": search.double(min=0, max=1)},
        "objective_metric_name": "loss",
    }
    assert build_experiment(**args, max_trial_count=2).spec.parallel_trial_count == 2
    assert build_experiment(**args, max_trial_count=9).spec.parallel_trial_count == 3
    assert build_experiment(**args).spec.parallel_trial_count == 3
    # numpy's scalars are counts and goals all the same.
    import numpy as np

    built = build_experiment(**args, max_trial_count=np.int64(2), objective_goal=np.float32(0.5))
    assert (built.spec.max_trial_count, built.spec.parallel_trial_count) == (2, 2)
    assert type(built.spec.max_trial_count) is int and built.spec.objective.goal == 0.5


def test_bad_search_spaces_raise_spec_errors() -> None:
    with pytest.raises(SpecError, match="distribution"):
        search.double(min=0, max=1, distribution="gaussian")
    with pytest.raises(SpecError, match="must not be empty"):
        build_experiment(
            name="bad",
            parameters={"c": search.categorical([])},
            objective_metric_name="loss",
        )


def test_mlflow_one_run_per_trial(mlflow_db: Path) -> None:
    import mlflow

    result = tune(
        "sdk-mlflow",
        quadratic,
        {"x": search.double(min=0, max=1)},
        objective_metric_name="loss",
        objective_type="minimize",
        max_trial_count=2,
        parallel_trial_count=2,
        track=True,
    )
    assert result.succeeded and result.tracking
    client = mlflow.MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name("sdk-mlflow")
    runs = client.search_runs([exp.experiment_id], max_results=50)
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(runs) - len(children) == 1
    assert sorted(r.info.run_name for r in children) == sorted(t.name for t in result.trials)
    for run in children:
        trial = next(t for t in result.trials if t.name == run.info.run_name)
        assert run.info.status == "FINISHED"
        assert float(run.data.params["x"]) == pytest.approx(trial.assignments["x"])
        assert run.data.metrics["loss"] == pytest.approx(trial.objective_value)


def test_a_returned_value_is_mlflows_latest_after_the_reported_steps(mlflow_db: Path) -> None:
    # It was logged at step 0, so MLflow's latest loss was the last reported one (2.5).
    import mlflow

    result = tune(
        "sdk-steps",
        reports_then_returns,
        {"x": search.double(min=0, max=1)},
        objective_metric_name="loss",
        objective_type="minimize",
        max_trial_count=1,
        parallel_trial_count=1,
        track=True,
    )
    assert result.succeeded and result.tracking
    client = mlflow.MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name("sdk-steps")
    [run] = [
        r for r in client.search_runs([exp.experiment_id]) if "mlflow.parentRunId" in r.data.tags
    ]
    history = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "loss")]
    assert sorted(history) == [(0, 3.0), (1, 2.0), (2, 2.5), (3, 1.5)]
    assert run.data.metrics["loss"] == 1.5


def test_an_objective_that_cannot_take_the_parameters_is_refused_before_any_trial() -> None:
    # def f(x, z) for parameters x and y failed every trial with the same TypeError.
    def objective(x: float, z: float) -> float:
        return x + z

    with pytest.raises(SpecError) as info:
        tune(
            "sdk-signature",
            objective,
            {"x": search.double(min=0, max=1), "y": search.double(min=0, max=1)},
            objective_metric_name="loss",
            track=False,
        )
    message = str(info.value)
    assert "objective: objective(x: 'float', z: 'float') -> 'float' cannot take the " in message
    assert "(x, y)" in message and "def objective(parameters)" in message
    store = Store(TunerSettings().store_url)
    try:
        assert store.get_experiment("default", "sdk-signature") is None  # nothing ran
    finally:
        store.close()
