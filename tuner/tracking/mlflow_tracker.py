"""MLflow tracking off the experiment's path: a queue here, a writer beside it.

Every call stamps an event and queues it (microseconds). A sender thread starts the
writer on the first event: a process (:mod:`tuner.tracking.mlflow_process`), to which it
streams the events a burst at a time (it lets events gather up to 0.25 s, never past a
flush or close), or the same write loop on the sender thread itself (see "Where the
writer runs"). The writer imports what the store needs, folds the events into per-run
buffers and writes them with few round trips (:mod:`tuner.tracking.mlflow_writer`),
every ``batch_interval`` seconds, retrying failed writes with exponential backoff. It
acknowledges what it wrote; a reader thread here takes the acknowledgements, so
:meth:`MlflowTracker.flush` knows what is in MLflow and :meth:`MlflowTracker.close` can
say exactly what is not.

Where the writer runs. A process of its own (``nice``\\ d) for any store that needs
mlflow imported (a store still to be created, an MLflow server, a schema the SQL writer
does not know): importing mlflow and opening such a store cost seconds of CPU that would
hold this interpreter (its GIL) while the experiment runs, and the experiment's process
can end a process at any time — when the final drain is over its time limit, or on
Ctrl-C — without waiting for a network call to return. On a SQLite store that the SQL
writer (:mod:`tuner.tracking.mlflow_sql`) takes as it is, the same write loop can run on
the sender thread instead: nothing of mlflow is imported and a write is a few
milliseconds of ``sqlite3`` (which releases the GIL while SQLite works), so a process (an
interpreter start and its imports, pickled events, its exit: 60 ms of CPU, and 110 ms
instead of 49 ms for a 10-trial experiment) buys nothing there. Who writes where:

- ``in_process=None`` (the default: ``hyperflow experiment run``, the SDK, the server):
  one tracker of this process at a time writes from a thread; a tracker that starts
  while another one does gets a process. One experiment alone is spared the process; the
  server's many at once keep most of the writing off the interpreter that runs their
  controllers (four experiments of 250 function trials each, every writer a thread: 6 %
  slower than with processes, measured with ``benchmarks/trials.py``'s experiment).
- ``in_process=True`` (a pipeline run: a few runs, not a stream of trials): a thread
  whenever the store allows it.
- ``in_process=False``: always a process.

The guarantees are the same either way: :meth:`flush` and :meth:`close` return True /
nothing unwritten only for what is committed; a close that runs out of time or is
interrupted stops the thread after its current write cycle (it cannot be killed: the
cycle's transactions finish or roll back, and what it writes then is more than the
report says, never less) and reports everything not acknowledged as unwritten.

Crash semantics: everything logged before a :meth:`MlflowTracker.flush` that returned True
is in MLflow. The writer dies with this process (a ``kill -9`` included), so events of
the last moments may be missing: the hyperflow store, not MLflow, is the record an
experiment resumes from, and re-sending on resume is idempotent (runs are found by tag;
a run whose final status is already written is left as it is; metric rows of the same
step and timestamp are not duplicated). Observations without a step (a function's
returned values) take the step after the metric's last one in that run, counted by the
writer, and that numbering restarts in a new tracker: metrics that must resume cleanly
should carry their own steps.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tuner
from tuner import framing
from tuner.tracking import _wire as wire
from tuner.tracking import layout
from tuner.tracking.base import Tracker, Unwritten
from tuner.tracking.events import (
    Event,
    ExperimentEnded,
    ExperimentStarted,
    ObservationsLogged,
    TrialEnded,
    TrialStarted,
)
from tuner.tracking.layout import RunsLayout
from tuner.types import ExperimentPhase, Observation, TrialPhase

if TYPE_CHECKING:
    from tuner.spec.models import Experiment

logger = logging.getLogger(__name__)

# Bounds the wait at interpreter exit when the owner never called close().
_EXIT_FLUSH_TIMEOUT = 10.0
_WAIT_SLICE = 0.1  # waits are sliced so that Ctrl-C is handled promptly
# How long the sender lets events gather before it passes them to the writer process (at
# most the writer's batch interval, which it waits anyway; a flush or close ends it at
# once): one wake-up of the sender and of the writer per burst instead of per event.
_SEND_LINGER = 0.25


# Held by the one tracker of this process that writes from a thread by default
# (``in_process=None``); the others start writer processes (see the module docstring).
_THREAD_WRITER = threading.Lock()


def _ms(at: float | None) -> int:
    return int((time.time() if at is None else at) * 1000)


class _Messages:
    """The in-process write loop's ``out``: its messages straight to the tracker."""

    def __init__(self, receive: Callable[..., None]) -> None:
        self.send = receive


