"""A control plane served on real loopback sockets inside the test process."""

from __future__ import annotations

import contextlib
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from hyperflow.plane import ControlPlane, build
from hyperflow.server import make_app
from hyperflow.settings import ServerSettings
from serving.server.http import uvicorn_config
from tests.util import free_port, wait_http_ok, wait_until, write_script

TRIAL = textwrap.dedent(
    """
    import os, sys, time
    x = float(sys.argv[1])
    ledger = os.environ.get("LEDGER")
    if ledger:
        with open(ledger, "a") as f:
            f.write(os.environ["HYPERFLOW_TRIAL_NAME"] + "\\n")
    time.sleep(float(os.environ.get("TRIAL_SECONDS", "0")))
    print(f"loss={(x - 0.3) ** 2:.6f}", flush=True)
    """
)


def experiment(
    name: str,
    folder: Path,
    *,
    max_trials: int = 4,
    parallel: int = 2,
    seconds: float = 0.0,
    namespace: str | None = None,
    extra_env: dict[str, str] | None = None,
    resume_policy: str | None = None,
) -> dict[str, Any]:
    """A small experiment whose trials run ``trial.py`` in ``folder``."""
    write_script(folder / "trial.py", TRIAL)
    metadata: dict[str, Any] = {
        "name": name,
        "annotations": {"hyperflow.io/base-dir": str(folder)},
    }
    if namespace:
        metadata["namespace"] = namespace
    spec: dict[str, Any] = {
        "objective": {"type": "minimize", "objectiveMetricName": "loss"},
        "algorithm": {
            "algorithmName": "random",
            "algorithmSettings": [{"name": "random_state", "value": "3"}],
        },
        "parallelTrialCount": parallel,
        "maxTrialCount": max_trials,
        "parameters": [
            {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}
        ],
        "trialTemplate": {
            "trialParameters": [{"name": "x", "reference": "x"}],
            "command": ["python", "trial.py", "${trialParameters.x}"],
            "env": {"TRIAL_SECONDS": str(seconds), **(extra_env or {})},
        },
    }
    if resume_policy:
        spec["resumePolicy"] = resume_policy
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": metadata,
        "spec": spec,
    }


@dataclass
class Running:
    url: str
    plane: ControlPlane
    http: httpx.Client


@contextlib.contextmanager
def serve_plane(settings: ServerSettings) -> Iterator[Running]:
    """``make_app`` on uvicorn in a thread on ``settings.port``; on exit every experiment
    is stopped (its trials killed) and the server shut down."""
    plane = build(settings)
    # The product's uvicorn setup (JSON answers to malformed requests, bounded heads).
    config = uvicorn_config(
        make_app(plane), settings.host, settings.port, lifespan="on", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = settings.local_url()
    try:
        wait_http_ok(f"{url}/readyz", timeout=60)
        with httpx.Client(base_url=url, timeout=60) as http:
            yield Running(url, plane, http)
    finally:
        plane.manager.stop_all()
        server.should_exit = True
        thread.join(60)


def server_settings(home: Path, **kw: Any) -> ServerSettings:
    options: dict[str, Any] = {
        "home": home,
        "port": free_port(),
        "serving_port": free_port(),
        "max_running_trials": 2,
        "track": False,
    }
    options.update(kw)
    return ServerSettings(**options)


@pytest.fixture
def server(hyperflow_home: Path) -> Iterator[Running]:
    with serve_plane(server_settings(hyperflow_home)) as running:
        yield running


def isvc(
    name: str,
    folder: Path | None,
    storage: str = "./model/v1",
    *,
    namespace: str | None = None,
    **predictor: Any,
) -> dict[str, Any]:
    """A KServe sklearn InferenceService; ``folder``: where relative paths resolve."""
    metadata: dict[str, Any] = {"name": name}
    if folder is not None:
        metadata["annotations"] = {"hyperflow.io/base-dir": str(folder)}
    if namespace is not None:
        metadata["namespace"] = namespace
    model = {"modelFormat": {"name": "sklearn"}, "storageUri": storage}
    model.update(predictor.pop("model", {}))
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata,
        "spec": {"predictor": {"model": model, **predictor}},
    }


def wait_ready(
    http: httpx.Client, name: str, namespace: str = "default", timeout: float = 120
) -> dict[str, Any]:
    """The service once its Ready condition is True (fails at once if it failed)."""
    found: dict[str, Any] = {}

    def ready() -> bool:
        found.update(http.get(f"/apis/v1/namespaces/{namespace}/inferenceservices/{name}").json())
        condition = found["status"]["conditions"][-1]
        assert condition.get("reason") != "RevisionFailed", condition
        return condition["status"] == "True"

    wait_until(ready, timeout=timeout, interval=0.1)
    return found


V2_BODY = {
    "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [6.7, 3.0, 5.2, 2.3]}]
}
V1_BODY = {"instances": [[6.7, 3.0, 5.2, 2.3]]}
