"""Rendering Katib trial templates into local commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuner.spec.models import Experiment, ParameterSpec
from tuner.trial_template import TemplateError, format_value, render_trial


def _experiment(template: dict) -> Experiment:
    return Experiment.model_validate(
        {
            "apiVersion": "kubeflow.org/v1beta1",
            "kind": "Experiment",
            "metadata": {"name": "exp", "namespace": "team-a", "labels": {"owner": "ana"}},
            "spec": {
                "objective": {"type": "minimize", "objectiveMetricName": "loss"},
                "algorithm": {"algorithmName": "random"},
                "parameters": [
                    {
                        "name": "lr",
                        "parameterType": "double",
                        "feasibleSpace": {"min": "0.01", "max": "0.1"},
                    },
                    {
                        "name": "opt",
                        "parameterType": "categorical",
                        "feasibleSpace": {"list": ["sgd", "adam"]},
                    },
                ],
                "trialTemplate": template,
            },
        }
    )


JOB = {
    "primaryContainerName": "main",
    "trialParameters": [
        {"name": "learningRate", "reference": "lr"},
        {"name": "optimizer", "reference": "opt"},
    ],
    "trialSpec": {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "sidecar", "image": "busybox", "command": ["sleep"]},
                        {
                            "name": "main",
                            "image": "python:3.11",
                            "command": ["python3", "train.py"],
                            "args": [
                                "--lr=${trialParameters.learningRate}",
                                "--name=${trialSpec.Name}",
                            ],
                            "env": [
                                {"name": "OPT", "value": "${trialParameters.optimizer}"},
                                {"name": "NS", "value": "${trialSpec.Namespace}"},
                                {"name": "OWNER", "value": "${trialSpec.Labels[owner]}"},
                                {
                                    "name": "FROM_SECRET",
                                    "valueFrom": {"secretKeyRef": {"name": "s"}},
                                },
                            ],
                            "workingDir": "sub",
                        },
                    ]
                }
            }
        },
    },
}


def test_job_primary_container_command_args_env(tmp_path: Path) -> None:
    rendered = render_trial(_experiment(JOB), "exp-abc", {"lr": 0.05, "opt": "adam"}, tmp_path)
    assert rendered.command == ["python3", "train.py", "--lr=0.05", "--name=exp-abc"]
    assert rendered.env == {"OPT": "adam", "NS": "team-a", "OWNER": "ana"}
    assert rendered.cwd == tmp_path / "sub"
    assert rendered.image == "python:3.11"


def test_command_extension(tmp_path: Path) -> None:
    template = {
        "trialParameters": [{"name": "lr", "reference": "lr"}],
        "command": ["python", "t.py", "${trialParameters.lr}"],
        "env": {"A": "${trialParameters.lr}"},
    }
    rendered = render_trial(_experiment(template), "t", {"lr": 0.1, "opt": "sgd"}, tmp_path)
    assert rendered.command == ["python", "t.py", "0.1"] and rendered.env == {"A": "0.1"}
    assert rendered.cwd == tmp_path


def test_trial_parameters_may_reference_the_trials_metadata(tmp_path: Path) -> None:
    # Katib's samples pass the trial's name this way; it validated, then failed at run.
    template = {
        "trialParameters": [
            {"name": "lr", "reference": "lr"},
            {"name": "trialName", "reference": "${trialSpec.Name}"},
            {"name": "owner", "reference": "${trialSpec.Labels[owner]}"},
        ],
        "command": ["t", "${trialParameters.trialName}", "${trialParameters.owner}"],
    }
    rendered = render_trial(_experiment(template), "exp-x", {"lr": 0.1, "opt": "sgd"}, tmp_path)
    assert rendered.command == ["t", "exp-x", "ana"]
    bad = {**template, "trialParameters": [{"name": "n", "reference": "${trialSpec.Nope}"}]}
    with pytest.raises(TemplateError, match=r"unknown reference \$\{trialSpec.Nope\}"):
        render_trial(_experiment(bad), "exp-x", {"lr": 0.1, "opt": "sgd"}, tmp_path)


def test_a_discrete_value_reaches_the_trial_as_its_list_writes_it(tmp_path: Path) -> None:
    # ["0.5", "1", "2.5"] is searched as floats: "1" reached the trial as "1.0".
    experiment = _experiment(
        {
            "trialParameters": [{"name": "d", "reference": "d"}, {"name": "lr", "reference": "lr"}],
            "command": ["t", "${trialParameters.d}", "${trialParameters.lr}"],
        }
    )
    experiment.spec.parameters.append(
        ParameterSpec.model_validate(
            {
                "name": "d",
                "parameterType": "discrete",
                "feasibleSpace": {"list": ["0.5", "1", "2.5"]},
            }
        )
    )
    for value, text in ((1.0, "1"), (0.5, "0.5"), (2.5, "2.5")):
        rendered = render_trial(experiment, "t", {"lr": 0.1, "opt": "sgd", "d": value}, tmp_path)
        assert rendered.command == ["t", text, "0.1"]


def test_missing_primary_container_is_a_clear_error(tmp_path: Path) -> None:
    template = {**JOB, "primaryContainerName": "nope"}
    with pytest.raises(TemplateError, match="no container named 'nope'"):
        render_trial(_experiment(template), "t", {"lr": 0.1, "opt": "sgd"}, tmp_path)


def test_values_formatted_like_katib() -> None:
    assert format_value(0.1) == "0.1"
    assert format_value(3) == "3"
    assert format_value(1e-05) == "1e-05"
    assert format_value("adam") == "adam"
