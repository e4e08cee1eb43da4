"""Time of the read commands, against the floor of starting Python with the CLI libraries.

``hyperflow experiment list|get|describe|trials|best|logs`` and ``hyperflow --version``,
each run as a fresh process (what a user types) on a store holding the demo experiment
(``sklearn-digits``: 12 trials logged to MLflow, each with a saved model, so ``best`` also
finds the best trial's MLflow run). The floor is ``python -c "import typer, rich"``: a
command cannot start faster than its CLI libraries load. "Warm machine": the bytecode of
hyperflow and its dependencies is compiled first (``compileall``) and each command runs
once before it is timed, so the files are in the page cache.

    .venv/bin/python benchmarks/cli.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "experiments" / "sklearn-digits.yaml"
COMMANDS = [
    ["--version"],
    ["experiment", "list"],
    ["experiment", "get", "sklearn-digits"],
    ["experiment", "get", "sklearn-digits", "-o", "json"],
    ["experiment", "describe", "sklearn-digits"],
    ["experiment", "trials", "sklearn-digits"],
    ["experiment", "best", "sklearn-digits"],
    ["experiment", "logs", "sklearn-digits"],
]


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        argv, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    for folder in (
        sysconfig.get_paths()["purelib"],
        *(str(REPO / p) for p in ("hyperflow", "tuner", "serving")),
    ):
        compileall.compile_dir(folder, quiet=2, workers=2)
    home = Path(tempfile.mkdtemp(prefix="hyperflow-cli-bench-"))
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MLFLOW_TRACKING_URI", "PYTHONDONTWRITEBYTECODE")
    }
    env.update({"HYPERFLOW_HOME": str(home), "COLUMNS": "200"})
    hyperflow = [sys.executable, "-m", "hyperflow"]
    try:
        print(f"setting up: {EXAMPLE.name} into {home} ...", flush=True)
        subprocess.run(
            [*hyperflow, "experiment", "run", "-f", str(EXAMPLE)],
            env=env,
            cwd=REPO,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        floor_argv = [sys.executable, "-c", "import typer, rich"]
        rows = []
        timed(floor_argv, env)
        for command in COMMANDS:
            timed([*hyperflow, *command], env)  # warm-up
        samples: dict[str, list[float]] = {"floor": []}
        for _ in range(args.rounds):  # interleaved, so load drift hits all alike
            samples["floor"].append(timed(floor_argv, env))
            for command in COMMANDS:
                samples.setdefault(" ".join(command), []).append(timed([*hyperflow, *command], env))
        floor = statistics.median(samples["floor"])
        print(f"\n{args.rounds} rounds; load average {os.getloadavg()[0]:.1f}")
        print("| command | median s | min s | vs floor (median) |")
        print("|---|---:|---:|---:|")
        for name, values in samples.items():
            median = statistics.median(values)
            label = (
                "floor: python -c 'import typer, rich'" if name == "floor" else f"hyperflow {name}"
            )
            rows.append(f"| {label} | {median:.3f} | {min(values):.3f} | {median / floor:.2f}x |")
        print("\n".join(rows))
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
