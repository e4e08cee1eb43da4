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

import pytest

from tests.util import (
    REPO,
    hyperflow_cmd,
    pid_running,
    run_hyperflow,
    running,
    wait_until,
    write_script,
)
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
    write_script(folder / "trial.py", TRIAL)
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


def _rerun(experiment: Path, env: dict[str, str], *flags: str) -> None:
    """The same `experiment run` again (``--json``, ``env`` added), to its successful end."""
    rerun = subprocess.run(
        [*hyperflow_cmd("experiment", "run", "-f", str(experiment)), *flags, "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **env},
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]


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
        wait_until(lambda pid=pid: not pid_running(pid), timeout=10)
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


# Runs `hyperflow experiment run` with a SIGKILL planted in the controller's second group
# commit that ends a trial (and usually records its observations) and creates the next:
# "inside" the transaction (statements executed, COMMIT not reached) or right "after" it
# (committed, none of the launches and other actions that follow it done).
KILLED_IN_COMMIT = textwrap.dedent(
    """
    import os, signal, sys
    from sqlalchemy import event
    from tuner.store.store import Store

    when, experiment = sys.argv[1], sys.argv[2]
    original = Store.commit
    seen = 0

    def group_commit(batch):
        changes = list(batch.changes())
        ended = any(not c.insert and "completed_at" in c.values for c in changes)
        return ended and any(c.insert for c in changes)

    def commit(self, batch):
        global seen
        if group_commit(batch):
            seen += 1
            if seen == 2:
                with open(os.environ["COMMITTING"], "w") as f:
                    f.write(" ".join(sorted(c.record.name for c in batch.changes())))
                if when == "inside":
                    # At SQLite's own COMMIT statement: what the store sends through
                    # SQLAlchemy and what it sends on the DB-API connection alike.
                    def die_at_commit(sql):
                        if sql.strip().upper() == "COMMIT":
                            os.kill(os.getpid(), signal.SIGKILL)

                    event.listen(
                        self.engine.pool,
                        "checkout",
                        lambda dbapi, record, proxy: dbapi.set_trace_callback(die_at_commit),
                    )
                else:
                    original(self, batch)
                    os.kill(os.getpid(), signal.SIGKILL)
        return original(self, batch)

    Store.commit = commit
    sys.argv = ["hyperflow", "experiment", "run", "-f", experiment, "--no-mlflow"]
    from hyperflow.entry import main
    main()
    """
)


@pytest.mark.parametrize("when", ["inside", "after"])
def test_sigkill_during_a_group_commit_loses_nothing_acknowledged(
    tmp_path: Path, hyperflow_home: Path, when: str
) -> None:
    experiment = _write_experiment(tmp_path)
    driver = tmp_path / "killed_in_commit.py"
    driver.write_text(KILLED_IN_COMMIT)
    committing = tmp_path / "committing.txt"
    env = {"TRIAL_SECONDS": "0.2", "COMMITTING": str(committing)}
    with running(
        [sys.executable, str(driver), when, str(experiment)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as proc:
        assert proc.wait(timeout=120) == -signal.SIGKILL
    in_flight = set(committing.read_text().split())
    before = {t.name: t for t in _trials(hyperflow_home)}
    ledger = (tmp_path / "ledger.txt").read_text().split()
    if when == "inside":
        # The whole turn is gone, and nothing acted on it: the trial it created was never
        # started, the trial it ended is still Running in the store. (It may have created
        # two: the slot's next trial and the one on deck, see the controller.)
        created = in_flight - set(before)
        assert created
        assert not created & set(ledger)
        assert any(before[n].phase.value == "Running" for n in in_flight & set(before))
    else:
        # The whole turn is in the store; nothing that follows it ran.
        assert in_flight <= set(before)
        assert any(before[n].phase.value == "Succeeded" for n in in_flight)
        assert [n for n in in_flight if before[n].phase.value == "Created"]

    _rerun(experiment, env, "--no-mlflow")
    trials = _trials(hyperflow_home)
    names = [t.name for t in trials]
    assert len(names) == 8 == len(set(names))
    assert all(t.phase.value == "Succeeded" for t in trials), [
        (t.name, t.phase, t.message) for t in trials
    ]
    assert all(t.observation_count == 1 for t in trials), [
        (t.name, t.observation_count) for t in trials
    ]
    ledger = (tmp_path / "ledger.txt").read_text().split()
    assert sorted(ledger) == sorted(names), "every trial ran exactly once"
    if when == "inside":
        assert not created & set(names), "a trial whose creation was not committed came back"
    else:
        assert in_flight <= set(names)


@pytest.mark.parametrize("through", ["cli", "server"])
def test_deleting_an_experiment_whose_controller_died_stops_its_trials(
    tmp_path: Path, hyperflow_home: Path, through: str
) -> None:
    # Its trials ran on unwatched, into folders the delete had removed.
    experiment = _write_experiment(tmp_path, max_trials=2)
    env = {"TRIAL_SECONDS": "60"}
    cmd = hyperflow_cmd("experiment", "run", "-f", str(experiment), "--no-mlflow")
    with running(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as proc:
        wait_until(
            lambda: sum(t.phase.value == "Running" for t in _trials(hyperflow_home)) == 2,
            timeout=60,
        )
        pids = [
            int(Path(t.trial_dir, "pid").read_text().split()[0]) for t in _trials(hyperflow_home)
        ]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert all(pid_running(pid) for pid in pids)  # no controller, the trials go on
    if through == "cli":
        deleted = run_hyperflow("experiment", "delete", "resume-me")
        assert deleted.returncode == 0, deleted.stderr
    else:  # `hyperflow delete exp` and the UI: the server's handler, which did not stop them
        from tests.hyperflow.conftest import serve_plane, server_settings

        with serve_plane(server_settings(hyperflow_home)) as server:
            answer = server.http.delete("/apis/v1/namespaces/default/experiments/resume-me")
            assert answer.status_code == 200, answer.text
    for pid in pids:
        wait_until(lambda pid=pid: not pid_running(pid), timeout=10)


# A trial that reports, then waits for a file before it reports again and ends.
TWO_REPORTS = textwrap.dedent(
    """
    import os, sys, time
    x = float(sys.argv[1])
    print(f"loss={x:.6f}", flush=True)
    while not os.path.exists(os.environ["GO"]):
        time.sleep(0.02)
    print(f"loss={x / 2:.6f}", flush=True)
    """
)

# Runs `hyperflow experiment run` (MLflow on) and SIGKILLs it when its tracker is handed
# the first observations: they are in the store (committed before they are acted on), not
# yet in MLflow, and their trial is still running.
KILLED_BEFORE_MLFLOW = textwrap.dedent(
    """
    import os, signal, sys
    from tuner.tracking.mlflow_tracker import MlflowTracker

    def log_observations(self, trial_name, observations):
        if observations:
            os.kill(os.getpid(), signal.SIGKILL)

    MlflowTracker.log_observations = log_observations
    sys.argv = ["hyperflow", "experiment", "run", "-f", sys.argv[1]]
    from hyperflow.entry import main
    main()
    """
)


def test_observations_stored_before_a_sigkill_reach_mlflow_on_resume(
    tmp_path: Path, hyperflow_home: Path
) -> None:
    """The adopted trial's collection skips what is stored; the resumed controller sends
    the stored observations of running trials to MLflow too (they were lost for good)."""
    experiment = _write_experiment(tmp_path, max_trials=2)
    write_script(tmp_path / "trial.py", TWO_REPORTS)
    go = tmp_path / "go"
    env = {"GO": str(go)}
    driver = tmp_path / "killed_before_mlflow.py"
    driver.write_text(KILLED_BEFORE_MLFLOW)
    with running(
        [sys.executable, str(driver), str(experiment)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as proc:
        assert proc.wait(timeout=120) == -signal.SIGKILL
    before = _trials(hyperflow_home)
    assert any(t.phase.value == "Running" and t.observation_count >= 1 for t in before)
    go.touch()
    _rerun(experiment, env)
    trials = _trials(hyperflow_home)
    assert len(trials) == 2 and all(t.phase.value == "Succeeded" for t in trials)
    assert all(t.observation_count == 2 for t in trials), [
        (t.name, t.observation_count) for t in trials
    ]

    import mlflow

    client = mlflow.MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name("resume-me")
    runs = client.search_runs([exp.experiment_id], max_results=100)
    children = {r.info.run_name: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert sorted(children) == sorted(t.name for t in trials)
    for t in trials:
        history = client.get_metric_history(children[t.name].info.run_id, "loss")
        assert len(history) == 2, (t.name, [(m.step, m.value) for m in history])
