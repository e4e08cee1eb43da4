"""MLflow tracking under faults: store creation killed, unusable stores found before a
run, a writer that hangs, a Ctrl-C while draining, reconciling runs that are complete."""

from __future__ import annotations

import _thread
import contextlib
import http.server
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from tests.tuner.test_tracking import EXPERIMENT, UID, obs, runs_of
from tests.util import REPO, free_port, pid_running, wait_until
from tuner.tracking import MlflowTracker, mlflow_sql
from tuner.tracking.lookup import trial_run_id
from tuner.tracking.mlflow_store import prepare_sqlite_store
from tuner.tracking.probe import check_tracking_uri, migration_heads
from tuner.types import ExperimentPhase, ExperimentReason, TrialPhase

pytestmark = [pytest.mark.timeout(180), pytest.mark.filterwarnings("ignore:::mlflow.*")]


def _version(db: Path) -> str | None:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as c:
            row = c.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def test_a_kill_during_store_creation_never_leaves_a_damaged_store(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    code = (
        "import sys; from pathlib import Path; "
        "from tuner.tracking.mlflow_store import prepare_sqlite_store; "
        "prepare_sqlite_store(Path(sys.argv[1]))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(db)], cwd=REPO)
    try:
        builds: list[Path] = []

        def migrating() -> bool:
            builds[:] = list(tmp_path.glob(".mlflow.db.*.creating"))
            return bool(builds) and _version(builds[0]) is not None

        wait_until(migrating, timeout=120, interval=0.01)  # migrations under way
    finally:
        proc.kill()  # SIGKILL, in the middle of MLflow's migrations
        proc.wait(timeout=30)
    head, _ = migration_heads()
    assert _version(builds[0]) != head, "the kill came after the migrations"
    assert not db.exists(), "a half-made schema at the store's own path"

    prepare_sqlite_store(db)
    assert _version(db) == head
    assert not list(tmp_path.glob(".mlflow.db.*.creating")), "the stale build was not removed"
    assert [e.name for e in MlflowClient(f"sqlite:///{db}").search_experiments()] == ["Default"]


def test_a_half_created_store_without_runs_is_rebuilt_one_with_runs_is_not(
    mlflow_template: Path, tmp_path: Path
) -> None:
    head, known = migration_heads()
    older = sorted(known - {head})[0]
    db = tmp_path / "mlflow.db"
    shutil.copy(mlflow_template, db)
    with contextlib.closing(sqlite3.connect(db)) as c:  # as an interrupted creation leaves it
        c.execute("UPDATE alembic_version SET version_num = ?", (older,))
        c.commit()
    assert check_tracking_uri(f"sqlite:///{db}") is None  # rebuilt by the writer, not an error
    prepare_sqlite_store(db)
    assert _version(db) == head
    client = MlflowClient(f"sqlite:///{db}")
    experiment_id = client.create_experiment("kept")
    client.create_run(experiment_id)
    with contextlib.closing(sqlite3.connect(db)) as c:
        c.execute("UPDATE alembic_version SET version_num = ?", (older,))
        c.commit()
    prepare_sqlite_store(db)  # holds a run: left alone
    assert _version(db) == older
    problem = check_tracking_uri(f"sqlite:///{db}")
    assert problem == (
        f"MLflow store {db} has an older schema ({older}; this MLflow expects {head}): "
        f"back it up, then run `mlflow db upgrade sqlite:///{db}`"
    )


def test_unusable_stores_are_named_before_a_run(tmp_path: Path) -> None:
    port = free_port()
    assert check_tracking_uri(f"http://127.0.0.1:{port}") == (
        f"MLflow tracking server http://127.0.0.1:{port} is unreachable "
        "(ConnectError: [Errno 111] Connection refused)"
    )
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not sqlite at all" * 100)
    assert check_tracking_uri(f"sqlite:///{garbage}") == (
        f"MLflow store {garbage} cannot be read as an SQLite database (file is not a database)"
    )
    blocked = tmp_path / "file"
    blocked.write_text("x")
    assert check_tracking_uri(f"sqlite:///{blocked}/mlflow.db") == (
        f"MLflow store folder {blocked}: {blocked} is not a directory"
    )
    assert check_tracking_uri(f"sqlite:///{tmp_path}/new/mlflow.db") is None


class _Hanging(http.server.BaseHTTPRequestHandler):
    """An MLflow server stand-in that answers the start-up check and then never again."""

    release: threading.Event

    def do_POST(self) -> None:
        if self.path.endswith("/experiments/search"):
            body = b'{"experiments": []}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.release.wait(120)

    do_GET = do_POST

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hanging_server() -> Iterator[str]:
    release = threading.Event()
    handler = type("Handler", (_Hanging,), {"release": release})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_close_is_bounded_and_says_what_was_not_written(hanging_server: str) -> None:
    assert check_tracking_uri(hanging_server) is None
    tracker = MlflowTracker(hanging_server)
    tracker.start_experiment(EXPERIMENT, UID)
    for name in ("digits-a", "digits-b"):
        tracker.start_trial(name, {"lr": 0.01, "optimizer": "adam"})
        tracker.end_trial(name, TrialPhase.SUCCEEDED, {"accuracy": 0.5}, None)
    tracker.end_experiment(ExperimentPhase.SUCCEEDED, ExperimentReason.GOAL_REACHED, "digits-a", {})
    tracker.close(timeout=1.0)
    unwritten = tracker.unwritten()
    assert unwritten is not None
    assert unwritten.trials == ("digits-a", "digits-b") and unwritten.experiment_end
    assert unwritten.describe() == (
        "the runs of 2 trial(s) (digits-a, digits-b) and the experiment run's end (status, "
        "best trial) not written (the final drain's 1 s ran out)"
    )
    assert tracker._proc is not None and tracker._proc.poll() is not None  # the writer is gone


def test_ctrl_c_while_draining_stops_the_writer_and_reports(hanging_server: str) -> None:
    tracker = MlflowTracker(hanging_server)
    tracker.start_experiment(EXPERIMENT, UID)
    tracker.start_trial("digits-a", {"lr": 0.01, "optimizer": "adam"})

    def interrupt_once_closing() -> None:
        wait_until(lambda: tracker._closed, timeout=60)
        _thread.interrupt_main()  # what Ctrl-C does: KeyboardInterrupt in the main thread

    threading.Thread(target=interrupt_once_closing, daemon=True).start()
    # Python's own Ctrl-C handler, even where this suite runs with SIGINT ignored (a
    # shell's background job): interrupt_main() does nothing without it.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            tracker.close(timeout=None)  # would wait forever for this server
    finally:
        signal.signal(signal.SIGINT, previous)
    unwritten = tracker.unwritten()
    assert unwritten is not None and unwritten.reason == "interrupted"
    assert unwritten.trials == ("digits-a",)
    assert tracker._proc is not None and tracker._proc.poll() is not None


WRITER_OWNER = """
import sys
from tuner.spec.models import Experiment
from tuner.tracking import MlflowTracker
from tests.tuner.test_tracking import SPEC, UID

tracker = MlflowTracker(sys.argv[1], in_process=False)  # the process is the subject
tracker.start_experiment(Experiment.model_validate(SPEC), UID)
assert tracker.flush(timeout=60)
print(tracker._proc.pid, flush=True)
sys.stdin.read()  # until killed
"""


def test_the_writer_dies_with_the_process_that_owns_it(store: tuple[str, Path]) -> None:
    uri, _ = store
    owner = subprocess.Popen(
        [sys.executable, "-c", WRITER_OWNER, uri],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert owner.stdout is not None
        writer = int(owner.stdout.readline())
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(timeout=30)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()

    wait_until(lambda: not pid_running(writer), timeout=30)


def test_an_abort_while_the_writer_process_starts_leaves_no_writer_behind(
    store: tuple[str, Path],
) -> None:
    """``abort()`` that comes while the sender thread starts the writer process (it sees
    no process to kill yet): the process is killed as soon as it exists, nothing is
    written after the abort, and the events are reported as unwritten."""
    uri, root = store
    tracker = MlflowTracker(uri, root, in_process=False)
    spawn = tracker._spawn
    started: list[subprocess.Popen[bytes]] = []

    def spawn_during_an_abort() -> subprocess.Popen[bytes]:
        tracker.abort("stopped")  # before the process is known to the tracker
        started.append(spawn())
        return started[0]

    tracker._spawn = spawn_during_an_abort  # type: ignore[method-assign]
    tracker.start_experiment(EXPERIMENT, UID)
    assert tracker._sender is not None
    tracker._sender.join(timeout=30)
    assert not tracker._sender.is_alive()
    assert len(started) == 1 and started[0].poll() is not None
    unwritten = tracker.unwritten()
    assert unwritten is not None and unwritten.reason == "stopped"
    assert MlflowClient(uri).get_experiment_by_name(EXPERIMENT.metadata.name) is None


@contextlib.contextmanager
def a_writer_held_inside_sqlite(
    store: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[threading.Event]:
    """An in-process writer stopped inside a SQLite transaction until the yielded event
    is set (then it writes everything)."""
    uri, root = store
    inside, leave = threading.Event(), threading.Event()
    real_write = mlflow_sql._SqliteDb.write

    @contextlib.contextmanager
    def held_write(self: Any) -> Iterator[Any]:
        with real_write(self) as tx:
            inside.set()
            leave.wait(30)
            yield tx

    monkeypatch.setattr(mlflow_sql._SqliteDb, "write", held_write)
    tracker = MlflowTracker(uri, root, in_process=True)
    try:
        tracker.start_experiment(EXPERIMENT, UID)
        tracker._wake()
        assert inside.wait(30)
        yield leave
    finally:
        leave.set()
        tracker.close(timeout=60)
    assert tracker._proc is None and tracker.unwritten() is None
    assert MlflowClient(uri).get_experiment_by_name(EXPERIMENT.metadata.name) is not None


def fork_in_a_thread(forked: threading.Event, children: list[int]) -> threading.Thread:
    def fork() -> None:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        children.append(pid)
        forked.set()

    thread = threading.Thread(target=fork)
    thread.start()
    return thread


def test_a_fork_waits_while_the_in_process_writer_is_inside_sqlite(
    store: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forked child (a pipeline's worker) inherits SQLite's process-wide mutexes as the
    fork found them: ``os.fork`` waits until a writer thread of this process has left
    SQLite, and goes on at once after."""
    forked, children = threading.Event(), []
    try:
        with a_writer_held_inside_sqlite(store, monkeypatch) as leave:
            forking = fork_in_a_thread(forked, children)
            assert not forked.wait(0.3)  # the writer is inside a transaction
            leave.set()
            assert forked.wait(30)
            forking.join(30)
    finally:
        for pid in children:
            os.waitpid(pid, 0)


def test_a_fork_waits_for_sqlite_a_bounded_time(
    store: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wait is bounded (SQLite sleeping on another process's write lock holds none of
    its process-wide mutexes): past it the fork goes on, and the writer's lock is intact
    (it finishes its transaction and writes everything)."""
    monkeypatch.setattr(mlflow_sql, "_FORK_WAIT", 0.2)
    forked, children = threading.Event(), []
    try:
        with a_writer_held_inside_sqlite(store, monkeypatch):
            forking = fork_in_a_thread(forked, children)
            assert forked.wait(30)  # while the writer is still inside
            forking.join(30)
    finally:
        for pid in children:
            os.waitpid(pid, 0)


def test_reconciling_leaves_complete_runs_alone_and_ends_running_ones(
    store: tuple[str, Path], tmp_path: Path
) -> None:
    uri, root = store
    t0 = 1_700_000_000.0
    first = MlflowTracker(uri, root)
    first.start_experiment(EXPERIMENT, UID)
    first.start_trial("digits-a", {"lr": 0.01, "optimizer": "adam"}, t0)
    first.log_observations("digits-a", [obs("accuracy", 0.5, 0, t0 + 1)])
    first.end_trial("digits-a", TrialPhase.SUCCEEDED, {"accuracy": 0.5}, None, t0 + 2)
    first.start_trial("digits-b", {"lr": 0.02, "optimizer": "sgd"}, t0 + 3)  # never ended
    first.close(timeout=60)
    assert first.unwritten() is None
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("digits")
    assert experiment is not None
    before = runs_of(client, experiment.experiment_id)
    assert before["digits-b"].info.status == "RUNNING"
    # The same runs are found without importing mlflow (what `experiment best` uses).
    assert trial_run_id(uri, EXPERIMENT, UID, "digits-a") == before["digits-a"].info.run_id
    assert trial_run_id(uri, EXPERIMENT, UID, "nope") is None

    # A later run of the (finished) experiment re-sends everything the store knows.
    second = MlflowTracker(uri, root)
    second.start_experiment(EXPERIMENT, UID)
    second.start_trial("digits-a", {"lr": 0.01, "optimizer": "adam"}, t0)
    second.log_observations("digits-a", [obs("accuracy", 0.5, 0, t0 + 1)])
    second.end_trial("digits-a", TrialPhase.SUCCEEDED, {"accuracy": 0.5}, None, t0 + 2)
    second.start_trial("digits-b", {"lr": 0.02, "optimizer": "sgd"}, t0 + 3)
    second.end_trial("digits-b", TrialPhase.FAILED, {}, None, t0 + 5)
    second.start_trial("digits-c", {"lr": 0.03, "optimizer": "sgd"}, t0 + 6)  # missing so far
    second.end_trial("digits-c", TrialPhase.KILLED, {}, None, t0 + 7)
    second.end_experiment(
        ExperimentPhase.SUCCEEDED, ExperimentReason.MAX_TRIALS_REACHED, "digits-a", {}, t0 + 8
    )
    second.close(timeout=60)
    assert second.unwritten() is None
    after = runs_of(client, experiment.experiment_id)
    assert set(after) == {"digits", "digits-a", "digits-b", "digits-c"}
    a = after["digits-a"]
    assert (a.info.start_time, a.info.end_time) == (int(t0 * 1000), int((t0 + 2) * 1000))
    assert a.info.end_time == before["digits-a"].info.end_time  # untouched
    assert [m.value for m in client.get_metric_history(a.info.run_id, "accuracy")] == [0.5]
    assert (after["digits-b"].info.status, after["digits-b"].info.end_time) == (
        "FAILED",
        int((t0 + 5) * 1000),
    )
    c = after["digits-c"]
    assert (c.info.status, c.info.start_time) == ("KILLED", int((t0 + 6) * 1000))
    assert after["digits"].info.status == "FINISHED"


@contextlib.contextmanager
def write_locked(db: Path) -> Iterator[None]:
    """Another connection holds the store's write lock (readers still read: WAL)."""
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")


def test_in_process_close_is_bounded_and_a_later_write_never_says_more_than_it_did(
    store: tuple[str, Path],
) -> None:
    uri, root = store
    db = Path(uri.removeprefix("sqlite:///"))
    tracker = MlflowTracker(uri, root, in_process=True)
    with write_locked(db):
        tracker.start_experiment(EXPERIMENT, UID)
        tracker.start_trial("digits-a", {"lr": 0.01, "optimizer": "adam"})
        tracker.end_trial("digits-a", TrialPhase.FAILED, {}, None)
        tracker.end_experiment(ExperimentPhase.FAILED, "TrialsFailed", None, {})
        tracker.close(timeout=1.0)  # the writer waits for the lock (30 s): not close()
        unwritten = tracker.unwritten()
        assert unwritten is not None
        assert unwritten.trials == ("digits-a",) and unwritten.experiment_end
        assert unwritten.reason == "the final drain's 1 s ran out"
        assert tracker._proc is None  # the writer was this process's thread
    # The thread's transaction, once it gets the lock, is the last thing it writes; what
    # it wrote says what happened: the failed runs are FAILED, never FINISHED.
    wait_until(lambda: tracker._writer_done, timeout=60)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("digits")
    if experiment is not None:
        for run in runs_of(client, experiment.experiment_id).values():
            assert run.info.status in ("RUNNING", "FAILED"), run.info


def test_in_process_ctrl_c_while_draining_reports(store: tuple[str, Path]) -> None:
    uri, root = store
    db = Path(uri.removeprefix("sqlite:///"))
    tracker = MlflowTracker(uri, root, in_process=True)

    def interrupt_once_closing() -> None:
        wait_until(lambda: tracker._closed, timeout=60)
        _thread.interrupt_main()

    with write_locked(db):
        tracker.start_experiment(EXPERIMENT, UID)
        tracker.start_trial("digits-a", {"lr": 0.01, "optimizer": "adam"})
        threading.Thread(target=interrupt_once_closing, daemon=True).start()
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            with pytest.raises(KeyboardInterrupt):
                tracker.close(timeout=None)
        finally:
            signal.signal(signal.SIGINT, previous)
        unwritten = tracker.unwritten()
        assert unwritten is not None and unwritten.reason == "interrupted"
        assert unwritten.trials == ("digits-a",)
    wait_until(lambda: tracker._writer_done, timeout=60)


def test_in_process_falls_back_to_the_writer_process_for_a_store_to_create(
    tmp_path: Path,
) -> None:
    """Creating a store imports mlflow (seconds of CPU): never on the caller's interpreter."""
    db = tmp_path / "new" / "mlflow.db"
    tracker = MlflowTracker(f"sqlite:///{db}", in_process=True)
    tracker.start_experiment(EXPERIMENT, UID)
    tracker.end_experiment(ExperimentPhase.SUCCEEDED, ExperimentReason.GOAL_REACHED, None, {})
    tracker.close(timeout=120)
    assert tracker.unwritten() is None
    assert tracker._proc is not None and tracker._proc.returncode == 0
    run = MlflowClient(f"sqlite:///{db}").get_run(tracker.run_id() or "")
    assert run.info.status == "FINISHED"
