"""MLflow tracking off the controller's hot path: a queue and one background writer thread.

Every call stamps an event and puts it on a queue (microseconds). The writer thread imports
mlflow (seconds, so not at start-up), then repeatedly takes everything queued, folds it
into per-run buffers and writes them with few round trips (see
:mod:`tuner.tracking.mlflow_writer`), waiting ``batch_interval`` between cycles so calls
from many trials share a cycle. Failed writes are retried with exponential backoff; the
buffers keep the data meanwhile.

Crash semantics: everything logged before a :meth:`MlflowTracker.flush` that returned True
is in MLflow. Events of the last cycle (about ``batch_interval`` seconds) before a SIGKILL
may be missing; the hyperflow store, not MLflow, is the record the controller resumes from.
Re-logging the same observations after a resume (same name, value, step and timestamp) does
not duplicate them in a SQL store, which ignores identical metric rows. Observations
without a step are numbered per metric by the tracker, and that numbering restarts at 0 in
a new tracker: metrics that must resume cleanly should carry their own steps.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tuner.spec.models import Experiment
from tuner.tracking.base import Tracker
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
    from tuner.tracking.mlflow_writer import MlflowWriter

logger = logging.getLogger(__name__)

# Bounds the wait at interpreter exit when the owner never called close().
_EXIT_FLUSH_TIMEOUT = 10.0
_WAKE = object()  # queued by flush/close to get the writer out of a blocking get()


def _quiet_mlflow() -> None:
    """Keep MLflow's chatter out of the controller's output.

    Its INFO lines on database creation/migration and the deprecation warnings its own
    modules trigger (e.g. SQLAlchemy's) are about MLflow, not the user's experiment.
    """
    for name in ("mlflow.store.db.utils", "mlflow.store.db_migrations", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module=r"mlflow(\.|$)")


def _now_ms() -> int:
    return int(time.time() * 1000)


class MlflowTracker(Tracker):
    """Records an experiment in the MLflow tracking store at ``tracking_uri``.

    ``artifact_root``: where a new MLflow experiment's artifacts go (a local directory);
    by default ``mlartifacts/`` next to a SQLite store's database file. Ignored for an
    ``http(s)://`` tracking server, which chooses artifact locations itself. ``sqlite_wal``: switch a SQLite store to WAL mode, which
    makes writes about ten times faster (see :func:`~tuner.tracking.mlflow_writer.use_wal`).
    ``batch_interval`` (s) is how long calls accumulate between writes; failed writes are
    retried after ``initial_backoff`` s, doubling up to ``max_backoff`` s.
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
    ) -> None:
        self.tracking_uri = tracking_uri
        self._artifact_root = artifact_root
        self._batch_interval = batch_interval
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._sqlite_wal = sqlite_wal
        self._queue: queue.SimpleQueue[tuple[int, object]] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._enqueued = 0  # sequence number of the last queued event
        self._written = 0  # every event up to this number is written (or rejected)
        self._closed = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._writer: MlflowWriter | None = None
        # Started by the first event: a tracker that records nothing (e.g. the experiment
        # had finished already) never imports mlflow, which takes seconds.
        self._thread: threading.Thread | None = None

    # -- the controller's side: enqueue only ------------------------------------------------

    def _put(self, event: Event) -> None:
        with self._cond:
            if self._closed:
                logger.warning("tracking: %s after close() ignored", type(event).__name__)
                return
            self._enqueued += 1
            # Under the lock so queue order equals sequence order.
            self._queue.put((self._enqueued, event))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="hyperflow-mlflow", daemon=True
                )
                self._thread.start()
                atexit.register(self._close_at_exit)

    def start_experiment(self, experiment: Experiment, uid: str) -> None:
        self._put(ExperimentStarted(experiment, uid, _now_ms()))

    def start(self, subject: RunsLayout, uid: str) -> None:
        """Like :meth:`start_experiment` for any parent-with-nested-runs object (a pipeline
        run): ``subject`` names the MLflow experiment, runs, tags and params; the nested
        runs are then recorded with the trial methods, one "trial" per child."""
        self._put(ExperimentStarted(subject, uid, _now_ms()))

    def start_trial(self, trial_name: str, assignments: dict[str, float | int | str]) -> None:
        self._put(TrialStarted(trial_name, dict(assignments), _now_ms()))

    def log_observations(self, trial_name: str, observations: Sequence[Observation]) -> None:
        if observations:
            self._put(ObservationsLogged(trial_name, tuple(observations), _now_ms()))

    def end_trial(
        self,
        trial_name: str,
        phase: TrialPhase,
        metrics: dict[str, float],
        trial_dir: Path | None,
    ) -> None:
        self._put(TrialEnded(trial_name, phase, dict(metrics), trial_dir, _now_ms()))

    def end_experiment(
        self,
        phase: ExperimentPhase,
        reason: str,
        best_trial_name: str | None,
        best_metrics: dict[str, float],
    ) -> None:
        self._put(
            ExperimentEnded(phase, str(reason), best_trial_name, dict(best_metrics), _now_ms())
        )

    def flush(self, timeout: float | None = None) -> bool:
        with self._cond:
            target = self._enqueued
            if self._written >= target:
                return True
        self._wake.set()
        self._queue.put((0, _WAKE))
        with self._cond:
            return self._cond.wait_for(lambda: self._written >= target, timeout)

    def close(self, timeout: float | None = None) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is None:  # nothing was ever recorded
            return
        atexit.unregister(self._close_at_exit)
        deadline = None if timeout is None else time.monotonic() + timeout
        flushed = self.flush(timeout)
        self._stop.set()
        self._wake.set()
        self._queue.put((0, _WAKE))
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        thread.join(remaining)
        if not flushed:
            with self._cond:
                lost = self._enqueued - self._written
            logger.error(
                "tracking: %d event(s) not written to MLflow at %s before close() timed out",
                lost,
                self.tracking_uri,
            )

    def _close_at_exit(self) -> None:
        self.close(_EXIT_FLUSH_TIMEOUT)

    def describe(self) -> str:
        writer = self._writer
        if writer is None:
            return f"MLflow tracking at {self.tracking_uri} (nothing written yet)"
        return writer.describe()

    def run_id(self, trial_name: str | None = None) -> str | None:
        writer = self._writer
        return writer.run_id(trial_name) if writer is not None else None

    # -- the writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        writer = self._open_writer()
        while True:
            last = self._absorb(writer, self._queue.get())
            if writer is None or self._write_until_done(writer):
                with self._cond:
                    self._written = max(self._written, last)
                    self._cond.notify_all()
            if self._stop.is_set():
                return
            # Let calls accumulate so that one cycle writes many of them.
            self._wake.wait(self._batch_interval)
            self._wake.clear()

    def _open_writer(self) -> MlflowWriter | None:
        try:
            _quiet_mlflow()
            from tuner.tracking.mlflow_writer import MlflowWriter

            writer = MlflowWriter(
                self.tracking_uri, self._artifact_root, sqlite_wal=self._sqlite_wal
            )
        except Exception:
            # Without a writer, events are discarded (and flush returns): tracking must
            # never take the controller down.
            logger.exception("tracking: cannot use MLflow at %s; tracking off", self.tracking_uri)
            return None
        self._writer = writer
        return writer

    def _absorb(self, writer: MlflowWriter | None, first: tuple[int, object]) -> int:
        """Fold ``first`` and everything else queued into the writer; the last sequence no."""
        last = 0
        item: tuple[int, object] | None = first
        while item is not None:
            seq, event = item
            if event is not _WAKE:
                last = max(last, seq)
                if writer is not None:
                    try:
                        writer.apply(event)  # type: ignore[arg-type]
                    except Exception:
                        logger.exception("tracking: cannot record %s", type(event).__name__)
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                item = None
        return last

    def _write_until_done(self, writer: MlflowWriter) -> bool:
        """Sync until nothing is pending; False if stopped first (data stays buffered)."""
        failures = 0
        while True:
            try:
                writer.sync()
            except Exception as error:
                failures += 1
                delay = min(self._max_backoff, self._initial_backoff * 2 ** (failures - 1))
                logger.warning(
                    "tracking: writing to MLflow at %s failed (attempt %d, retry in %.1fs): %s",
                    self.tracking_uri,
                    failures,
                    delay,
                    error,
                    exc_info=logger.isEnabledFor(logging.DEBUG),
                )
                if self._stop.wait(delay):
                    return False
                continue
            if failures:
                logger.info("tracking: MLflow at %s reachable again", self.tracking_uri)
            return True
