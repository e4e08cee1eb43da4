"""Trial deadlines: a Job's activeDeadlineSeconds (and the SDK's) kills a trial that hangs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_experiments import _by, _categorical, _run, _script
from tests.util import pid_running
from tuner.sdk import search, tune
from tuner.spec import SpecError, parse_experiment

DEADLINE_REASON = "TrialFailed. Job reason: DeadlineExceeded"
DEADLINE_MESSAGE = "Trial has failed. Job message: Job was active longer than specified deadline"


def _job_experiment(name: str, deadline: Any, **job_spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": "loss"},
            "algorithm": {"algorithmName": "grid"},
            "parallelTrialCount": 2,
            "maxTrialCount": 2,
            "parameters": [_categorical("prog", ["./slow", "./fast"])],
            "trialTemplate": {
                "primaryContainerName": "training",
                "trialParameters": [{"name": "prog", "reference": "prog"}],
                "trialSpec": {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "spec": {
                        "activeDeadlineSeconds": deadline,
                        **job_spec,
                        "template": {
                            "spec": {
                                "restartPolicy": "Never",
                                "containers": [
                                    {
                                        "name": "training",
                                        "image": "docker.io/library/python:3.11",
                                        "command": ["${trialParameters.prog}"],
                                    }
                                ],
                            }
                        },
                    },
                },
            },
        },
    }


def test_a_job_past_its_active_deadline_is_killed_and_failed(tmp_path: Path) -> None:
    _script(tmp_path, "slow", "#!/bin/sh\necho loss=0.1\nsleep 120\n")
    _script(tmp_path, "fast", "#!/bin/sh\necho loss=0.5\n")
    started = time.monotonic()
    record, trials = _run(_job_experiment("deadline", 2), tmp_path)
    assert time.monotonic() - started < 60  # not the 120 s the slow trial would take
    by = _by(trials, "prog")
    slow, fast = by["./slow"], by["./fast"]
    assert (slow.phase.value, slow.reason, slow.message) == (
        "Failed",
        DEADLINE_REASON,
        DEADLINE_MESSAGE,
    )
    pid = int(Path(slow.trial_dir, "pid").read_text().split()[0])
    assert not pid_running(pid), "the trial outlived its deadline"
    assert fast.phase.value == "Succeeded"
    assert record.phase.value == "Succeeded", record.message


def test_kubeflow_jobs_take_the_deadline_from_run_policy(tmp_path: Path) -> None:
    data = _job_experiment("deadline-kf", 5)
    template = data["spec"]["trialTemplate"]
    job = template["trialSpec"]
    template["trialSpec"] = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "spec": {
            "runPolicy": {"activeDeadlineSeconds": 2},
            "pytorchReplicaSpecs": {"Master": {"replicas": 1, "template": job["spec"]["template"]}},
        },
    }
    _script(tmp_path, "slow", "#!/bin/sh\nsleep 120\n")
    _script(tmp_path, "fast", "#!/bin/sh\necho loss=0.5\n")
    _, trials = _run(data, tmp_path)
    assert _by(trials, "prog")["./slow"].reason == DEADLINE_REASON


@pytest.mark.parametrize("bad", ["60", 0, -5, 1.5, True])
def test_deadlines_are_validated(bad: Any) -> None:
    with pytest.raises(SpecError) as caught:
        parse_experiment(_job_experiment("deadline-bad", bad))
    assert caught.value.lines() == [
        "spec.trialTemplate.trialSpec.spec.activeDeadlineSeconds: must be a whole number of "
        f"seconds >= 1; got {bad!r}"
    ]


def test_tune_sets_a_deadline_for_function_trials() -> None:
    def objective(parameters: dict[str, Any]) -> float:
        if parameters["mode"] == "hang":
            time.sleep(120)
        return 0.5

    started = time.monotonic()
    result = tune(
        name="sdk-deadline",
        objective=objective,
        parameters={"mode": search.categorical(["hang", "quick"])},
        objective_metric_name="loss",
        objective_type="minimize",
        algorithm_name="grid",
        max_trial_count=2,
        parallel_trial_count=2,
        trial_active_deadline_seconds=2,
        track=False,
    )
    assert time.monotonic() - started < 60
    by = {t.assignments["mode"]: t for t in result.trials}
    assert (by["hang"].phase.value, by["hang"].reason) == ("Failed", DEADLINE_REASON)
    assert by["quick"].phase.value == "Succeeded"
    with pytest.raises(SpecError, match="trial_active_deadline_seconds: must be a whole number"):
        tune(
            name="sdk-deadline-bad",
            objective=objective,
            parameters={"mode": search.categorical(["quick"])},
            objective_metric_name="loss",
            trial_active_deadline_seconds=0,
            track=False,
        )
