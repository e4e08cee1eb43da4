"""Katib experiments whose trials are Kubernetes Jobs, and a kubeconfig for the API
stand-in: what the kubernetes backend's tests, its conformance harness and the server's
end-to-end test build their trials from."""

from __future__ import annotations

from typing import Any

from tuner.spec.loader import parse_experiment
from tuner.spec.models import Experiment


def job(container: dict[str, Any], *, pod_labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A batch/v1 Job trialSpec: one pod, never restarted, running ``container`` (named
    ``training`` unless it says otherwise)."""
    template: dict[str, Any] = {
        "spec": {"restartPolicy": "Never", "containers": [{"name": "training", **container}]}
    }
    if pod_labels:
        template["metadata"] = {"labels": dict(pod_labels)}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "spec": {"backoffLimit": 0, "template": template},
    }


def experiment(
    trial_spec: dict[str, Any],
    *,
    parameter: str = "x",
    trial_parameter: str = "x",
    low: str = "0",
    high: str = "1",
    name: str = "exp",
    **template: Any,
) -> Experiment:
    """A minimize-``loss`` experiment of one double parameter whose trials are
    ``trial_spec`` (``${trialParameters.<trial_parameter>}`` is the parameter)."""
    return parse_experiment(
        {
            "apiVersion": "kubeflow.org/v1beta1",
            "kind": "Experiment",
            "metadata": {"name": name},
            "spec": {
                "objective": {"type": "minimize", "objectiveMetricName": "loss"},
                "algorithm": {"algorithmName": "random"},
                "parameters": [
                    {
                        "name": parameter,
                        "parameterType": "double",
                        "feasibleSpace": {"min": low, "max": high},
                    }
                ],
                "trialTemplate": {
                    "primaryContainerName": "training",
                    "trialParameters": [{"name": trial_parameter, "reference": parameter}],
                    "trialSpec": trial_spec,
                    **template,
                },
            },
        }
    )


def kubeconfig(server: str) -> str:
    """A kubeconfig whose current context is the API server at ``server``."""
    return (
        "apiVersion: v1\n"
        "kind: Config\n"
        f"clusters:\n- name: standin\n  cluster:\n    server: {server}\n"
        "users:\n- name: tester\n  user: {}\n"
        "contexts:\n- name: standin\n  context:\n    cluster: standin\n    user: tester\n"
        "    namespace: default\n"
        "current-context: standin\n"
    )
