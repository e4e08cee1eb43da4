"""SIGKILL the process running an experiment, run the same command again: it resumes.

No trial is lost, none runs twice (each trial appends its name to a ledger when it starts),
counts are right, and MLflow has one run per trial.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.util import REPO, hyperflow_cmd, run_hyperflow, running, wait_until
from tuner.settings import TunerSettings
from tuner.store import Store

TRIAL = textwrap.dedent(
    """
    import os, sys, time
    x = float(sys.argv[1])
    with open(os.environ["LEDGER"], "a") as f:
        f.write(os.environ["HYPERFLOW_TRIAL_NAME"] + "\\n")
    time.sleep(float(os.environ.get("TRIAL_SECONDS", "0.6")))
    print(f"loss={(x - 0.3) ** 2:.6f}", flush=True)
    """
)


def _write_experiment(folder: Path, max_trials: int = 8) -> Path:
    (folder / "trial.py").write_text(TRIAL)
    spec = {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": "resume-me"},
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": "loss"},
            "algorithm": {
                "algorithmName": "random",
                "algorithmSettings": [{"name": "random_state", "value": "5"}],
            },
            "parallelTrialCount": 2,
            "maxTrialCount": max_trials,
            "parameters": [
                {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}
            ],
            "trialTemplate": {
                "trialParameters": [{"name": "x", "reference": "x"}],
                "command": ["python", "trial.py", "${trialParameters.x}"],
                "env": {"LEDGER": str(folder / "ledger.txt")},
            },
        },
    }
    path = folder / "experiment.yaml"
    path.write_text(json.dumps(spec))  # JSON is YAML
    return path


def _trials(home: Path) -> list:
    store = Store(TunerSettings(home=home).store_url)
    try:
        record = store.get_experiment("default", "resume-me")
        return [] if record is None else store.trials(record.uid)
    finally:
        store.close()


def test_sigkill_then_rerun_resumes_without_loss_or_repeats(
    tmp_path: Path, hyperflow_home: Path
) -> None:
    experiment = _write_experiment(tmp_path)
    cmd = hyperflow_cmd("experiment", "run", "-f", str(experiment))
    with running(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:

        def mid_flight() -> bool:
            trials = _trials(hyperflow_home)
            done = sum(1 for t in trials if t.phase.finished)
            active = sum(1 for t in trials if t.phase.value == "Running")
            return done >= 3 and active >= 1

        wait_until(mid_flight, timeout=120, interval=0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    before = _trials(hyperflow_home)
    assert any(t.phase.value == "Running" for t in before)

    rerun = subprocess.run([*cmd, "--json"], cwd=REPO, capture_output=True, text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    status = json.loads(rerun.stdout)["status"]
    trials = _trials(hyperflow_home)
    names = [t.name for t in trials]
    assert len(names) == 8 == len(set(names))
    assert all(t.phase.value == "Succeeded" for t in trials), [
        (t.name, t.phase, t.message) for t in trials
    ]
    assert all(t.observation_count == 1 for t in trials), [
        (t.name, t.observation_count) for t in trials
    ]
    assert status["trials"] == 8 and status["trialsSucceeded"] == 8
    ledger = (tmp_path / "ledger.txt").read_text().split()
    assert sorted(ledger) == sorted(names), "every trial ran exactly once"
    assert status["currentOptimalTrial"]["bestTrialName"] in names
    [cond] = [c for c in status["conditions"] if c["type"] == "Succeeded"]
    assert cond["reason"] == "ExperimentMaxTrialsReached"

    import mlflow

    client = mlflow.MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name("resume-me")
    runs = client.search_runs([exp.experiment_id], max_results=100)
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(runs) - len(children) == 1
    assert sorted(r.info.run_name for r in children) == sorted(names)
    assert all(r.info.status == "FINISHED" for r in children)


def test_sigint_stops_trials_cleanly(tmp_path: Path, hyperflow_home: Path) -> None:
    experiment = _write_experiment(tmp_path, max_trials=6)
    env = {"TRIAL_SECONDS": "30"}
    cmd = hyperflow_cmd("experiment", "run", "-f", str(experiment), "--no-mlflow")
    with running(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as proc:
        wait_until(
            lambda: sum(t.phase.value == "Running" for t in _trials(hyperflow_home)) == 2,
            timeout=60,
        )
        pids = [
            int(Path(t.trial_dir, "pid").read_text().split()[0]) for t in _trials(hyperflow_home)
        ]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
        assert proc.stderr is not None
        said = proc.stderr.read().decode()
    for pid in pids:
        wait_until(lambda pid=pid: not _alive(pid), timeout=10)
    trials = _trials(hyperflow_home)
    assert [t.phase.value for t in trials] == ["Killed", "Killed"]
    assert sys.executable  # the trials ran in our interpreter
    # Nothing runs it now: it is shown as interrupted, not as Running, until resumed.
    assert "resume-me: Interrupted (ExperimentRunning)" in said, said[-2000:]
    listed = run_hyperflow("experiment", "list")
    row = next(line for line in listed.stdout.splitlines() if "resume-me" in line)
    assert row.split()[2] == "Interrupted", listed.stdout  # the STATUS column
    got = run_hyperflow("experiment", "get", "resume-me")
    assert "resume-me: Interrupted (ExperimentRunning) — nothing runs it" in got.stdout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
