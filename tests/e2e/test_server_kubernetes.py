"""``hyperflow server --backend kubernetes`` end to end: a real server process whose trials
are Jobs on the Kubernetes API stand-in (tests/kube/standin.py), run by the local kubelet
stand-in (tests/kube/kubelet.py) as local processes. Everything the server learns of a
trial comes over the API (Job and pod status, the pod's log) or, for the Push collector,
from inside the "pod" over HTTP to the server's push route."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.kube.kubelet import LocalKubelet
from tests.kube.standin import KubeApiStandIn
from tests.kube.trials import job, kubeconfig
from tests.util import REPO, free_port, hyperflow_cmd, running, wait_http_ok, wait_until

SQUARE = "import sys; x = float(sys.argv[1]); print(f'loss={x * x}')"
# Reports through the Push collector: tuner.report's report() over HTTP, with the URL,
# the token and the trial name the server put in the pod's environment.
PUSH = (
    "import sys\n"
    "from tuner.report import report\n"
    "x = float(sys.argv[1])\n"
    "report(step=0, loss=x * x + 1)\n"
    "report(step=1, loss=x * x)\n"
)


def _job(command: list[str], kind: tuple[str, str] = ("batch/v1", "Job")) -> dict[str, Any]:
    container = {
        "name": "training",
        "image": "python:3.12-slim",
        "command": command,
        "args": ["${trialParameters.x}"],
    }
    if kind[1] != "Job":  # a Kubeflow training job: one replica spec
        pod = {"spec": {"restartPolicy": "Never", "containers": [container]}}
        return {
            "apiVersion": kind[0],
            "kind": kind[1],
            "spec": {"pytorchReplicaSpecs": {"Master": {"replicas": 1, "template": pod}}},
        }
    return job(container)


def _experiment(
    name: str, trial_spec: dict[str, Any], *, trials: int, collector: str | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "objective": {"type": "minimize", "objectiveMetricName": "loss"},
        "algorithm": {
            "algorithmName": "random",
            "algorithmSettings": [{"name": "random_state", "value": "5"}],
        },
        "parallelTrialCount": min(2, trials),
        "maxTrialCount": trials,
        "parameters": [
            {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}
        ],
        "trialTemplate": {
            "primaryContainerName": "training",
            "trialParameters": [{"name": "x", "reference": "x"}],
            "trialSpec": trial_spec,
        },
    }
    if collector:
        spec["metricsCollectorSpec"] = {"collector": {"kind": collector}}
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": spec,
    }


@contextmanager
def _server(
    tmp_path: Path, api: KubeApiStandIn, home: str, *, flag: bool
) -> Iterator[httpx.Client]:
    """A ``hyperflow server`` process on the stand-in's cluster (found through
    ``$KUBECONFIG``, as kubectl), with the kubernetes backend chosen by ``--backend``
    (``flag``) or by ``HYPERFLOW_BACKEND``."""
    config = tmp_path / "kubeconfig"
    config.write_text(kubeconfig(api.url))
    port = free_port()
    args = ["server", "--port", str(port), "--serving-port", str(free_port())]
    env = {
        "KUBECONFIG": str(config),
        "HYPERFLOW_HOME": str(tmp_path / home),
        "HYPERFLOW_TRACK": "false",
        # Trials reach the API at this URL (in a cluster: the server's Service).
        "HYPERFLOW_PUSH_BASE_URL": f"http://localhost:{port}",
    }
    if flag:
        args += ["--backend", "kubernetes"]
        env["HYPERFLOW_BACKEND"] = "local"  # the flag wins
    else:
        env["HYPERFLOW_BACKEND"] = "kubernetes"
    log = open(tmp_path / f"{home}.log", "wb")  # noqa: SIM115 - closed below
    try:
        with running(hyperflow_cmd(*args), env=env, cwd=REPO, stdout=log, stderr=log) as proc:
            url = f"http://127.0.0.1:{port}"
            try:
                wait_http_ok(f"{url}/readyz", proc=proc, timeout=90)
            except Exception:
                raise AssertionError((tmp_path / f"{home}.log").read_text()[-3000:]) from None
            with httpx.Client(base_url=url, timeout=30) as http:
                yield http
    finally:
        log.close()


def _wait_finished(http: httpx.Client, name: str) -> dict[str, Any]:
    path = f"/apis/v1/namespaces/default/experiments/{name}"
    found: list[dict[str, Any]] = []

    def finished() -> bool:
        obj = http.get(path).json()
        types = {c["type"]: c["status"] for c in obj["status"].get("conditions", [])}
        if types.get("Succeeded") == "True" or types.get("Failed") == "True":
            found.append(obj)
            return True
        return False

    wait_until(finished, timeout=180, interval=0.1)
    return found[0]


def _trials(http: httpx.Client, name: str) -> list[dict[str, Any]]:
    got = http.get(f"/apis/v1/namespaces/default/experiments/{name}/trials").json()
    items: list[dict[str, Any]] = got["items"]
    return items


def _created(http: httpx.Client, body: dict[str, Any]) -> None:
    answer = http.post("/apis/v1/namespaces/default/experiments", json=body)
    assert answer.status_code == 201, answer.text


def test_server_backend_kubernetes_runs_trials_as_jobs_with_push_metrics(
    kube_api: KubeApiStandIn, tmp_path: Path
) -> None:
    kubelet = LocalKubelet(kube_api, tmp_path)
    with kubelet, _server(tmp_path, kube_api, "a", flag=True) as http:
        _created(http, _experiment("stdout", _job(["python", "-c", SQUARE]), trials=2))
        _created(
            http, _experiment("push", _job(["python", "-c", PUSH]), trials=2, collector="Push")
        )
        refused_spec = _job(["python", "-c", SQUARE], kind=("kubeflow.org/v1", "PyTorchJob"))
        _created(http, _experiment("refused", refused_spec, trials=1))

        stdout = _wait_finished(http, "stdout")
        assert stdout["status"]["trialsSucceeded"] == 2, stdout["status"]
        for trial in _trials(http, "stdout"):
            x = float(trial["spec"]["parameterAssignments"][0]["value"])
            [loss] = trial["status"]["observation"]["metrics"]
            assert float(loss["latest"]) == x * x

        push = _wait_finished(http, "push")
        assert push["status"]["trialsSucceeded"] == 2, push["status"]
        for trial in _trials(http, "push"):
            x = float(trial["spec"]["parameterAssignments"][0]["value"])
            [loss] = trial["status"]["observation"]["metrics"]
            # Both reports arrived (once each), from inside the pod over HTTP.
            assert float(loss["latest"]) == x * x and float(loss["max"]) == x * x + 1
            name = trial["metadata"]["name"]
            # The server injected where to report and the trial's own token.
            env = {e["name"]: e["value"] for e in kubelet.containers[name]["env"]}
            assert env["HYPERFLOW_PUSH_URL"] == (
                f"{http.base_url}".replace("127.0.0.1", "localhost").rstrip("/")
                + "/apis/v1/namespaces/default/experiments/push"
            )
            assert len(env["HYPERFLOW_PUSH_TOKEN"]) == 32 and env["HYPERFLOW_TRIAL_NAME"] == name
            log = http.get(f"/apis/v1/namespaces/default/experiments/push/trials/{name}/log")
            assert log.status_code == 200 and "Traceback" not in log.text

        # The cluster does not serve the kind: the trial is Failed with the API's reason,
        # and the experiment Failed (not left pending, not Succeeded).
        refused = _wait_finished(http, "refused")
        types = {c["type"]: c["status"] for c in refused["status"]["conditions"]}
        assert types.get("Failed") == "True" and types.get("Succeeded") != "True"
        [trial] = _trials(http, "refused")
        condition = trial["status"]["conditions"][0]
        assert condition["type"] == "Failed"
        assert "does not serve kubeflow.org/v1" in condition["message"], condition

    # Every trial that ran was a Job in the stand-in (validated), deleted once done.
    jobs = [d for d in kube_api.deletions if d.get("kind", "Job") == "Job"]
    assert len(jobs) >= 4
    assert kube_api.objects("batch/v1", "Job") == []


def test_hyperflow_backend_env_chooses_kubernetes_for_the_server(
    kube_api: KubeApiStandIn, tmp_path: Path
) -> None:
    with LocalKubelet(kube_api, tmp_path), _server(tmp_path, kube_api, "b", flag=False) as http:
        _created(http, _experiment("by-env", _job(["python", "-c", SQUARE]), trials=1))
        done = _wait_finished(http, "by-env")
        assert done["status"]["trialsSucceeded"] == 1, json.dumps(done["status"])
    [deleted] = kube_api.deletions
    assert deleted["name"].startswith("by-env")
