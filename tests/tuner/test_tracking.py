"""MlflowTracker against a real MLflow SQLite store: layout, resume, flush, non-blocking.

Creating an MLflow database takes seconds, so the module creates one template database and
every test works on its own copy.
"""

from __future__ import annotations

import getpass
import logging
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient
from mlflow.entities import Run

from tests.util import free_port, wait_until
from tuner.spec.models import Experiment
from tuner.tracking import MlflowTracker, NullTracker, Tracker, mlflow_tracker
from tuner.types import ExperimentPhase, ExperimentReason, Observation, TrialPhase

# MLflow's own deprecation warnings (e.g. from SQLAlchemy) are not ours to fix.
pytestmark = [pytest.mark.timeout(120), pytest.mark.filterwarnings("ignore:::mlflow.*")]

SPEC = {
    "apiVersion": "kubeflow.org/v1beta1",
    "kind": "Experiment",
    "metadata": {"name": "digits", "namespace": "default"},
    "spec": {
        "objective": {
            "type": "maximize",
            "goal": 0.99,
            "objectiveMetricName": "accuracy",
            "additionalMetricNames": ["loss"],
        },
        "algorithm": {
            "algorithmName": "tpe",
            "algorithmSettings": [{"name": "n_startup_trials", "value": "3"}],
        },
        "parallelTrialCount": 2,
        "maxTrialCount": 4,
        "parameters": [
            {
                "name": "lr",
                "parameterType": "double",
                "feasibleSpace": {"min": "0.001", "max": "0.1", "distribution": "logUniform"},
            },
            {
                "name": "optimizer",
                "parameterType": "categorical",
                "feasibleSpace": {"list": ["sgd", "adam"]},
            },
        ],
        "trialTemplate": {"command": ["python", "train.py"]},
    },
}
EXPERIMENT = Experiment.model_validate(SPEC)
UID = "0b5e6c1a-7d2f-4c3e-9a61-1f2e3d4c5b6a"


@pytest.fixture(params=["process", "in-process"])
def tracker(store: tuple[str, Path], request: pytest.FixtureRequest) -> Iterator[MlflowTracker]:
    """The writer in a process of its own, and on a thread of this one (``in_process``:
    the store is a complete SQLite store, which that mode writes itself)."""
    uri, root = store
    in_process = request.param == "in-process"
    t = MlflowTracker(uri, root, in_process=in_process)
    yield t
    t.close(timeout=30)
    if t.run_id() is not None:  # something was written: by the writer this mode promises
        assert (t._proc is None) == in_process


def test_by_default_one_tracker_of_a_process_writes_from_a_thread_the_others_from_processes(
    store: tuple[str, Path],
) -> None:
    """``in_process=None``: an experiment alone is spared the writer process; one that
    starts while another writes from a thread gets a process (the server's many
    experiments keep their writing off the interpreter that runs them); once the first
    has closed, the next one writes from a thread again. Every run is written either way."""
    uri, root = store
    # A tracker of an earlier test may still be ending its last cycle on the thread slot.
    wait_until(lambda: not mlflow_tracker._THREAD_WRITER.locked(), timeout=60)
    first = MlflowTracker(uri, root)
    second = MlflowTracker(uri, root)
    third = MlflowTracker(uri, root)
    try:
        first.start_experiment(EXPERIMENT, UID)
        assert first.flush(timeout=60)
        second.start_experiment(
            Experiment.model_validate({**SPEC, "metadata": {"name": "other"}}), UID[:-1] + "7"
        )
        assert second.flush(timeout=60)
        assert (first._proc, first._loop is not None) == (None, True)
        assert second._proc is not None and second._loop is None
        first.close(timeout=60)
        third.start_experiment(
            Experiment.model_validate({**SPEC, "metadata": {"name": "third"}}), UID[:-1] + "8"
        )
        assert third.flush(timeout=60)
        assert (third._proc, third._loop is not None) == (None, True)
    finally:
        for t in (first, second, third):
            t.close(timeout=60)
    assert [t.unwritten() for t in (first, second, third)] == [None, None, None]
    client = MlflowClient(uri)
    for name in ("digits", "other", "third"):
        experiment = client.get_experiment_by_name(name)
        assert experiment is not None
        assert set(runs_of(client, experiment.experiment_id)) == {name}