class MlflowTracker(Tracker):
    """Records an experiment in the MLflow tracking store at ``tracking_uri``.

    ``artifact_root``: where a new MLflow experiment's artifacts go (a local directory);
    by default ``mlartifacts/`` next to a SQLite store's database file. Ignored for an
    ``http(s)://`` tracking server, which chooses artifact locations itself. ``sqlite_wal``:
    switch a SQLite store to WAL mode, which makes writes about ten times faster (see
    :func:`~tuner.tracking.mlflow_writer.use_wal`). ``batch_interval`` (s) is how long
    calls accumulate between writes; failed writes are retried after ``initial_backoff``
    s, doubling up to ``max_backoff`` s. ``nice``: the writer process's niceness.
    ``in_process``: write from a thread of this process where the store allows it —
    ``None``: if no other tracker of this process does at the moment; ``True``: always;
    ``False``: never (see the module docstring).
    """

    def __init__(
        self,
        tracking_uri: str,
        artifact_root: Path | None = None,
        *,
        batch_interval: float = 0.5,
        initial_backoff: float = 0.5,
        max_backoff: float = 30.0,
        sqlite_wal: bool = True,
        nice: int = 10,
        in_process: bool | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self._in_process = in_process
        self._batch_interval = batch_interval
        self._artifact_root = artifact_root
        self._sqlite_wal = sqlite_wal
        self._config = {
            "tracking_uri": tracking_uri,
            "artifact_root": str(artifact_root) if artifact_root is not None else None,
            "batch_interval": batch_interval,
            "initial_backoff": initial_backoff,
            "max_backoff": max_backoff,
            "sqlite_wal": sqlite_wal,
            "nice": nice,
        }
        self._outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._enqueued = 0  # sequence number of the last queued event
        self._written = 0  # every event up to this number is written (or rejected)
        # Events not acknowledged yet: what close() reports when it cannot wait longer.
        self._pending: dict[int, tuple[str, str | None]] = {}
        self._closed = False
        self._aborted = False
        self._failure: str | None = None  # the writer cannot write any more, and why
        self._unwritten: Unwritten | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._loop: Any = None  # the in-process WriteLoop, when the sender thread writes
        self._sender: threading.Thread | None = None
        self._nudge = threading.Event()  # flush/close/abort: the sender stops lingering
        self._writer_done = False  # the writer process exited / the write loop returned
        self._experiment: tuple[str | None, str | None] = (None, None)
        self._run_ids: dict[str | None, str] = {}

    # -- the controller's side: queue only --------------------------------------------------

    def _put(self, event: Event, trial: str | None = None) -> None:
        with self._cond:
            if self._closed:
                logger.warning("tracking: %s after close() ignored", type(event).__name__)
                return
            self._enqueued += 1
            self._pending[self._enqueued] = (type(event).__name__, trial)
            # Under the lock so queue order equals sequence order.
            self._outbox.put((wire.EVENT, self._enqueued, event))
            if self._sender is None:
                self._sender = threading.Thread(
                    target=self._send, name="hyperflow-mlflow", daemon=True
                )
                self._sender.start()
                atexit.register(self._close_at_exit)

    def start_experiment(self, experiment: Experiment, uid: str) -> None:
        # Plain data: the writer process then never loads the spec's models.
        self._put(ExperimentStarted(layout.PlainLayout.of(experiment, uid), uid, _ms(None)))

    def start(self, subject: RunsLayout, uid: str, started_at: float | None = None) -> None:
        """Like :meth:`start_experiment` for any parent-with-nested-runs object (a pipeline
        run): ``subject`` names the MLflow experiment, runs, tags and params; the nested
        runs are then recorded with the trial methods, one "trial" per child. The parent
        run, when it is created, starts at ``started_at`` (a resumed run's own start), else
        now."""
        self._put(ExperimentStarted(subject, uid, _ms(started_at)))

    def start_trial(
        self,
        trial_name: str,
        assignments: dict[str, float | int | str],
        started_at: float | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        self._put(
            TrialStarted(trial_name, dict(assignments), _ms(started_at), dict(tags or {})),
            trial_name,
        )

    def log_observations(self, trial_name: str, observations: Sequence[Observation]) -> None:
        if observations:
            self._put(ObservationsLogged(trial_name, tuple(observations), _ms(None)), trial_name)

    def end_trial(
        self,
        trial_name: str,
        phase: TrialPhase,
        metrics: dict[str, float],
        trial_dir: Path | None,
        ended_at: float | None = None,
        texts: dict[str, str] | None = None,
    ) -> None:
        """The trial's run ends: its final metrics, the files of ``trial_dir`` (its log and
        ``artifacts/``) and ``texts`` (artifact name -> content) into its artifacts."""
        self._put(
            TrialEnded(
                trial_name, phase, dict(metrics), trial_dir, _ms(ended_at), dict(texts or {})
            ),
            trial_name,
        )

    def end_experiment(
        self,
        phase: ExperimentPhase,
        reason: str,
        best_trial_name: str | None,
        best_metrics: dict[str, float],
        ended_at: float | None = None,
    ) -> None:
        self._put(
            ExperimentEnded(phase, str(reason), best_trial_name, dict(best_metrics), _ms(ended_at))
        )

    def flush(self, timeout: float | None = None) -> bool:
        with self._cond:
            target = self._enqueued
            if self._written >= target:
                return True
            if self._failure is not None:
                return False
        self._outbox.put((wire.FLUSH,))
        self._wake()
        return self._wait(
            lambda: self._written >= target or self._failure is not None, timeout
        ) and (self._written >= target)

    def _wait(self, done: Any, timeout: float | None) -> bool:
        """Wait for ``done()`` (under the lock) in short slices, so Ctrl-C is taken at once."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not done():
                remaining = _WAIT_SLICE if deadline is None else deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(_WAIT_SLICE, remaining))
            return True

    def close(self, timeout: float | None = None) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            sender = self._sender
        if sender is None:  # nothing was ever recorded
            return
        atexit.unregister(self._close_at_exit)
        self._outbox.put(wire.CLOSED)
        self._wake()
        try:
            finished = self._wait(self._writer_finished, timeout)
        except BaseException:
            # Ctrl-C (KeyboardInterrupt) while waiting: the writer goes now, and what it
            # had not written is reported, before the interrupt goes on.
            self.abort("interrupted")
            raise
        if not finished:
            # Never waited for forever: what is left is reported.
            self.abort(f"the final drain's {timeout:g} s ran out")
            return
        sender.join(timeout=5)
        self._record_unwritten(None)

    def abort(self, reason: str = "the MLflow writer was stopped") -> None:
        """Stop the writer process now, whatever it was doing (the in-process writer: after
        its current write cycle), and report what it had not written (idempotent: the
        first report stands)."""
        with self._cond:
            self._closed = True
            self._aborted = True
            proc = self._proc
            loop = self._loop
        atexit.unregister(self._close_at_exit)
        self._nudge.set()
        if self._in_process is not False:
            self._outbox.put(wire.CLOSED)  # a loop waiting for events ends too
        if loop is not None:
            loop.stop.set()
            loop.wake.set()
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        with self._cond:
            if self._failure is None and self._written < self._enqueued:
                self._failure = reason
            self._cond.notify_all()
            reported = self._unwritten is not None
        if not reported:
            self._record_unwritten(reason)

    def _writer_finished(self) -> bool:
        return self._failure is not None or self._writer_done

    def _wake(self) -> None:
        """What was queued before this call goes to the writer at once: the sender stops
        lingering; an in-process write loop writes it (one not started yet takes it first
        thing: it is set before it takes anything)."""
        self._nudge.set()
        loop = self._loop
        if loop is not None:
            loop.wake.set()

    def _record_unwritten(self, reason: str | None) -> None:
        with self._cond:
            if self._written >= self._enqueued:
                self._unwritten = None
                return
            pending = [self._pending[s] for s in sorted(self._pending) if s > self._written]
            why = self._failure or reason or "the MLflow writer stopped"
        trials = tuple(dict.fromkeys(t for _, t in pending if t is not None))
        ended = any(kind == "ExperimentEnded" for kind, _ in pending)
        self._unwritten = Unwritten(why, trials, ended, len(pending))
        logger.error(
            "tracking: %s at %s: %s",
            "MLflow",
            self.tracking_uri,
            self._unwritten.describe(),
        )

    def unwritten(self) -> Unwritten | None:
        return self._unwritten

    def _close_at_exit(self) -> None:
        self.close(_EXIT_FLUSH_TIMEOUT)

    def describe(self) -> str:
        name, experiment_id = self._experiment
        parent = self._run_ids.get(None)
        if experiment_id is None or parent is None:
            return f"MLflow tracking at {self.tracking_uri} (nothing written yet)"
        return (
            f"MLflow experiment '{name}' (id {experiment_id}), "
            f"parent run {parent} (tracking: {self.tracking_uri})"
        )

    def run_id(self, trial_name: str | None = None) -> str | None:
        return self._run_ids.get(trial_name)

    # -- the sender thread: starts the writer, streams events to it ------------------------

    def _spawn(self) -> subprocess.Popen[bytes]:
        package_root = str(Path(tuner.__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        env[wire.PARENT_PID_ENV] = str(os.getpid())
        return subprocess.Popen(
            [sys.executable, "-m", "tuner.tracking.mlflow_process", json.dumps(self._config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            # Its own session: a Ctrl-C to the terminal reaches this process, which decides
            # when the writer stops.
            start_new_session=True,
        )

    def _fail(self, reason: str) -> None:
        with self._cond:
            if self._failure is None:
                self._failure = reason
            self._cond.notify_all()

    def _send(self) -> None:
        if self._in_process is not False and self._write_here_if_allowed():
            return
        with self._cond:
            if self._aborted:
                return  # stopped before a writer existed: none is started to write later
        # This thread lives until the writer exits: PR_SET_PDEATHSIG, which the writer
        # sets, fires when the thread that started it ends.
        try:
            proc = self._spawn()
        except OSError as exc:
            logger.error("tracking: cannot start the MLflow writer: %s", exc)
            self._fail(f"the MLflow writer could not start: {exc}")
            return
        with self._cond:
            self._proc = proc
            aborted = self._aborted
        if aborted:  # abort() came between the check above and this: it saw no process
            proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
            return
        assert proc.stdin is not None
        threading.Thread(
            target=self._read, args=(proc,), name="hyperflow-mlflow-acks", daemon=True
        ).start()
        linger = min(_SEND_LINGER, self._batch_interval)
        try:
            closed = False
            while not closed:
                item = self._outbox.get()
                if item is not wire.CLOSED and item[0] == wire.EVENT and linger > 0:
                    self._nudge.wait(linger)  # let a burst gather (see _SEND_LINGER)
                    self._nudge.clear()
                frames: list[bytes] = []
                while True:
                    if item is wire.CLOSED:
                        closed = True
                        break
                    frames.append(framing.encode(item))
                    try:
                        item = self._outbox.get_nowait()
                    except queue.Empty:
                        break
                proc.stdin.write(b"".join(frames))
                proc.stdin.flush()
            proc.stdin.close()
        except (BrokenPipeError, ValueError, OSError):
            pass  # the writer is gone; the reader reports why
        proc.wait()

    def _receive(self, *message: Any) -> None:
        """A message from the writer (``WRITTEN``, ``RUNS``, ``LOG``, ``FATAL``)."""
        kind = message[0]
        if kind == wire.WRITTEN:
            with self._cond:
                self._written = max(self._written, message[1])
                for seq in [s for s in self._pending if s <= self._written]:
                    del self._pending[seq]
                self._cond.notify_all()
        elif kind == wire.RUNS:
            _, name, experiment_id, ids = message
            self._experiment = (name, experiment_id)
            self._run_ids.update(ids)
        elif kind == wire.LOG:
            _, level, name, text = message
            logging.getLogger(name).log(level, "%s", text)
        elif kind == wire.FATAL:
            logger.error("tracking: MLflow at %s cannot be used: %s", self.tracking_uri, message[1])
            self._fail(f"MLflow at {self.tracking_uri} cannot be used: {message[1]}")

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        try:
            while (message := framing.receive(proc.stdout)) is not None:
                self._receive(*message)
        finally:
            code = proc.wait()
            self._writer_ended(f"the MLflow writer exited with code {code}")

    def _writer_ended(self, why: str) -> None:
        with self._cond:
            self._writer_done = True
            if self._written < self._enqueued and self._failure is None and not self._closed:
                self._failure = why
            self._cond.notify_all()

    # -- in-process writing (see the module docstring) ---------------------------------------

    def _write_here_if_allowed(self) -> bool:
        """Write on this thread if the store allows it and (``in_process=None``) no other
        tracker of this process does; True once the write loop has ended."""
        slot = _THREAD_WRITER if self._in_process is None else None
        if slot is not None and not slot.acquire(blocking=False):
            return False  # another experiment of this process writes from a thread now
        try:
            writer = self._open_here()
            if writer is None:
                return False
            self._write_here(writer)
            return True
        finally:
            if slot is not None:
                slot.release()

    def _open_here(self) -> Any:
        """An MlflowWriter on the SQL writer's connection to a complete SQLite store, or
        None (the writer process then does what it does for any other store)."""
        from tuner.tracking.probe import sqlite_path

        uri = self.tracking_uri
        try:
            path = sqlite_path(uri) if uri.startswith("sqlite:") else None
            if path is None or not path.is_file():
                return None  # still to be created (by MLflow, imported in the writer process)
            from tuner.tracking.mlflow_sql import SqlRunStore
            from tuner.tracking.mlflow_writer import MlflowWriter

            store = SqlRunStore.open(uri, user=layout.current_user(), sqlite_wal=self._sqlite_wal)
            if store is None:
                return None  # tables the SQL writer does not write: MLflow's API, in the process
            try:
                return MlflowWriter(
                    uri, self._artifact_root, sqlite_wal=self._sqlite_wal, store=store
                )
            except BaseException:
                store.close()
                raise
        except Exception as error:  # locked, unreadable: the process retries and reports
            logger.debug("tracking: MLflow store %s not opened in-process: %s", uri, error)
            return None

    def _write_here(self, writer: Any) -> None:
        from tuner.tracking.mlflow_process import WriteLoop

        why = "the in-process MLflow writer stopped"
        try:
            loop = WriteLoop(self._config, self._outbox, _Messages(self._receive))
            with self._cond:
                self._loop = loop
                if self._aborted:
                    loop.stop.set()  # aborted before the loop existed
            loop.run(writer)
        except BaseException as error:
            logger.exception("tracking: the in-process MLflow writer failed")
            why = f"the in-process MLflow writer failed: {type(error).__name__}: {error}"
        finally:
            writer.close()
            self._writer_ended(why)
