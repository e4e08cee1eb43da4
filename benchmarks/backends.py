"""Trial backends: hyperflow's per-trial overhead on a cluster backend against the peer.

Sections (run all, or some with ``--only``):

* ``ray`` — the same 100 trivial trials (``return {"loss": x}``) at concurrency 2 on the
  same local Ray (``ray.init(num_cpus=2)``, started once, timed apart): hyperflow's
  ``tune(backend="ray")`` (a warm pool of 2 Ray actors; each trial a streaming actor call
  plus the controller's store writes) against Ray Tune's ``Tuner.fit()`` of the same
  function with ``max_concurrent_trials=2`` (target: hyperflow >= 5x faster per trial).
  A second row runs 100 command trials (``python -c``) as Ray tasks through
  ``experiment run --backend ray``'s code path, for scale (each starts an interpreter).

Run:  .venv/bin/python benchmarks/backends.py [--trials 100] [--only ray|kubernetes]
Each hyperflow run uses a fresh HYPERFLOW_HOME in a temporary folder, MLflow off (the
peer has no tracking store either).

* ``kubernetes`` — 100 trivial trials at parallelTrialCount 2 through the real controller
  and the kubernetes backend, against the Kubernetes API stand-in (tests/kube/standin.py)
  running in **another process** together with an instant "kubelet" (each Job's pod runs
  at once, prints ``loss=...`` and completes). The figure is the controller's own work
  per trial: the CPU time of the controller's process (rendering, the API calls' client
  side, the watches, following the log, parsing, the store), which excludes the API
  server's; wall time per trial is printed beside it. The local backend's controller CPU
  per trial (``echo`` trials; the processes' own CPU is not the controller's) is the
  reference.

A new section is a function ``section_<name>(args) -> list[Row]`` added to ``SECTIONS``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.experiments import command_experiment  # noqa: E402

_ECHO = ["echo", "loss=${trialParameters.x}"]


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
            experiment = command_experiment("bench-kube", _ECHO, trials, parallel, job=True)
            backend = KubernetesBackend(experiment, client=client)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            outcome = run_experiment(
                experiment,
                settings=TunerSettings(home=Path(home)),
                backend=backend,
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
        experiment = command_experiment("bench-kube", _ECHO, trials, parallel)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        outcome = run_experiment(experiment, settings=TunerSettings(home=Path(home)), track=False)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    if outcome.record.phase.value != "Succeeded":
        raise RuntimeError(f"the experiment ended {outcome.record.phase.value}")
    return {"cpu_ms_per_trial": cpu / trials * 1000, "wall_ms_per_trial": wall / trials * 1000}


@dataclass
class Row:
    work: str
    hyperflow: float  # seconds for all trials
    peer: str  # the peer's name
    peer_seconds: float | None
    trials: int

    def line(self) -> str:
        ours = f"{self.hyperflow:.2f} s ({self.hyperflow / self.trials * 1000:.1f} ms/trial)"
        if self.peer_seconds is None:
            return f"{self.work}: hyperflow {ours}"
        theirs = (
            f"{self.peer_seconds:.2f} s ({self.peer_seconds / self.trials * 1000:.1f} ms/trial)"
        )
        ratio = self.peer_seconds / self.hyperflow
        return f"{self.work}: hyperflow {ours}; {self.peer} {theirs}; hyperflow {ratio:.1f}x faster per trial"


def trivial(parameters: dict[str, float]) -> dict[str, float]:
    return {"loss": parameters["x"]}


def section_ray(args: argparse.Namespace) -> list[Row]:
    import ray
    from ray import tune as rtune

    from tuner.runner import run_experiment
    from tuner.sdk import search, tune
    from tuner.settings import TunerSettings

    n, parallel = args.trials, 2
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    print(f"ray.init: {time.perf_counter() - t0:.1f} s (not counted)", flush=True)
    rows: list[Row] = []
    try:
        with tempfile.TemporaryDirectory() as home:
            start = time.perf_counter()
            result = tune(
                name="bench-ray",
                objective=trivial,
                parameters={"x": search.double(min=0, max=1)},
                objective_metric_name="loss",
                objective_type="minimize",
                max_trial_count=n,
                parallel_trial_count=parallel,
                track=False,
                backend="ray",
                settings=TunerSettings(home=Path(home)),
            )
            ours = time.perf_counter() - start
            ok = sum(1 for t in result.trials if t.phase.value == "Succeeded")
            assert ok == n, f"hyperflow: only {ok} of {n} trials succeeded"
        print(f"hyperflow tune(backend='ray'): {ours:.2f} s", flush=True)

        with tempfile.TemporaryDirectory() as tmp:
            tuner = rtune.Tuner(
                trivial,
                param_space={"x": rtune.uniform(0, 1)},
                tune_config=rtune.TuneConfig(
                    num_samples=n, max_concurrent_trials=parallel, metric="loss", mode="min"
                ),
                run_config=rtune.RunConfig(storage_path=tmp, verbose=0),
            )
            start = time.perf_counter()
            results = tuner.fit()
            theirs = time.perf_counter() - start
            ok = sum(1 for r in results if r.error is None)
            assert ok == n, f"Ray Tune: only {ok} of {n} trials succeeded"
        rows.append(Row(f"{n} function trials, concurrency 2", ours, "Ray Tune", theirs, n))
        print(rows[-1].line(), flush=True)

        if not args.skip_commands:
            with tempfile.TemporaryDirectory() as home:
                settings = TunerSettings(home=Path(home), backend="ray")
                start = time.perf_counter()
                command = ["python", "-c", "import sys; print('loss=' + sys.argv[1])"]
                experiment = command_experiment(
                    "bench-ray-commands", [*command, "${trialParameters.x}"], n, parallel
                )
                outcome = run_experiment(experiment, settings=settings, track=False)
                took = time.perf_counter() - start
                assert outcome.record.phase.value == "Succeeded", outcome.record.message
            rows.append(Row(f"{n} command trials (python -c) as Ray tasks", took, "", None, n))
            print(rows[-1].line(), flush=True)
    finally:
        ray.shutdown()
    return rows


def section_kubernetes(args: argparse.Namespace) -> list[Row]:
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
        f"wall {kube['wall_ms_per_trial']:.1f} ms/trial",
        flush=True,
    )
    return []


SECTIONS: dict[str, Callable[[argparse.Namespace], list[Row]]] = {
    "ray": section_ray,
    "kubernetes": section_kubernetes,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append")
    parser.add_argument("--skip-commands", action="store_true", help="only the function trials")
    args = parser.parse_args()
    rows: list[Row] = []
    for name in args.only or list(SECTIONS):
        print(f"== {name}", flush=True)
        rows += SECTIONS[name](args)
    print("\nsummary:")
    for row in rows:
        print(" ", row.line())


if __name__ == "__main__":
    main()
