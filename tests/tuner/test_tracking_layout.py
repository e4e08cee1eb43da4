"""The hyperflow -> MLflow mapping, without MLflow."""

from __future__ import annotations

import pytest

from tuner.spec.models import Experiment
from tuner.tracking import layout
from tuner.types import ExperimentPhase, ExperimentReason, TrialPhase


def experiment(namespace: str = "default") -> Experiment:
    return Experiment.model_validate(
        {
            "metadata": {"name": "mnist", "namespace": namespace},
            "spec": {
                "objective": {"type": "minimize", "objectiveMetricName": "Validation-loss"},
                "algorithm": {"algorithmName": "random"},
                "earlyStopping": {
                    "algorithmName": "medianstop",
                    "algorithmSettings": [{"name": "min_trials_required", "value": 2}],
                },
                "parameters": [
                    {
                        "name": "num-layers",
                        "parameterType": "int",
                        "feasibleSpace": {"min": 2, "max": 5, "step": 1},
                    }
                ],
            },
        }
    )


@pytest.mark.parametrize(
    ("phase", "status"),
    [
        (TrialPhase.SUCCEEDED, "FINISHED"),
        (TrialPhase.FAILED, "FAILED"),
        (TrialPhase.METRICS_UNAVAILABLE, "FAILED"),
        (TrialPhase.KILLED, "KILLED"),
        (TrialPhase.EARLY_STOPPED, "KILLED"),
        (TrialPhase.RUNNING, "RUNNING"),
    ],
)
def test_trial_status(phase: TrialPhase, status: str) -> None:
    assert layout.trial_status(phase) == status


def test_experiment_status() -> None:
    done = ExperimentReason.GOAL_REACHED
    assert layout.experiment_status(ExperimentPhase.SUCCEEDED, done) == "FINISHED"
    assert layout.experiment_status(ExperimentPhase.FAILED, ExperimentReason.FAILED) == "FAILED"
    assert layout.experiment_status(ExperimentPhase.FAILED, ExperimentReason.KILLED) == "KILLED"


def test_names_keys_and_params() -> None:
    assert layout.experiment_name(experiment()) == "mnist"
    assert layout.experiment_name(experiment("team-a")) == "team-a/mnist"
    assert layout.fallback_experiment_name(experiment(), "abcdef123456") == "mnist (abcdef12)"
    assert layout.key("Validation-loss") == "Validation-loss"
    assert layout.key("acc@top:5") == "acc_top_5"
    assert len(layout.key("x" * 400)) == 250
    params = layout.parent_params(experiment())
    assert params["objective.metric"] == "Validation-loss"
    assert params["earlyStopping"] == "medianstop"
    assert params["earlyStopping.min_trials_required"] == "2"
    assert params["space.num-layers"] == "int [2, 5] step 1"
    assert "objective.goal" not in params
    tags = layout.trial_tags(experiment("team-a"), "u1", "mnist-x", "p1")
    assert tags["mlflow.parentRunId"] == "p1"
    assert tags["hyperflow.namespace"] == "team-a"
    assert tags["hyperflow.run_type"] == "trial"


def test_the_plain_layout_the_writer_process_gets_answers_like_the_experiments() -> None:
    from tests.tuner.test_tracking import EXPERIMENT, UID
    from tuner.tracking.layout import ExperimentLayout, PlainLayout

    full, plain = ExperimentLayout(EXPERIMENT), PlainLayout.of(EXPERIMENT, UID)
    for method, args in [
        ("experiment_name", ()),
        ("fallback_experiment_name", (UID,)),
        ("experiment_tags", ()),
        ("parent_run_name", ()),
        ("parent_tags", (UID,)),
        ("child_tags", (UID, "digits-7", "0123abcd")),
        ("parent_params", ()),
        ("spec_artifact", ()),
    ]:
        assert getattr(plain, method)(*args) == getattr(full, method)(*args), method
    with pytest.raises(ValueError, match="uid"):
        plain.parent_tags("another-uid")
