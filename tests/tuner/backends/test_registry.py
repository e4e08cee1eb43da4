"""Choosing a backend by name, and what the ray backend asks of Ray for a trial (no
cluster needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.util import REPO, run_hyperflow
from tuner.backends import (
    BACKENDS,
    BackendError,
    UnknownBackend,
    check_backend_name,
    create_backend,
)
from tuner.sdk import search, tune
from tuner.settings import TunerSettings
from tuner.spec.errors import SpecError
from tuner.spec.models import Experiment
from tuner.trial_template import render_trial

VALID = ", ".join(sorted(BACKENDS))
EXPERIMENT = REPO / "examples" / "experiments" / "branin.yaml"


def test_names_resolve_and_unknown_ones_list_the_valid_ones() -> None:
    assert {"local", "ray"} <= set(BACKENDS)
    assert check_backend_name("ray") == "ray"
    with pytest.raises(UnknownBackend, match=f"unknown backend 'slurm'; valid: {VALID}$"):
        check_backend_name("slurm")
    local = create_backend("local", TunerSettings())
    assert (local.kind, local.runs_functions, local.reattaches) == ("local", False, True)
    pool = create_backend("local", TunerSettings(), function=lambda x: x, workers=2)
    assert (pool.kind, pool.runs_functions, pool.reattaches) == ("function", True, False)
    pool.close()


def test_cli_and_sdk_refuse_an_unknown_backend(tmp_path: Path) -> None:
    done = run_hyperflow("experiment", "run", "-f", str(EXPERIMENT), "--backend", "slurm")
    assert done.returncode == 1
    assert f"--backend: unknown backend 'slurm'; valid: {VALID}" in done.stderr
    done = run_hyperflow("server", "--backend", "slurm")
    assert done.returncode == 2 and "unknown backend 'slurm'" in done.stderr
    with pytest.raises(SpecError, match="backend"):
        tune(
            name="x",
            objective=lambda p: p["x"],
            parameters={"x": search.double(min=0, max=1)},
            objective_metric_name="loss",
            backend="slurm",
            track=False,
        )


def test_function_trials_on_kubernetes_are_refused_naming_the_field() -> None:
    with pytest.raises(SpecError, match=r"backend.*function trials \(tune\(\)\) run on the local"):
        tune(
            name="x",
            objective=lambda p: p["x"],
            parameters={"x": search.double(min=0, max=1)},
            objective_metric_name="loss",
            backend="kubernetes",
            track=False,
        )
    with pytest.raises(BackendError, match="needs the experiment"):
        create_backend("kubernetes", TunerSettings())


def test_container_resources_become_ray_resources() -> None:
    from tuner.backends.ray import ray_options

    experiment = Experiment.model_validate(
        {
            "apiVersion": "kubeflow.org/v1beta1",
            "kind": "Experiment",
            "metadata": {"name": "r"},
            "spec": {
                "objective": {"type": "minimize", "objectiveMetricName": "loss"},
                "algorithm": {"algorithmName": "random"},
                "parameters": [
                    {"name": "x", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "2"}}
                ],
                "trialTemplate": {
                    "primaryContainerName": "main",
                    "trialParameters": [{"name": "x", "reference": "x"}],
                    "trialSpec": {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "spec": {
                            "template": {
                                "spec": {
                                    "containers": [
                                        {
                                            "name": "main",
                                            "command": ["train", "${trialParameters.x}"],
                                            "resources": {
                                                "requests": {"cpu": "1500m", "memory": "1Gi"},
                                                "limits": {"cpu": "4", "nvidia.com/gpu": "1"},
                                            },
                                        }
                                    ]
                                }
                            }
                        },
                    },
                },
            },
        }
    )
    rendered = render_trial(experiment, "t", {"x": 2}, None)
    # Requests win; a resource with only a limit is requested at its limit.
    assert rendered.resources == {"cpu": "1500m", "memory": "1Gi", "nvidia.com/gpu": "1"}
    assert ray_options(rendered.resources) == {
        "num_cpus": 1.5,
        "memory": 2**30,
        "num_gpus": 1.0,
    }
    assert ray_options({}) == {}
    with pytest.raises(ValueError, match="resources cpu: must be a Kubernetes quantity"):
        ray_options({"cpu": "lots"})
