"""Time per suggestion: hyperflow's suggestion clients against bare optuna ``ask()``.

For tpe and random, with 10 / 100 / 1000 finished trials in the study, measure one
suggestion (``suggest(experiment, 1)``) in-process and over HTTP (a real local
``hyperflow suggestion serve`` process), against ``study.ask(distributions)`` on a bare
optuna study with the same sampler settings, the same search space and the same history.
The three are measured interleaved (one of each per round) so load drift on a shared
machine hits all of them alike; the tell/report after each suggestion is not timed.

    .venv/bin/python benchmarks/suggest.py [--rounds 40]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import optuna

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tuner.spec.models import Experiment  # noqa: E402
from tuner.suggestion import HttpSuggestionClient, InProcessSuggestionClient  # noqa: E402
from tuner.suggestion.space import SearchSpace  # noqa: E402
from tuner.types import TrialPhase, TrialResult  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)

PARAMETERS = [
    {
        "name": "lr",
        "parameterType": "double",
        "feasibleSpace": {"min": "0.0001", "max": "0.1", "distribution": "logUniform"},
    },
    {"name": "momentum", "parameterType": "double", "feasibleSpace": {"min": "0.5", "max": "0.99"}},
    {"name": "layers", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "8"}},
    {
        "name": "optimizer",
        "parameterType": "categorical",
        "feasibleSpace": {"list": ["sgd", "adam", "rmsprop"]},
    },
]


def experiment(algorithm: str, name: str) -> Experiment:
    return Experiment.model_validate(
        {
            "metadata": {"name": name, "namespace": "bench"},
            "spec": {
                "objective": {"type": "minimize", "objectiveMetricName": "loss"},
                "algorithm": {
                    "algorithmName": algorithm,
                    "algorithmSettings": [{"name": "random_state", "value": "1"}],
                },
                "parameters": PARAMETERS,
            },
        }
    )


def loss(a: dict[str, Any]) -> float:
    return abs(float(a["lr"]) - 0.01) + (float(a["momentum"]) - 0.9) ** 2 + int(a["layers"]) / 10


def history(n: int, space: SearchSpace, prefix: str) -> list[TrialResult]:
    rng = random.Random(n)
    out = []
    for i in range(n):
        a = {
            "lr": 10 ** rng.uniform(-4, -1),
            "momentum": rng.uniform(0.5, 0.99),
            "layers": rng.randint(1, 8),
            "optimizer": rng.choice(["sgd", "adam", "rmsprop"]),
        }
        out.append(TrialResult(f"{prefix}-{i:08d}", a, TrialPhase.SUCCEEDED, loss(a)))
    return out


def bare_study(algorithm: str, space: SearchSpace, trials: list[TrialResult]) -> optuna.Study:
    sampler: optuna.samplers.BaseSampler
    if algorithm == "tpe":
        sampler = optuna.samplers.TPESampler(seed=1)
    else:
        sampler = optuna.samplers.RandomSampler(seed=1)
    study = optuna.create_study(sampler=sampler, pruner=optuna.pruners.NopPruner())
    dists = space.distributions()
    study.add_trials(
        [
            optuna.trial.create_trial(
                params=space.typed(dict(t.assignments)),
                distributions=dists,
                value=t.objective_value,
            )
            for t in trials
        ]
    )
    return study


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_service(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hyperflow", "suggestion", "serve", "--port", str(port)],
        cwd=REPO,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("suggestion service exited early")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/suggestion/healthz").status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError("suggestion service not ready")


def stop_service(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGINT)  # its own group, started above
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def measure(algorithm: str, n: int, rounds: int, url: str) -> dict[str, float]:
    space = SearchSpace.from_specs(experiment(algorithm, "x").spec.parameters)
    dists = space.distributions()
    name = f"{algorithm}-{n}"
    exp = experiment(algorithm, name)
    trials = history(n, space, name)
    study = bare_study(algorithm, space, trials)
    inproc = InProcessSuggestionClient()
    inproc.restore(exp, trials)
    remote = HttpSuggestionClient(url)
    remote.restore(exp, trials)
    times: dict[str, list[float]] = {"optuna": [], "inprocess": [], "http": []}

    def bare() -> None:
        t0 = time.perf_counter()
        trial = study.ask(dists)
        times["optuna"].append(time.perf_counter() - t0)
        study.tell(trial, loss(trial.params))

    def ours(client: Any, key: str) -> None:
        t0 = time.perf_counter()
        [s] = client.suggest(exp, 1)
        times[key].append(time.perf_counter() - t0)
        client.report(
            exp, TrialResult(s.trial_name, s.assignments, TrialPhase.SUCCEEDED, loss(s.assignments))
        )

    for i in range(rounds + 3):  # 3 warm-up rounds, not kept
        order = [bare, lambda: ours(inproc, "inprocess"), lambda: ours(remote, "http")]
        for f in order[i % 3 :] + order[: i % 3]:
            f()
        if i == 2:
            for v in times.values():
                v.clear()
    remote.close(name)
    remote.shutdown()
    stats = {k: statistics.median(v) * 1000 for k, v in times.items()}
    stats.update({f"min-{k}": min(v) * 1000 for k, v in times.items()})
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    port = free_port()
    proc = start_service(port)
    rows = []
    try:
        for algorithm in ("random", "tpe"):
            for n in (10, 100, 1000):
                rows.append(
                    (algorithm, n, measure(algorithm, n, args.rounds, f"http://127.0.0.1:{port}"))
                )
    finally:
        stop_service(proc)
    for stat, label in (("", "median"), ("min-", "minimum")):
        print(
            f"\n{label} ms per suggestion, {args.rounds} rounds each (optuna {optuna.__version__})"
        )
        print(
            f"{'algorithm':<10}{'trials':>7}{'optuna ask':>12}{'in-process':>12}{'http':>10}"
            f"{'inproc/optuna':>15}{'http - inproc':>15}"
        )
        for algorithm, n, t in rows:
            bare, inproc, http = t[f"{stat}optuna"], t[f"{stat}inprocess"], t[f"{stat}http"]
            print(
                f"{algorithm:<10}{n:>7}{bare:>12.3f}{inproc:>12.3f}{http:>10.3f}"
                f"{inproc / bare:>14.2f}x{http - inproc:>12.3f} ms"
            )


if __name__ == "__main__":
    main()