class LogEvent(logging.Handler):
    """Set when a log record containing ``text`` arrives: a test waits on it, not on time."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()

    def wait(self, timeout: float) -> bool:
        return self.event.wait(timeout)


def obs(name: str, value: float, step: int | None, ts: float) -> Observation:
    return Observation(name=name, value=value, step=step, timestamp=ts)


def make_trial_dir(root: Path, name: str, with_model: bool) -> Path:
    trial_dir = root / "trials" / name
    trial_dir.mkdir(parents=True)
    (trial_dir / "trial.log").write_text(f"{name}: accuracy=0.9\n")
    if with_model:
        model = trial_dir / "artifacts" / "model"
        model.mkdir(parents=True)
        (model / "weights.txt").write_text("w")
    return trial_dir


def runs_of(client: MlflowClient, experiment_id: str) -> dict[str, Run]:
    runs = client.search_runs([experiment_id], max_results=1000)
    names = [r.info.run_name for r in runs]
    assert len(names) == len(set(names)), f"duplicate runs: {sorted(names)}"
    return {r.info.run_name: r for r in runs}


def history(client: MlflowClient, run: Run, metric: str) -> list[tuple[int, float, int]]:
    points = client.get_metric_history(run.info.run_id, metric)
    return sorted((m.step, m.value, m.timestamp) for m in points)


def test_layout_of_experiment_parent_and_trial_runs(
    tracker: MlflowTracker, store: tuple[str, Path], tmp_path: Path
) -> None:
    uri, artifact_root = store
    t0 = 1_700_000_000.0
    tracker.start_experiment(EXPERIMENT, UID)
    tracker.start_trial("digits-a", {"lr": 0.01, "optimizer": "adam"})
    tracker.start_trial("digits-b", {"lr": 0.05, "optimizer": "sgd"})
    tracker.start_trial("digits-c", {"lr": 0.002, "optimizer": "sgd"})
    tracker.log_observations(
        "digits-a",
        [obs("accuracy", 0.5, 1, t0 + 1), obs("loss", 0.9, 1, t0 + 1)],
    )
    tracker.log_observations(
        "digits-a",
        [obs("accuracy", 0.8, 2, t0 + 2), obs("loss", 0.4, 2, t0 + 2)],
    )
    # No step reported: each metric counts its own steps.
    tracker.log_observations("digits-b", [obs("accuracy", 0.3, None, t0 + 3)])
    tracker.log_observations(
        "digits-b", [obs("accuracy", 0.4, None, t0 + 4), obs("loss", 2.0, None, t0 + 4)]
    )
    tracker.end_trial(
        "digits-a",
        TrialPhase.SUCCEEDED,
        {"accuracy": 0.8, "loss": 0.4},
        make_trial_dir(tmp_path, "digits-a", with_model=True),
    )
    tracker.end_trial(
        "digits-b", TrialPhase.FAILED, {}, make_trial_dir(tmp_path, "digits-b", with_model=False)
    )
    tracker.end_trial("digits-c", TrialPhase.EARLY_STOPPED, {"accuracy": 0.1}, None)
    tracker.end_experiment(
        ExperimentPhase.SUCCEEDED,
        ExperimentReason.MAX_TRIALS_REACHED,
        "digits-a",
        {"accuracy": 0.8, "loss": 0.4},
    )
    assert tracker.flush(timeout=60)

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("digits")
    assert experiment is not None
    assert experiment.tags["hyperflow.namespace"] == "default"
    assert experiment.artifact_location.startswith(artifact_root.as_uri())
    runs = runs_of(client, experiment.experiment_id)
    assert set(runs) == {"digits", "digits-a", "digits-b", "digits-c"}

    parent = runs["digits"]
    assert parent.info.status == "FINISHED"
    assert parent.data.params["algorithm"] == "tpe"
    assert parent.data.params["algorithm.n_startup_trials"] == "3"
    assert parent.data.params["objective.type"] == "maximize"
    assert parent.data.params["objective.metric"] == "accuracy"
    assert parent.data.params["space.lr"] == "double [0.001, 0.1] logUniform"
    assert parent.data.tags["hyperflow.uid"] == UID
    assert parent.data.tags["hyperflow.experiment"] == "digits"
    assert parent.data.tags["hyperflow.algorithm"] == "tpe"
    assert parent.data.tags["hyperflow.status"] == "Succeeded"
    assert parent.data.tags["hyperflow.reason"] == "ExperimentMaxTrialsReached"
    assert parent.data.tags["hyperflow.best_trial"] == "digits-a"
    assert parent.data.tags["hyperflow.best_run_id"] == runs["digits-a"].info.run_id
    assert parent.data.metrics == {"best_accuracy": 0.8, "best_loss": 0.4}
    spec_file = client.download_artifacts(parent.info.run_id, "experiment.yaml", str(tmp_path))
    assert yaml.safe_load(Path(spec_file).read_text()) == EXPERIMENT.to_dict()
    assert tracker.run_id() == parent.info.run_id
    assert tracker.describe() == (
        f"MLflow experiment 'digits' (id {experiment.experiment_id}), "
        f"parent run {parent.info.run_id} (tracking: {uri})"
    )

    a, b, c = runs["digits-a"], runs["digits-b"], runs["digits-c"]
    user = getpass.getuser()
    assert (parent.data.tags["mlflow.user"], parent.info.user_id) == (user, user)
    for trial in (a, b, c):
        assert (trial.data.tags["mlflow.user"], trial.info.user_id) == (user, user)
        assert trial.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert trial.data.tags["hyperflow.trial"] == trial.info.run_name
        assert trial.data.tags["hyperflow.uid"] == UID
        assert trial.data.tags["hyperflow.algorithm"] == "tpe"
        assert tracker.run_id(trial.info.run_name) == trial.info.run_id
    assert a.data.params == {"lr": "0.01", "optimizer": "adam"}
    assert (a.info.status, a.data.tags["hyperflow.status"]) == ("FINISHED", "Succeeded")
    assert (b.info.status, b.data.tags["hyperflow.status"]) == ("FAILED", "Failed")
    assert (c.info.status, c.data.tags["hyperflow.status"]) == ("KILLED", "EarlyStopped")
    assert a.info.end_time >= a.info.start_time

    ms = int(t0 * 1000)
    assert history(client, a, "accuracy") == [(1, 0.5, ms + 1000), (2, 0.8, ms + 2000)]
    assert history(client, a, "loss") == [(1, 0.9, ms + 1000), (2, 0.4, ms + 2000)]
    assert history(client, b, "accuracy") == [(0, 0.3, ms + 3000), (1, 0.4, ms + 4000)]
    assert history(client, b, "loss") == [(0, 2.0, ms + 4000)]
    assert a.data.metrics["final_accuracy"] == 0.8
    assert c.data.metrics == {"final_accuracy": 0.1}

    a_files = {f.path for f in client.list_artifacts(a.info.run_id)}
    assert a_files == {"trial.log", "model"}
    assert [f.path for f in client.list_artifacts(a.info.run_id, "model")] == ["model/weights.txt"]
    log = client.download_artifacts(a.info.run_id, "trial.log", str(tmp_path / "dl"))
    assert Path(log).read_text() == "digits-a: accuracy=0.9\n"
    assert {f.path for f in client.list_artifacts(b.info.run_id)} == {"trial.log"}
    assert a.info.artifact_uri.startswith(artifact_root.as_uri())


def test_resume_continues_the_same_runs_without_duplicates(
    store: tuple[str, Path],
) -> None:
    uri, root = store
    t0 = 1_700_000_000.0
    first = MlflowTracker(uri, root)
    first.start_experiment(EXPERIMENT, UID)
    first.start_trial("digits-a", {"lr": 0.01, "optimizer": "adam"})
    first.start_trial("digits-b", {"lr": 0.05, "optimizer": "sgd"})
    first.log_observations("digits-b", [obs("accuracy", 0.2, 1, t0 + 1)])
    first.end_trial("digits-a", TrialPhase.SUCCEEDED, {"accuracy": 0.7}, None)
    first.close(timeout=60)

    # The restarted controller: same uid, restarts the unfinished trial, and its collector
    # reports the trial's metrics again from the start.
    second = MlflowTracker(uri, root)
    second.start_experiment(EXPERIMENT, UID)
    second.start_trial("digits-b", {"lr": 0.05, "optimizer": "sgd"})
    second.log_observations(
        "digits-b", [obs("accuracy", 0.2, 1, t0 + 1), obs("accuracy", 0.6, 2, t0 + 2)]
    )
    second.end_trial("digits-b", TrialPhase.SUCCEEDED, {"accuracy": 0.6}, None)
    second.start_trial("digits-c", {"lr": 0.003, "optimizer": "adam"})
    second.end_trial("digits-c", TrialPhase.KILLED, {}, None)
    second.end_experiment(
        ExperimentPhase.SUCCEEDED,
        ExperimentReason.MAX_TRIALS_REACHED,
        "digits-a",
        {"accuracy": 0.7},
    )
    assert second.flush(timeout=60)
    assert second.run_id() == first.run_id()
    assert second.run_id("digits-b") == first.run_id("digits-b")
    second.close(timeout=30)

    client = MlflowClient(tracking_uri=uri)
    experiments = [e for e in client.search_experiments() if e.name.startswith("digits")]
    assert [e.name for e in experiments] == ["digits"]
    runs = runs_of(client, experiments[0].experiment_id)
    assert set(runs) == {"digits", "digits-a", "digits-b", "digits-c"}
    b = runs["digits-b"]
    assert b.info.status == "FINISHED"
    assert b.data.params == {"lr": "0.05", "optimizer": "sgd"}
    ms = int(t0 * 1000)
    assert history(client, b, "accuracy") == [(1, 0.2, ms + 1000), (2, 0.6, ms + 2000)]
    # Resolved from the store: digits-a's run was created by the first tracker.
    assert runs["digits"].data.tags["hyperflow.best_run_id"] == runs["digits-a"].info.run_id
    assert runs["digits"].info.status == "FINISHED"

    # A new experiment with the same name (new uid) is a second parent run, same MLflow
    # experiment; a changed param value on resume is reported, not retried forever.
    third = MlflowTracker(uri, root)
    third.start_experiment(EXPERIMENT, "another-uid")
    third.start_trial("digits-a", {"lr": 0.02, "optimizer": "sgd"})
    assert third.flush(timeout=60)
    third.close(timeout=30)
    runs = client.search_runs(
        [experiments[0].experiment_id], "tags.`hyperflow.uid` = 'another-uid'"
    )
    assert sorted(r.info.run_name for r in runs) == ["digits", "digits-a"]


def test_flush_waits_for_everything_queued_before_it(
    tracker: MlflowTracker, store: tuple[str, Path]
) -> None:
    uri, _ = store
    assert tracker.flush(timeout=1)  # nothing queued yet
    tracker.start_experiment(EXPERIMENT, UID)
    tracker.start_trial("digits-a", {"lr": 0.01, "optimizer": "adam"})
    for step in range(1500):  # more than one MLflow batch
        tracker.log_observations("digits-a", [obs("loss", 1.0 / (step + 1), step, 1e9 + step)])
    assert tracker.flush(timeout=60)
    client = MlflowClient(tracking_uri=uri)
    run_id = tracker.run_id("digits-a")
    assert run_id is not None
    points = client.get_metric_history(run_id, "loss")
    assert sorted(p.step for p in points) == list(range(1500))
    tracker.close(timeout=30)
    tracker.close(timeout=30)  # idempotent
    tracker.log_observations("digits-a", [obs("loss", 0.0, 2000, 1e9)])  # ignored, no raise
    assert len(client.get_metric_history(run_id, "loss")) == 1500


def test_close_leaves_the_sqlite_store_closed_as_a_database_is(
    tracker: MlflowTracker, store: tuple[str, Path], tmp_path: Path
) -> None:
    """The writer closes its connection before it goes (the process leaves without the
    interpreter's clean-up): the WAL is checkpointed into ``mlflow.db`` and removed, so a
    copy of the file alone holds every run; the process ends with status 0."""
    uri, _ = store
    db = Path(uri.removeprefix("sqlite:///"))
    tracker.start_experiment(EXPERIMENT, UID)
    tracker.start_trial("digits-a", {"lr": 0.01, "optimizer": "adam"})
    tracker.end_trial("digits-a", TrialPhase.SUCCEEDED, {"loss": 0.5}, tmp_path / "none")
    assert tracker.flush(timeout=60)
    assert db.with_name("mlflow.db-wal").exists()  # written in WAL mode
    tracker.close(timeout=30)
    assert not db.with_name("mlflow.db-wal").exists()
    if tracker._proc is not None:
        assert tracker._proc.returncode == 0
    copy = tmp_path / "copy.db"
    shutil.copy(db, copy)
    client = MlflowClient(tracking_uri=f"sqlite:///{copy}")
    experiment = client.get_experiment_by_name("digits")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["digits", "digits-a"]


def test_store_unavailable_at_first_then_everything_is_written(
    mlflow_template: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A file stands where the database's directory should be: every write fails until
    # the directory replaces it.
    db = tmp_path / "late" / "mlflow.db"
    db.parent.write_text("not a directory")
    tracker = MlflowTracker(f"sqlite:///{db}", initial_backoff=0.05, max_backoff=0.2)
    failed = LogEvent("failed")
    logging.getLogger("tuner.tracking").addHandler(failed)
    try:
        with caplog.at_level(logging.WARNING, logger="tuner.tracking"):
            tracker.start_experiment(EXPERIMENT, UID)
            tracker.start_trial("digits-a", {"lr": 0.01, "optimizer": "adam"})
            tracker.log_observations("digits-a", [obs("accuracy", 0.5, 1, 1e9)])
            tracker.end_trial("digits-a", TrialPhase.SUCCEEDED, {"accuracy": 0.5}, None)
            assert failed.wait(timeout=60), "the writer never reported a failed attempt"
            assert not tracker.flush(timeout=0)  # nothing could be written so far
            db.parent.unlink()
            db.parent.mkdir()
            shutil.copy(mlflow_template, db)
            assert tracker.flush(timeout=60)
    finally:
        logging.getLogger("tuner.tracking").removeHandler(failed)
    tracker.close(timeout=30)
    assert tracker.unwritten() is None

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("digits")
    assert experiment is not None
    # Default artifact root of a SQLite store: next to the database file.
    assert experiment.artifact_location.startswith((db.parent / "mlartifacts").as_uri())
    runs = runs_of(client, experiment.experiment_id)
    assert runs["digits-a"].info.status == "FINISHED"
    assert runs["digits-a"].data.metrics == {"accuracy": 0.5, "final_accuracy": 0.5}


def test_calls_never_block_when_the_server_is_unreachable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker = MlflowTracker(f"http://127.0.0.1:{free_port()}", initial_backoff=0.05)
    durations = []
    tracker.start_experiment(EXPERIMENT, UID)
    for i in range(200):
        started = time.perf_counter()
        tracker.start_trial(f"t{i}", {"lr": 0.01})
        tracker.log_observations(f"t{i}", [obs("accuracy", 0.5, 1, 1e9)])
        tracker.end_trial(f"t{i}", TrialPhase.SUCCEEDED, {"accuracy": 0.5}, None)
        durations.append(time.perf_counter() - started)
    tracker.end_experiment(ExperimentPhase.SUCCEEDED, "ExperimentGoalReached", "t1", {})
    durations.sort()
    # Each call only queues (microseconds). A call that waited for MLflow would take
    # seconds: its HTTP client retries with backoff. The bounds leave room for a loaded
    # 2-core machine, where this thread also competes with the writer importing mlflow.
    assert durations[len(durations) // 2] < 0.05
    assert durations[-1] < 2.0
    assert not tracker.flush(timeout=0.2)
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="tuner.tracking"):
        tracker.close(timeout=1.0)
    assert time.monotonic() - started < 5.0
    assert any("not written" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("kind", ["null", "mlflow"])
def test_every_tracker_accepts_the_whole_protocol(
    kind: str, store: tuple[str, Path], tmp_path: Path
) -> None:
    uri, root = store
    tracker: Tracker = NullTracker() if kind == "null" else MlflowTracker(uri, root)
    with tracker:
        tracker.start_experiment(EXPERIMENT, UID)
        tracker.start_trial("t", {"lr": 0.1, "optimizer": "sgd", "layers": 3})
        tracker.log_observations("t", [obs("accuracy", float("nan"), None, 0.0)])
        tracker.log_observations("t", [])
        tracker.end_trial("t", TrialPhase.METRICS_UNAVAILABLE, {}, tmp_path / "missing")
        tracker.end_experiment(ExperimentPhase.FAILED, "ExperimentMaxFailedTrialsReached", None, {})
        assert tracker.flush(timeout=60)
        assert isinstance(tracker.describe(), str)
    assert tracker.flush(timeout=1)


def test_importing_the_package_does_not_import_mlflow() -> None:
    code = "import sys, tuner.tracking; assert 'mlflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_a_tracker_that_records_nothing_never_loads_mlflow(tmp_path: Path) -> None:
    """E.g. re-running an experiment that had finished: no seconds-long mlflow import."""
    code = (
        "import sys, time; from tuner.tracking import MlflowTracker; "
        f"t = MlflowTracker('sqlite:///{tmp_path}/mlflow.db'); "
        "assert t.flush(timeout=1); started = time.monotonic(); t.close(); "
        "assert time.monotonic() - started < 1, 'close() waited'; "
        "assert 'mlflow' not in sys.modules; assert t.describe().endswith('(nothing written yet)')"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
    assert not (tmp_path / "mlflow.db").exists()


def test_a_hundred_trials_take_seconds_not_minutes(tracker: MlflowTracker) -> None:
    tracker.start_experiment(EXPERIMENT, UID)
    assert tracker.flush(timeout=60)  # store set-up is not what is measured
    for i in range(100):
        name = f"digits-{i:03d}"
        tracker.start_trial(name, {"lr": 0.001 * (i + 1), "optimizer": "adam"})
        for step in range(5):
            tracker.log_observations(
                name,
                [
                    obs("accuracy", step / 10, step, 1e9 + step),
                    obs("loss", 1 - step / 10, step, 1e9 + step),
                    obs("lr", 0.1, step, 1e9 + step),
                ],
            )
        tracker.end_trial(name, TrialPhase.SUCCEEDED, {"accuracy": 0.4}, None)
    started = time.monotonic()
    assert tracker.flush(timeout=60)
    # 1-5 s on a shared 2-core machine (one log_batch per run and cycle);
    # a round trip per call or per metric would take ten times as long.
    assert time.monotonic() - started < 15
    client = MlflowClient(tracking_uri=tracker.tracking_uri)
    run_id = tracker.run_id("digits-099")
    assert run_id is not None
    assert len(client.get_metric_history(run_id, "loss")) == 5


def test_data_mlflow_rejects_is_reported_and_does_not_stall_the_rest(
    tracker: MlflowTracker, store: tuple[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    uri, _ = store
    tracker.start_experiment(EXPERIMENT, UID)
    tracker.start_trial("digits-a", {"lr": 0.01, "optimizer": "adam"})
    tracker.start_trial("digits-b", {"lr": 0.05, "optimizer": "sgd"})
    assert tracker.flush(timeout=60)
    client = MlflowClient(tracking_uri=uri)
    a_id, b_id = tracker.run_id("digits-a"), tracker.run_id("digits-b")
    assert a_id is not None and b_id is not None
    client.delete_run(a_id)  # a user deletes a run while the experiment runs

    with caplog.at_level(logging.ERROR, logger="tuner.tracking"):
        tracker.log_observations("digits-a", [obs("accuracy", 0.5, 1, 1e9)])
        tracker.end_trial("digits-a", TrialPhase.SUCCEEDED, {"accuracy": 0.5}, None)
        # MLflow params are immutable: a changed value cannot be written ...
        tracker.start_trial("digits-b", {"lr": 0.07, "optimizer": "sgd"})
        # ... but the run's metrics and status still are.
        tracker.log_observations("digits-b", [obs("accuracy", 0.6, 1, 1e9)])
        tracker.end_trial("digits-b", TrialPhase.SUCCEEDED, {"accuracy": 0.6}, None)
        assert tracker.flush(timeout=60)
    assert len(caplog.records) >= 2

    b = client.get_run(b_id)
    assert b.data.params["lr"] == "0.05"
    assert b.data.metrics["accuracy"] == 0.6
    assert b.info.status == "FINISHED"


CRASHING_CONTROLLER = """
import sys
from tuner.spec.models import Experiment
from tuner.tracking import MlflowTracker
from tuner.types import Observation
from tests.tuner.test_tracking import SPEC, UID

tracker = MlflowTracker(sys.argv[1], batch_interval=0.01)
tracker.start_experiment(Experiment.model_validate(SPEC), UID)
tracker.start_trial("digits-a", {"lr": 0.01, "optimizer": "adam"})
tracker.log_observations("digits-a", [Observation("loss", 1.0, 0, 1e9)])
assert tracker.flush(timeout=60)
print("flushed", flush=True)
step = 1
while True:  # keeps logging and writing, paced by the writer, until it is killed
    tracker.log_observations("digits-a", [Observation("loss", 1.0 / step, step, 1e9 + step)])
    step += 1
    tracker.flush(timeout=60)
"""


def test_resume_after_sigkill_keeps_flushed_data_and_the_runs(store: tuple[str, Path]) -> None:
    uri, root = store
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHING_CONTROLLER, uri],
        cwd=Path(__file__).parents[2],
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"flushed\n"
    finally:
        proc.kill()  # SIGKILL, mid-write
        proc.wait(timeout=30)

    tracker = MlflowTracker(uri, root)
    tracker.start_experiment(EXPERIMENT, UID)
    tracker.start_trial("digits-a", {"lr": 0.01, "optimizer": "adam"})
    tracker.log_observations("digits-a", [obs("loss", 1.0, 0, 1e9)])  # reported again
    tracker.end_trial("digits-a", TrialPhase.SUCCEEDED, {"loss": 0.1}, None)
    assert tracker.flush(timeout=60)
    tracker.close(timeout=30)

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("digits")
    assert experiment is not None
    runs = runs_of(client, experiment.experiment_id)
    assert set(runs) == {"digits", "digits-a"}
    steps = [step for step, _, _ in history(client, runs["digits-a"], "loss")]
    assert steps[0] == 0 and steps.count(0) == 1
    assert steps == sorted(set(steps))  # whatever was written before the kill, once
    assert runs["digits-a"].info.status == "FINISHED"


@pytest.mark.parametrize("name", ["../../etc", "a\0b", "x" * 300, ".."])
def test_an_experiment_folder_stays_inside_the_artifact_root_whatever_the_name(
    tracker: MlflowTracker, store: tuple[str, Path], tmp_path: Path, name: str
) -> None:
    """A pipeline's name names its MLflow experiment (``pipelineInfo.name``, from users):
    a ``..`` wrote artifacts outside the root, a NUL byte or an over-long name made the
    writer retry forever ("embedded null byte", "File name too long")."""
    uri, artifact_root = store
    experiment = Experiment.model_validate({**SPEC, "metadata": {"name": name}})
    tracker.start_experiment(experiment, UID)
    tracker.start_trial("digits-a", {"lr": 0.01, "optimizer": "adam"})
    trial_dir = make_trial_dir(tmp_path, "digits-a", with_model=True)
    tracker.end_trial("digits-a", TrialPhase.SUCCEEDED, {"accuracy": 0.8}, trial_dir)
    tracker.end_experiment(
        ExperimentPhase.SUCCEEDED, ExperimentReason.MAX_TRIALS_REACHED, "digits-a", {}
    )
    assert tracker.flush(timeout=20)
    found = MlflowClient(tracking_uri=uri).get_experiment_by_name(name)
    assert found is not None
    assert found.artifact_location.startswith(artifact_root.as_uri() + "/")
    written = sorted(p for p in tmp_path.rglob("*") if p.name == "trial.log")
    assert len(written) == 2  # the trial's own and its MLflow copy
    assert all(p == trial_dir / "trial.log" or artifact_root in p.parents for p in written)
    assert all(len(p.name.encode()) <= 255 for p in artifact_root.rglob("*"))
