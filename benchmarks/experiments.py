"""Experiments the benchmarks run: one place for the spec they share.

``command_experiment``: random search over one double ``x`` in [0, 1], minimising
``loss``, each trial a command (``${trialParameters.x}`` in it); ``trial_spec`` instead
makes each trial a Kubernetes Job running that command in a ``busybox`` container.
"""

from __future__ import annotations

from typing import Any


def command_experiment(
    name: str, command: list[str], trials: int, parallel: int, *, job: bool = False
) -> Any:
    """The parsed experiment of :func:`command_spec`."""
    from tuner.spec import parse_experiment

    return parse_experiment(command_spec(name, command, trials, parallel, job=job))


def command_spec(
    name: str,
    command: list[str],
    trials: int,
    parallel: int,
    *,
    job: bool = False,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The Experiment as YAML would give it; ``job``: the command runs in a Job's container
    (trialSpec); ``env``: the trials' environment (command trials)."""
    template: dict[str, Any] = {"trialParameters": [{"name": "x", "reference": "x"}]}
    if job:
        template["primaryContainerName"] = "trial"
        template["trialSpec"] = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [
                            {"name": "trial", "image": "busybox:1.36", "command": command}
                        ],
                    }
                },
            },
        }
    else:
        template["command"] = command
        if env:
            template["env"] = env
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": "loss"},
            "algorithm": {
                "algorithmName": "random",
                "algorithmSettings": [{"name": "random_state", "value": "1"}],
            },
            "parallelTrialCount": parallel,
            "maxTrialCount": trials,
            "parameters": [
                {
                    "name": "x",
                    "parameterType": "double",
                    "feasibleSpace": {"min": "0", "max": "1"},
                }
            ],
            "trialTemplate": template,
        },
    }
