"""Trial throughput: hyperflow's controller against the floor and against Ray Tune.

1. 100 no-op command trials at parallelTrialCount 2, against the floor of spawning the
   same 100 processes two at a time (target: <= 1.3x the floor). Two no-op trials: a
   Python one-liner (what a trial script costs to start) and /bin/echo (pure overhead).
2. 100 SDK function trials (a no-op function) at concurrency 2, against Ray Tune running
   the same function with ``max_concurrent_trials=2`` (target: >= 20x faster).

Run:  .venv/bin/python benchmarks/trials.py [--trials 100] [--skip-ray]
Each run uses a fresh HYPERFLOW_HOME in a temporary folder. MLflow logging is on (the
default), as a user would run it, into one MLflow SQLite store created before timing
starts (a user's store exists already: creating one runs MLflow's schema migrations,
seconds of work); a second row shows MLflow off.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _experiment(name: str, command: list[str], trials: int, parallel: int) -> Any:
    from tuner.spec import parse_experiment

    return parse_experiment(
        {
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
                "trialTemplate": {
                    "trialParameters": [{"name": "x", "reference": "x"}],
                    "command": command,
                },
            },
        }
    )


def floor(commands: list[list[str]], parallel: int) -> float:
    """Spawn the commands ``parallel`` at a time, output to a file, wait for each."""
    start = time.perf_counter()
    running: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, cmd in enumerate(commands):
            while len(running) >= parallel:
                # wait for whichever finishes first (os.wait), as a scheduler would
                pid, _ = os.wait()
                running = [p for p in running if p.pid != pid]
                for p in running:
                    p.poll()
            with open(Path(tmp) / f"{i}.log", "wb") as log:
                running.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
        for p in running:
            p.wait()
    return time.perf_counter() - start


def hyperflow_commands(
    name: str, command: list[str], trials: int, parallel: int, track: bool
) -> tuple[float, int]:
    from tuner.runner import run_experiment
    from tuner.settings import TunerSettings

    with tempfile.TemporaryDirectory() as home:
        settings = TunerSettings(home=Path(home))
        experiment = _experiment(name, command, trials, parallel)
        start = time.perf_counter()
        outcome = run_experiment(experiment, settings=settings, track=track)
        elapsed = time.perf_counter() - start
        from tuner.store import Store

        store = Store(settings.store_url)
        succeeded = sum(1 for t in store.trials(outcome.record.uid) if t.phase.value == "Succeeded")
        store.close()
    return elapsed, succeeded


def noop(parameters: dict[str, float]) -> dict[str, float]:
    return {"loss": parameters["x"]}


def hyperflow_functions(trials: int, parallel: int, track: bool) -> tuple[float, int]:
    from tuner.sdk import search, tune
    from tuner.settings import TunerSettings

    with tempfile.TemporaryDirectory() as home:
        start = time.perf_counter()
        result = tune(
            name="bench-functions",
            objective=noop,
            parameters={"x": search.double(min=0, max=1)},
            objective_metric_name="loss",
            objective_type="minimize",
            max_trial_count=trials,
            parallel_trial_count=parallel,
            track=track,
            settings=TunerSettings(home=Path(home)),
        )
        elapsed = time.perf_counter() - start
    return elapsed, sum(1 for t in result.trials if t.phase.value == "Succeeded")


def ray_tune(trials: int, parallel: int) -> tuple[float, float, int]:
    import ray
    from ray import tune as rtune

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        ray.init(
            num_cpus=os.cpu_count(),
            include_dashboard=False,
            log_to_driver=False,
            logging_level="ERROR",
        )
        t_init = time.perf_counter() - t0

        def trainable(config: dict[str, float]) -> dict[str, float]:
            return {"loss": config["x"]}

        tuner = rtune.Tuner(
            trainable,
            param_space={"x": rtune.uniform(0, 1)},
            tune_config=rtune.TuneConfig(
                num_samples=trials, max_concurrent_trials=parallel, metric="loss", mode="min"
            ),
            run_config=ray.tune.RunConfig(storage_path=tmp, verbose=0),
        )
        start = time.perf_counter()
        results = tuner.fit()
        elapsed = time.perf_counter() - start
        ok = sum(1 for r in results if r.error is None)
        ray.shutdown()
    return elapsed, t_init, ok


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()
    n, par = args.trials, args.parallel
    mlflow_dir = tempfile.mkdtemp(prefix="hyperflow-bench-mlflow-")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{mlflow_dir}/mlflow.db"
    import mlflow

    mlflow.MlflowClient().search_experiments()  # create the store (migrations) before timing
    rows: list[tuple[str, str, str]] = []

    print(f"== {n} no-op command trials, {par} at a time ==")
    variants = {
        "python -c": ["python", "-c", "print('loss=${trialParameters.x}')"],
        "/bin/echo": ["/bin/echo", "loss=${trialParameters.x}"],
    }
    for label, template in variants.items():
        argv0 = sys.executable if template[0] == "python" else template[0]
        commands = [
            [argv0, *[a.replace("${trialParameters.x}", str(i / n)) for a in template[1:]]]
            for i in range(n)
        ]
        floor(commands[:10], par)  # warm the page cache for the interpreter / binary
        t_floor_first = floor(commands, par)
        t_hf, ok = hyperflow_commands(
            f"bench-{label.strip('/-').replace(' ', '-').replace('/', '-')}",
            template,
            n,
            par,
            track=True,
        )
        t_hf_nomlflow, _ = hyperflow_commands("bench-nomlflow", template, n, par, track=False)
        # The floor is measured before and after hyperflow; the faster one counts.
        t_floor = min(t_floor_first, floor(commands, par))
        print(
            f"{label:10s} floor {t_floor:6.2f}s | hyperflow {t_hf:6.2f}s ({ok} ok) ratio {t_hf / t_floor:4.2f}x "
            f"| without MLflow {t_hf_nomlflow:6.2f}s ratio {t_hf_nomlflow / t_floor:4.2f}x"
        )
        rows.append(
            (
                f"{n} command trials ({label}), MLflow on",
                f"{t_hf:.2f} s vs floor {t_floor:.2f} s",
                f"{t_hf / t_floor:.2f}x",
            )
        )
        rows.append(
            (
                f"{n} command trials ({label}), MLflow off",
                f"{t_hf_nomlflow:.2f} s vs floor {t_floor:.2f} s",
                f"{t_hf_nomlflow / t_floor:.2f}x",
            )
        )

    print(f"\n== {n} SDK function trials, {par} at a time ==")
    t_fn, ok = hyperflow_functions(n, par, track=True)
    t_fn_off, _ = hyperflow_functions(n, par, track=False)
    print(
        f"hyperflow tune(): {t_fn:.2f}s ({ok} ok, {t_fn / n * 1000:.1f} ms/trial); without MLflow {t_fn_off:.2f}s"
    )
    if not args.skip_ray:
        t_ray, t_init, ok_ray = ray_tune(n, par)
        print(
            f"Ray Tune: {t_ray:.2f}s ({ok_ray} ok, {t_ray / n * 1000:.0f} ms/trial) + ray.init {t_init:.2f}s"
        )
        print(
            f"speed-up vs Ray Tune: {t_ray / t_fn:.1f}x (with MLflow), {t_ray / t_fn_off:.1f}x (without)"
        )
        rows.append(
            (
                f"{n} function trials vs Ray Tune, MLflow on",
                f"{t_fn:.2f} s vs {t_ray:.2f} s",
                f"{t_ray / t_fn:.1f}x faster",
            )
        )
        rows.append(
            (
                f"{n} function trials vs Ray Tune, MLflow off",
                f"{t_fn_off:.2f} s vs {t_ray:.2f} s",
                f"{t_ray / t_fn_off:.1f}x faster",
            )
        )

    print("\n| work | time | ratio |\n|---|---|---|")
    for row in rows:
        print(f"| {row[0]} | {row[1]} | {row[2]} |")


if __name__ == "__main__":
    main()
