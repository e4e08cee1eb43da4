"""Per-trial overhead of the trial backends.

kubernetes (``bench_kubernetes``): 100 trivial trials at parallelTrialCount 2 through the
real controller and the kubernetes backend, against the Kubernetes API stand-in
(tests/kube/standin.py) running in **another process** together with an instant
"kubelet" (each Job's pod runs at once, prints ``loss=...`` and completes). The figure
is the controller's own work per trial: the CPU time of the controller's process
(rendering, the API calls' client side, the watches, following the log, parsing,
the store), which excludes the API server's; wall time per trial is printed beside it.

The local backend's controller CPU per trial (``echo`` trials; the processes' own CPU is
not the controller's) is printed first, as the reference.

Run:  .venv/bin/python benchmarks/backends.py [--trials 100] [--only kubernetes]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

_STANDIN = """
import sys, threading, time
from tests.kube.standin import KubeApiStandIn

api = KubeApiStandIn().start()
print(api.url, flush=True)
seen = set()
def kubelet():
    while True:
        for job in api.objects("batch/v1", "Job", "default"):
            uid = job["metadata"]["uid"]
            if uid in seen:
                continue
            seen.add(uid)
            try:
                pod = api.simulate_job_pod(job["metadata"]["name"])
                api.simulate_log(pod, "loss=0.5\\n")
                api.simulate_job_finished(job["metadata"]["name"], 0)
            except Exception:
                pass
        time.sleep(0.002)
threading.Thread(target=kubelet, daemon=True).start()
sys.stdin.read()
"""


def _experiment(trials: int, parallel: int, local: bool = False) -> Any:
    from tuner.spec import parse_experiment

    return parse_experiment(
        {
            "apiVersion": "kubeflow.org/v1beta1",
            "kind": "Experiment",
            "metadata": {"name": "bench-kube"},
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
                "trialTemplate": {
                    "trialParameters": [{"name": "x", "reference": "x"}],
                    "command": ["echo", "loss=${trialParameters.x}"],
                }
                if local
                else {
                    "primaryContainerName": "trial",
                    "trialParameters": [{"name": "x", "reference": "x"}],
                    "trialSpec": {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "spec": {
                            "backoffLimit": 0,
                            "template": {
                                "spec": {
                                    "restartPolicy": "Never",
                                    "containers": [
                                        {
                                            "name": "trial",
                                            "image": "busybox:1.36",
                                            "command": ["echo", "loss=${trialParameters.x}"],
                                        }
                                    ],
                                }
                            },
                        },
                    },
                },
            },
        }
    )


def bench_kubernetes(trials: int = 100, parallel: int = 2) -> dict[str, float]:
    """Controller CPU and wall time per trial on the kubernetes backend (module doc)."""
    from serving.kube.client import KubeClient
    from tuner.backends.kubernetes import KubernetesBackend
    from tuner.runner import run_experiment
    from tuner.settings import TunerSettings

    standin = subprocess.Popen(
        [sys.executable, "-c", _STANDIN],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert standin.stdout is not None
        url = standin.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as home, KubeClient(host=url) as client:
            experiment = _experiment(trials, parallel)
            backend = KubernetesBackend(experiment, client=client)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            outcome = run_experiment(
                experiment,
                settings=TunerSettings(home=Path(home)),
                backend=backend,
                backend_kind="kubernetes",
                track=False,
            )
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        if outcome.record.phase.value != "Succeeded":
            raise RuntimeError(f"the experiment ended {outcome.record.phase.value}")
    finally:
        if standin.stdin is not None:
            standin.stdin.close()
        standin.terminate()
        standin.wait(30)
    return {"cpu_ms_per_trial": cpu / trials * 1000, "wall_ms_per_trial": wall / trials * 1000}


def bench_local_controller(trials: int = 100, parallel: int = 2) -> dict[str, float]:
    """The same figures for the local backend (``echo`` as a process): the controller's
    CPU per trial there is the reference for the kubernetes backend's."""
    from tuner.runner import run_experiment
    from tuner.settings import TunerSettings

    with tempfile.TemporaryDirectory() as home:
        experiment = _experiment(trials, parallel, local=True)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        outcome = run_experiment(experiment, settings=TunerSettings(home=Path(home)), track=False)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    if outcome.record.phase.value != "Succeeded":
        raise RuntimeError(f"the experiment ended {outcome.record.phase.value}")
    return {"cpu_ms_per_trial": cpu / trials * 1000, "wall_ms_per_trial": wall / trials * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--only", choices=["kubernetes"], default=None)
    args = parser.parse_args()
    os.environ.setdefault("HYPERFLOW_TRACK", "false")
    local = bench_local_controller(args.trials)
    kube = bench_kubernetes(args.trials)
    print(
        f"local backend, {args.trials} echo trials at concurrency 2: controller CPU "
        f"{local['cpu_ms_per_trial']:.1f} ms/trial, wall {local['wall_ms_per_trial']:.1f} ms/trial"
    )
    print(
        f"kubernetes backend, {args.trials} trials at concurrency 2 against the API stand-in "
        f"(another process): controller CPU {kube['cpu_ms_per_trial']:.1f} ms/trial "
        f"({kube['cpu_ms_per_trial'] / local['cpu_ms_per_trial']:.2f}x the local backend's), "
        f"wall {kube['wall_ms_per_trial']:.1f} ms/trial"
    )


if __name__ == "__main__":
    main()
