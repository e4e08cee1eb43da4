"""A Python client of the control plane, with Katib's ``KatibClient`` and KServe's
``KServeClient`` method names.

Imports only httpx (and PyYAML for YAML text): no mlflow, optuna or scikit-learn::

    from hyperflow.client import Client

    client = Client()                      # --server / HYPERFLOW_SERVER / http://127.0.0.1:8080
    client.create_experiment(yaml_text_or_dict)
    client.wait_for_experiment_condition("branin")
    print(client.get_optimal_hyperparameters("branin"))
    client.create(isvc_yaml_or_dict)       # an InferenceService
    client.wait_isvc_ready("sklearn-iris")
"""

from __future__ import annotations

from hyperflow.client.client import (
    DEFAULT_SERVER,
    ApiError,
    Client,
    InvalidName,
    InvalidServer,
    ServerUnavailable,
    check_name,
)

__all__ = [
    "DEFAULT_SERVER",
    "ApiError",
    "Client",
    "InvalidName",
    "InvalidServer",
    "ServerUnavailable",
    "check_name",
]
