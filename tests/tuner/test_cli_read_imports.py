"""The read commands stay fast: they never load mlflow, optuna, scikit-learn (or the like).

Not a timing test (benchmarks/cli.py measures the time): it checks what each command
imports, which is what decides the time, on a store whose experiment has MLflow runs and
saved models (so ``best`` looks its MLflow run up).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.util import REPO
from tuner.runner import run_experiment
from tuner.spec import parse_experiment

HEAVY = ("mlflow", "optuna", "sklearn", "skopt", "scipy", "torch", "pandas")
# What the command imported, reported when the interpreter exits (after typer's exit).
PROBE = textwrap.dedent(
    f"""
    import atexit, sys
    atexit.register(
        lambda: print("LOADED", [m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)
    )
    from hyperflow.entry import main
    sys.argv = ["hyperflow", *sys.argv[1:]]
    main()
    """
)
TRIAL = textwrap.dedent(
    """
    import os, pathlib, sys
    artifacts = pathlib.Path(os.environ["HYPERFLOW_ARTIFACTS_DIR"]) / "model"
    artifacts.mkdir(parents=True)
    (artifacts / "weights.txt").write_text(sys.argv[1])
    print(f"loss={float(sys.argv[1]) ** 2}")
    """
)


def test_read_commands_load_no_heavy_module(tmp_path: Path, mlflow_db: Path) -> None:
    (tmp_path / "trial.py").write_text(TRIAL)
    experiment = parse_experiment(
        {
            "apiVersion": "kubeflow.org/v1beta1",
            "kind": "Experiment",
            "metadata": {"name": "reads"},
            "spec": {
                "objective": {"type": "minimize", "objectiveMetricName": "loss"},
                "algorithm": {"algorithmName": "random"},
                "parallelTrialCount": 2,
                "maxTrialCount": 2,
                "parameters": [
                    {
                        "name": "x",
                        "parameterType": "double",
                        "feasibleSpace": {"min": "0", "max": "1"},
                    }
                ],
                "trialTemplate": {
                    "trialParameters": [{"name": "x", "reference": "x"}],
                    "command": ["python", "trial.py", "${trialParameters.x}"],
                },
            },
        },
        base_dir=tmp_path,
    )
    outcome = run_experiment(experiment, track=True)
    assert outcome.unwritten is None and outcome.record.phase.value == "Succeeded"
    for command in (
        ["--version"],
        ["experiment", "list"],
        ["experiment", "get", "reads"],
        ["experiment", "get", "reads", "-o", "yaml"],
        ["experiment", "describe", "reads"],
        ["experiment", "trials", "reads"],
        ["experiment", "best", "reads"],
        ["experiment", "logs", "reads"],
    ):
        done = subprocess.run(
            [sys.executable, "-c", PROBE, *command],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, (command, done.stderr[-2000:])
        assert "LOADED []" in done.stderr, (command, done.stderr[-2000:])
        if command[1:2] == ["best"]:
            assert "storageUri: runs:/" in done.stdout, done.stdout  # found without mlflow
