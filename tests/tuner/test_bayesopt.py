"""``bayesianoptimization``: scikit-optimize's Optimizer with Katib's settings, no torch."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.tuner.test_suggestion_conformance import make_experiment
from tests.util import REPO
from tuner.suggestion import InProcessSuggestionClient
from tuner.types import TrialPhase, TrialResult

XY = [
    {"name": "x1", "parameterType": "double", "feasibleSpace": {"min": "-5", "max": "10"}},
    {"name": "x2", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "15"}},
]


def branin(a: dict[str, Any]) -> float:
    x1, x2 = float(a["x1"]), float(a["x2"])
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def optimizer(client: InProcessSuggestionClient) -> Any:
    state = client.state("ns", "exp")
    assert state is not None
    return state.study.sampler._optimizer  # type: ignore[attr-defined]


def test_katib_settings_reach_skopt_with_katibs_defaults() -> None:
    client = InProcessSuggestionClient()
    client.suggest(make_experiment("bayesianoptimization", {}, XY), 1)
    opt = optimizer(client)
    assert opt.n_initial_points_ == 10
    assert opt.acq_func == "gp_hedge"
    assert opt.acq_optimizer == "lbfgs"  # "auto" with a GP: it has gradients
    assert type(opt.base_estimator_).__name__ == "GaussianProcessRegressor"

    settings = {
        "base_estimator": "ET",
        "n_initial_points": "3",
        "acq_func": "PI",
        "acq_optimizer": "auto",
        "random_state": "5",
    }
    client = InProcessSuggestionClient()
    client.suggest(make_experiment("bayesianoptimization", settings, XY), 1)
    opt = optimizer(client)
    assert (opt.n_initial_points_, opt.acq_func, opt.acq_optimizer) == (3, "PI", "sampling")
    assert type(opt.base_estimator_).__name__ == "ExtraTreesRegressor"


def test_only_succeeded_trials_are_told_and_maximising_negates() -> None:
    client = InProcessSuggestionClient()
    experiment = make_experiment(
        "bayesianoptimization", {"n_initial_points": "2"}, XY, direction="maximize"
    )
    first, second, third = client.suggest(experiment, 3)
    client.report(
        experiment, TrialResult(first.trial_name, first.assignments, TrialPhase.SUCCEEDED, 4.0)
    )
    client.report(experiment, TrialResult(second.trial_name, second.assignments, TrialPhase.FAILED))
    client.report(
        experiment, TrialResult(third.trial_name, third.assignments, TrialPhase.METRICS_UNAVAILABLE)
    )
    client.suggest(experiment, 1)  # told at the next ask
    opt = optimizer(client)
    assert opt.yi == [-4.0]
    assert opt.Xi == [[first.assignments["x1"], first.assignments["x2"]]]


def test_parallel_suggestions_differ_once_the_model_is_used() -> None:
    client = InProcessSuggestionClient()
    experiment = make_experiment(
        "bayesianoptimization", {"n_initial_points": "3", "random_state": "1"}, XY
    )
    for s in client.suggest(experiment, 3):
        client.report(
            experiment,
            TrialResult(s.trial_name, s.assignments, TrialPhase.SUCCEEDED, branin(s.assignments)),
        )
    batch = client.suggest(experiment, 3)  # the GP proposes all three, none told yet
    points = {(s.assignments["x1"], s.assignments["x2"]) for s in batch}
    assert len(points) == 3
    # A failed trial's point is not proposed again (the model has not learnt anything new).
    client.report(
        experiment, TrialResult(batch[0].trial_name, batch[0].assignments, TrialPhase.FAILED)
    )
    client.report(
        experiment, TrialResult(batch[1].trial_name, batch[1].assignments, TrialPhase.FAILED)
    )
    client.report(
        experiment, TrialResult(batch[2].trial_name, batch[2].assignments, TrialPhase.FAILED)
    )
    again = client.suggest(experiment, 1)[0]
    assert (again.assignments["x1"], again.assignments["x2"]) not in points


def test_the_model_finds_a_minimum_the_random_points_missed() -> None:
    """Seeded, so deterministic: after 3 random points, 5 model-driven ones close in on 0.3."""
    client = InProcessSuggestionClient()
    x = [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}]
    experiment = make_experiment(
        "bayesianoptimization", {"n_initial_points": "3", "random_state": "1"}, x
    )
    values = []
    for _ in range(8):
        (s,) = client.suggest(experiment, 1)
        values.append((s.assignments["x"] - 0.3) ** 2)
        client.report(
            experiment, TrialResult(s.trial_name, s.assignments, TrialPhase.SUCCEEDED, values[-1])
        )
    assert min(values[:3]) > 0.01
    assert min(values[3:]) < 0.001


@pytest.mark.parametrize("acq_func", ["EIps", "PIps"])
def test_settings_that_katib_accepts_but_cannot_run_fail_before_any_trial(
    acq_func: str, tmp_path: Path
) -> None:
    from tuner.runner import run_experiment
    from tuner.spec import parse_experiment

    data = {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": "eips"},
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": "loss"},
            "algorithm": {
                "algorithmName": "bayesianoptimization",
                "algorithmSettings": [{"name": "acq_func", "value": acq_func}],
            },
            "maxTrialCount": 2,
            "parallelTrialCount": 1,
            "parameters": XY,
            "trialTemplate": {
                "command": [
                    "python",
                    "-c",
                    "print('loss=1')",
                    "${trialParameters.x1}",
                    "${trialParameters.x2}",
                ],
                "trialParameters": [
                    {"name": "x1", "reference": "x1"},
                    {"name": "x2", "reference": "x2"},
                ],
            },
        },
    }
    outcome = run_experiment(parse_experiment(data, base_dir=tmp_path), track=False)
    assert outcome.record.phase.value == "Failed"
    assert outcome.record.reason == "ExperimentFailed"
    assert f"acq_func {acq_func} needs each trial's run time" in outcome.record.message


def test_a_missing_scikit_optimize_is_a_note_and_fails_at_start(tmp_path: Path) -> None:
    experiment = tmp_path / "bo.yaml"
    experiment.write_text(
        textwrap.dedent(
            """
            apiVersion: kubeflow.org/v1beta1
            kind: Experiment
            metadata: {name: bo}
            spec:
              objective: {type: minimize, objectiveMetricName: loss}
              algorithm: {algorithmName: bayesianoptimization}
              maxTrialCount: 2
              parallelTrialCount: 1
              parameters:
                - {name: x, parameterType: double, feasibleSpace: {min: "0", max: "1"}}
              trialTemplate:
                command: [python, -c, "print('loss=${trialParameters.x}')"]
                trialParameters: [{name: x, reference: x}]
            """
        )
    )
    # sys.modules[name] = None is how Python blocks an import: as if it were not installed.
    code = (
        "import sys; sys.modules['skopt'] = None\n"
        "from hyperflow.cli import main; sys.argv = ['hyperflow', *sys.argv[1:]]; main()"
    )

    def hyperflow(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code, *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            env={**__import__("os").environ, "COLUMNS": "300"},
        )

    validated = hyperflow("experiment", "validate", "-f", str(experiment))
    assert validated.returncode == 0, validated.stderr
    assert (
        "note: cannot run locally: algorithm bayesianoptimization needs scikit-optimize, "
        "which is not installed (pip install scikit-optimize)"
    ) in validated.stdout
    ran = hyperflow("experiment", "run", "--no-mlflow", "-f", str(experiment))
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert "Failed (ExperimentFailed)" in ran.stderr
    assert "needs scikit-optimize" in ran.stderr
    assert "trials: none" in ran.stderr
