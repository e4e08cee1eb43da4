"""Sample efficiency of ``bayesianoptimization``: scikit-optimize (now) vs optuna's GPSampler.

hyperflow's ``bayesianoptimization`` is scikit-optimize's ``Optimizer`` with Katib's
defaults (GP, 10 initial points, gp_hedge, acq_optimizer auto), run through the tuner's
own suggestion client. The peer is what it replaced: optuna's ``GPSampler`` (10 startup
trials, log-EI), which needs torch; it runs from its own venv under
``benchmarks/.venvs/gpsampler`` (created on first run with ``python -m venv`` + ``pip
install optuna scipy torch==2.13.0``, optuna and scipy at hyperflow's versions; pip takes a
CPU wheel of torch where one is on the machine, else downloads one). Random search is the baseline.

Each implementation minimises Branin (2-D, minimum 0.397887) and Hartmann-3 (3-D,
minimum -3.86278) sequentially (one trial at a time) for several seeds and reports the
simple regret (best value found - minimum) after 10, 20 and N trials, and the time per
suggestion once the model is used. Both run with one BLAS/torch thread
(``OMP_NUM_THREADS=1``), the fair setting on a shared 2-core machine.

    .venv/bin/python benchmarks/bayesopt.py [--trials 30] [--seeds 5]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
VENVS = Path(__file__).resolve().parent / ".venvs"
TORCH = "torch==2.13.0"

BRANIN_MIN = 0.397887
HARTMANN3_MIN = -3.86278
_A = [[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]]
_P = [
    [0.3689, 0.1170, 0.2673],
    [0.4699, 0.4387, 0.7470],
    [0.1091, 0.8732, 0.5547],
    [0.0381, 0.5743, 0.8828],
]
_ALPHA = [1.0, 1.2, 3.0, 3.2]


def branin(p: dict[str, float]) -> float:
    x1, x2 = p["x1"], p["x2"]
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def hartmann3(p: dict[str, float]) -> float:
    x = [p["x1"], p["x2"], p["x3"]]
    return -sum(
        _ALPHA[i] * math.exp(-sum(_A[i][j] * (x[j] - _P[i][j]) ** 2 for j in range(3)))
        for i in range(4)
    )


PROBLEMS: dict[
    str, tuple[Callable[[dict[str, float]], float], dict[str, tuple[float, float]], float]
] = {
    "branin": (branin, {"x1": (-5.0, 10.0), "x2": (0.0, 15.0)}, BRANIN_MIN),
    "hartmann3": (hartmann3, {f"x{i}": (0.0, 1.0) for i in (1, 2, 3)}, HARTMANN3_MIN),
}


# -- one run (in whichever venv the implementation lives) ----------------------------------


def run_hyperflow(algorithm: str, problem: str, seed: int, trials: int) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from tuner.spec.models import Experiment
    from tuner.suggestion import InProcessSuggestionClient
    from tuner.types import TrialPhase, TrialResult

    fn, bounds, _ = PROBLEMS[problem]
    experiment = Experiment.model_validate(
        {
            "metadata": {"name": "bench", "namespace": "bench"},
            "spec": {
                "objective": {"type": "minimize", "objectiveMetricName": "y"},
                "algorithm": {
                    "algorithmName": algorithm,
                    "algorithmSettings": [{"name": "random_state", "value": str(seed)}],
                },
                "parameters": [
                    {
                        "name": name,
                        "parameterType": "double",
                        "feasibleSpace": {"min": str(low), "max": str(high)},
                    }
                    for name, (low, high) in bounds.items()
                ],
            },
        }
    )
    client = InProcessSuggestionClient()
    values, seconds = [], []
    for _ in range(trials):
        start = time.perf_counter()
        (s,) = client.suggest(experiment, 1)
        seconds.append(time.perf_counter() - start)
        value = fn({k: float(v) for k, v in s.assignments.items()})
        values.append(value)
        client.report(
            experiment, TrialResult(s.trial_name, s.assignments, TrialPhase.SUCCEEDED, value)
        )
    return {"values": values, "seconds": seconds}


def run_gpsampler(problem: str, seed: int, trials: int) -> dict[str, Any]:
    import optuna
    from optuna.distributions import FloatDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    fn, bounds, _ = PROBLEMS[problem]
    distributions = {n: FloatDistribution(lo, hi) for n, (lo, hi) in bounds.items()}
    study = optuna.create_study(sampler=optuna.samplers.GPSampler(seed=seed, n_startup_trials=10))
    values, seconds = [], []
    for _ in range(trials):
        start = time.perf_counter()
        trial = study.ask(distributions)
        seconds.append(time.perf_counter() - start)
        value = fn(trial.params)
        values.append(value)
        study.tell(trial, value)
    return {"values": values, "seconds": seconds, "optuna": optuna.__version__}


# -- the driver ------------------------------------------------------------------------------


def gp_venv() -> Path:
    venv = VENVS / "gpsampler"
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if not marker.exists():
        import optuna
        import scipy

        # GPSampler's own requirements: torch and scipy (the versions hyperflow's venv has).
        packages = [f"optuna=={optuna.__version__}", f"scipy=={scipy.__version__}", TORCH]
        print(f"creating {venv} (pip install {' '.join(packages)}) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
        marker.touch()
    return python


def measure(impl: str, problem: str, seed: int, trials: int) -> dict[str, Any]:
    python = gp_venv() if impl == "gpsampler" else Path(sys.executable)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run(
        [str(python), __file__, "--one", impl, problem, str(seed), str(trials)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{impl} {problem} seed {seed} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def regret_after(values: list[float], n: int, minimum: float) -> float:
    return min(values[:n]) - minimum


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--one", nargs=4, metavar=("IMPL", "PROBLEM", "SEED", "TRIALS"))
    args = parser.parse_args()
    if args.one:
        impl, problem, seed, trials = args.one[0], args.one[1], int(args.one[2]), int(args.one[3])
        if impl == "gpsampler":
            result = run_gpsampler(problem, seed, trials)
        else:
            result = run_hyperflow(
                "bayesianoptimization" if impl == "skopt" else impl, problem, seed, trials
            )
        print(json.dumps(result))
        return

    impls = ["skopt", "gpsampler", "random"]
    checkpoints = sorted({10, 20, args.trials})
    print(f"{args.seeds} seeds, {args.trials} sequential trials each, OMP_NUM_THREADS=1")
    for problem, (_, _, minimum) in PROBLEMS.items():
        print(
            f"\n{problem} (minimum {minimum}): simple regret (best found - minimum), median [min-max] over seeds"
        )
        header = " | ".join(f"after {n}" for n in checkpoints)
        print(f"| implementation | {header} | ms/suggestion (model phase: median, p90) |")
        print("|---|" + "---|" * len(checkpoints) + "---|")
        for impl in impls:
            runs = [measure(impl, problem, seed, args.trials) for seed in range(1, args.seeds + 1)]
            cells = []
            for n in checkpoints:
                regrets = [regret_after(r["values"], n, minimum) for r in runs]
                cells.append(
                    f"{statistics.median(regrets):.4f} [{min(regrets):.4f}-{max(regrets):.4f}]"
                )
            model = sorted(s * 1000 for r in runs for s in r["seconds"][10:])
            p90 = model[int(0.9 * (len(model) - 1))] if model else float("nan")
            timing = f"{statistics.median(model):.1f}, {p90:.1f}" if model else "-"
            label = {
                "skopt": "hyperflow bayesianoptimization (skopt)",
                "gpsampler": "optuna GPSampler (torch)",
                "random": "hyperflow random",
            }[impl]
            print(f"| {label} | {' | '.join(cells)} | {timing} |", flush=True)


if __name__ == "__main__":
    main()
