"""``experiment run`` and MLflow under faults: killed in every phase, interrupted, a store
that is down or locked. MLflow must end up with exactly one run per trial plus the parent,
all ended, and the command must never hang or report a failure as success."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.util import REPO, free_port, hyperflow_cmd, run_hyperflow, wait_until, write_script
from tuner.settings import TunerSettings
from tuner.store import ExperimentRecord, Store, TrialRecord
from tuner.tracking.mlflow_store import prepare_sqlite_store

pytestmark = [pytest.mark.timeout(600), pytest.mark.filterwarnings("ignore:::mlflow.*")]

TRIAL = textwrap.dedent(
    """
    import os, sys, time
    time.sleep(float(os.environ.get("TRIAL_SECONDS", "0.3")))
    x = float(sys.argv[1])
    print(f"loss={(x - 0.3) ** 2:.6f}", flush=True)
    """
)


def _experiment(folder: Path, name: str = "mlflow-faults", trials: int = 12) -> Path:
    write_script(folder / "trial.py", TRIAL)
    spec = {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": "loss"},
            "algorithm": {
                "algorithmName": "random",
                "algorithmSettings": [{"name": "random_state", "value": "3"}],
            },
            "parallelTrialCount": 2,
            "maxTrialCount": trials,
            "parameters": [
                {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}
            ],
            "trialTemplate": {
                "trialParameters": [{"name": "x", "reference": "x"}],
                "command": ["python", "trial.py", "${trialParameters.x}"],
            },
        },
    }
    path = folder / "experiment.yaml"
    path.write_text(json.dumps(spec))
    return path


def _state(name: str = "mlflow-faults") -> tuple[ExperimentRecord | None, list[TrialRecord]]:
    store = Store(TunerSettings().store_url)
    try:
        record = store.get_experiment("default", name)
        return record, [] if record is None else store.trials(record.uid)
    finally:
        store.close()


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def _started(cmd: list[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # As a command typed in a terminal: a shell that started this suite in the
        # background has SIGINT ignored, and children would inherit that.
        preexec_fn=_default_sigint,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=60)


def _kill_when(proc: subprocess.Popen[str], condition: object, what: str) -> None:
    def ready() -> bool:
        assert proc.poll() is None, f"the run ended before {what}"
        return bool(condition())  # type: ignore[operator]

    wait_until(ready, timeout=180, interval=0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def test_killed_in_every_phase_mlflow_ends_with_one_ended_run_per_trial(
    tmp_path: Path, hyperflow_home: Path
) -> None:
    path = _experiment(tmp_path)
    cmd = hyperflow_cmd("experiment", "run", "-f", str(path))
    db = hyperflow_home / "mlflow.db"
    db.unlink(missing_ok=True)  # a first run on this machine: the store does not exist yet

    # 1. While the MLflow store is being created. Trials long enough that the experiment
    #    cannot end first, even when the (niced) writer gets little CPU on a loaded machine.
    with _started(cmd, env={"TRIAL_SECONDS": "60"}) as proc:
        _kill_when(
            proc, lambda: any(hyperflow_home.glob(".mlflow.db.*.creating")), "store creation"
        )
    # 2. In the middle of the experiment, with runs half written (slower trials, so that
    #    the store is created while they run).
    with _started(cmd, env={"TRIAL_SECONDS": "2"}) as proc:

        def mid_flight() -> bool:
            record, trials = _state()
            done = sum(t.phase.finished for t in trials)
            return done >= 2 and record is not None and not record.phase.finished

        _kill_when(proc, mid_flight, "two more trials had finished")
    # 3. During the final drain: the experiment has ended, MLflow is still being written
    #    (the store is locked by another process, so the drain cannot be over yet). If
    #    the kills came before the store was complete, another process (an `mlflow ui`,
    #    say) creates it now, the same way.
    if not db.exists():
        prepare_sqlite_store(db)
    lock = sqlite3.connect(db, timeout=60, isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        with _started(cmd) as proc:
            _kill_when(
                proc,
                lambda: (r := _state()[0]) is not None and r.phase.finished,
                "the experiment finished",
            )
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    record, trials = _state()
    assert record is not None and record.phase.value == "Succeeded"
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("mlflow-faults")
    if experiment is not None:  # whatever was written before the kills, incomplete
        runs = client.search_runs([experiment.experiment_id], max_results=100)
        assert len(runs) < len(trials) + 1 or any(r.info.status == "RUNNING" for r in runs)

    # 4. Run again: nothing runs, MLflow is reconciled.
    again = run_hyperflow("experiment", "run", "-f", str(path), timeout=180)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "had already finished" in again.stderr
    # 5. And again: idempotent.
    assert run_hyperflow("experiment", "run", "-f", str(path), timeout=180).returncode == 0

    experiment = client.get_experiment_by_name("mlflow-faults")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get("hyperflow.run_type") == "experiment"]
    children = [r for r in runs if r.data.tags.get("hyperflow.run_type") == "trial"]
    assert len(parents) == 1 and len(runs) == len(trials) + 1, [r.info.run_name for r in runs]
    assert sorted(r.info.run_name for r in children) == sorted(t.name for t in trials)
    phases = {t.name: t.phase.value for t in trials}
    expected = {"Succeeded": "FINISHED", "Failed": "FAILED", "Killed": "KILLED"}
    for run in children:
        assert run.info.status == expected[phases[run.info.run_name]], run.info
        assert run.data.tags["hyperflow.status"] == phases[run.info.run_name]
    assert parents[0].info.status == "FINISHED"
    assert parents[0].data.tags["hyperflow.status"] == "Succeeded"
    assert not list(hyperflow_home.glob(".mlflow.db.*.creating"))


def test_an_unusable_tracking_store_fails_at_once_in_one_line(tmp_path: Path) -> None:
    path = _experiment(tmp_path, "no-mlflow-server")
    port = free_port()
    done = subprocess.run(
        hyperflow_cmd("experiment", "run", "-f", str(path)),
        cwd=REPO,
        env={**os.environ, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}", "COLUMNS": "400"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"error: MLflow tracking server http://127.0.0.1:{port} is unreachable (ConnectError: "
        "[Errno 111] Connection refused); fix that, point MLFLOW_TRACKING_URI elsewhere, or "
        "run with --no-mlflow"
    )
    assert _state("no-mlflow-server")[0] is None  # nothing ran


def test_the_final_drain_is_bounded_and_ctrl_c_works_in_it(
    tmp_path: Path, hyperflow_home: Path, mlflow_db: Path
) -> None:
    path = _experiment(tmp_path, "drain", trials=2)
    lock = sqlite3.connect(mlflow_db, timeout=60, isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")  # MLflow cannot take anything
        bounded = subprocess.run(
            hyperflow_cmd("experiment", "run", "-f", str(path)),
            cwd=REPO,
            env={**os.environ, "HYPERFLOW_MLFLOW_DRAIN_SECONDS": "2", "COLUMNS": "400"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        # The experiment succeeded: exit 0; what MLflow did not get is said, not hidden.
        assert bounded.returncode == 0, bounded.stderr[-3000:]
        assert "the final drain's 2 s ran out" in bounded.stderr
        assert "MLflow: incomplete (see above); run the same command again" in bounded.stderr

        # Ctrl-C while waiting for MLflow: exit 130 at once, saying what is missing.
        path.write_text(path.read_text().replace('"drain"', '"drain-2"'))
        with _started(
            hyperflow_cmd("experiment", "run", "-f", str(path)),
            env={"HYPERFLOW_MLFLOW_DRAIN_SECONDS": "600", "COLUMNS": "400"},
        ) as proc:
            wait_until(
                lambda: (r := _state("drain-2")[0]) is not None and r.phase.finished, timeout=120
            )
            os.kill(proc.pid, signal.SIGINT)
            _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130, stderr[-3000:]
        assert "not written (interrupted)" in stderr
    finally:
        lock.execute("ROLLBACK")
        lock.close()


@pytest.mark.parametrize("delay", [0.3, 1.0, 2.5])
def test_ctrl_c_exits_130_in_every_phase(tmp_path: Path, delay: float) -> None:
    """Whether it lands while the command's modules load, while the store is opened or
    while trials run, a Ctrl-C ends the command with 130 and no traceback."""
    path = _experiment(tmp_path, "ctrl-c")
    with _started(
        hyperflow_cmd("experiment", "run", "-f", str(path), "--no-mlflow"),
        env={"TRIAL_SECONDS": "60"},
    ) as proc:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=delay)
        os.kill(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    # -SIGINT: the signal came before Python ran any of hyperflow (a shell shows 130 too).
    assert proc.returncode in (130, -signal.SIGINT), stderr[-3000:]
    assert "Traceback" not in stderr
