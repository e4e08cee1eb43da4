"""The MLflow writer process: :class:`~tuner.tracking.MlflowTracker`'s other half.

``python -m tuner.tracking.mlflow_process CONFIG`` (a JSON object: ``tracking_uri``,
``artifact_root``, ``batch_interval``, ``initial_backoff``, ``max_backoff``,
``sqlite_wal``, ``nice``). A process of its own, so that importing mlflow (seconds of CPU)
and writing runs neither hold the experiment's interpreter (its GIL) nor compete with
trials for the CPU (it runs ``nice``\\ d), and so that the experiment's process can stop it
at any moment — after a bounded final drain, on Ctrl-C — without waiting for a network
call to return.

Frames (:mod:`tuner.framing`) on stdin, from the tracker:
    ``(EVENT, seq, event)``     one :mod:`tuner.tracking.events` record
    ``(FLUSH,)``                write what is queued now, without waiting for the next cycle
    EOF                         write everything left, then exit (the tracker kills the
                                process if that takes longer than it wants to wait)
Frames on stdout, to the tracker:
    ``(WRITTEN, seq)``          every event up to ``seq`` is in MLflow (or was rejected as
                                invalid data, which is logged)
    ``(RUNS, name, id, {trial or None: run id})``   the MLflow experiment and run ids
    ``(LOG, level, logger, message)``               a log record, re-emitted by the tracker
    ``(FATAL, message)``        MLflow cannot be used at all; nothing more will be written

The process dies with the tracker's process (``PR_SET_PDEATHSIG`` and EOF on stdin): an
orphan must never write runs a restarted experiment writes too.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import queue
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import IO, Any, Protocol

from tuner import framing
from tuner.tracking._wire import CLOSED, EVENT, FATAL, FLUSH, LOG, PARENT_PID_ENV, RUNS, WRITTEN

_PR_SET_PDEATHSIG = 1

logger = logging.getLogger("tuner.tracking.mlflow_writer")


class _Outbox:
    """Frames to the tracker, from any thread."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, *message: Any) -> None:
        with self._lock, contextlib.suppress(BrokenPipeError, ValueError, OSError):
            framing.send(self._stream, message)


class _Forward(logging.Handler):
    def __init__(self, outbox: _Outbox) -> None:
        super().__init__(logging.INFO)
        self._outbox = outbox

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            self._outbox.send(LOG, record.levelno, record.name, message)
        except Exception:  # logging must never kill the writer
            self.handleError(record)


def _die_with_parent() -> None:
    parent = os.environ.pop(PARENT_PID_ENV, None)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent is not None and os.getppid() != int(parent):
        os._exit(1)  # orphaned before prctl took effect


def _quiet_mlflow() -> None:
    """MLflow's own INFO chatter (schema migrations) and warnings are not the user's."""
    for name in ("mlflow.store.db.utils", "mlflow.store.db_migrations", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module=r"mlflow(\.|$)")
    warnings.filterwarnings("ignore", module=r"alembic(\.|$)")


class Sink(Protocol):
    def send(self, *message: Any) -> None: ...


class WriteLoop:
    """Takes events from ``inbox`` (``(EVENT, seq, event)``, ``(FLUSH,)``, ``CLOSED``
    last), writes them every ``batch_interval`` s (at once after a flush or the end) and
    sends ``WRITTEN``/``RUNS``/``FATAL`` to ``out``. This process's main loop; also run
    on a thread of the tracker's own process (``MlflowTracker``'s in-process writing), where
    ``stop`` ends it instead of a kill."""

    def __init__(self, config: dict[str, Any], inbox: queue.SimpleQueue[Any], out: Sink) -> None:
        self.config = config
        self.inbox = inbox
        self.out = out
        self.closing = False
        self.flush_now = False
        self.stop = threading.Event()  # in a process of its own, the tracker kills it
        self.wake = threading.Event()  # a flush or the end was asked for
        self.reported: dict[str | None, str] = {}

    def open(self) -> Any:
        uri = self.config["tracking_uri"]
        from tuner.tracking.probe import sqlite_path

        path = sqlite_path(uri) if uri.startswith("sqlite:") else None
        if path is not None:
            from tuner.tracking.mlflow_store import prepare_sqlite_store

            prepare_sqlite_store(path)
        from tuner.tracking.mlflow_writer import MlflowWriter

        root = self.config.get("artifact_root")
        return MlflowWriter(
            uri, Path(root) if root else None, sqlite_wal=self.config.get("sqlite_wal", True)
        )

    def take(self, writer: Any, block: bool, timeout: float | None = None) -> int:
        """Fold queued events into the writer; the highest sequence number taken (0: none)."""
        last = 0
        try:
            item = self.inbox.get(block=block, timeout=timeout)
        except queue.Empty:
            return 0
        while True:
            if item is CLOSED:
                self.closing = True
            elif item[0] == FLUSH:
                self.flush_now = True
            elif item[0] == EVENT:
                _, seq, event = item
                last = max(last, seq)
                try:
                    writer.apply(event)
                except Exception:
                    logger.exception("tracking: cannot record %s", type(event).__name__)
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                return last

    def write_until_done(self, writer: Any) -> bool:
        """True once everything taken is written; False if stopped first."""
        failures = 0
        initial = float(self.config.get("initial_backoff", 0.5))
        ceiling = float(self.config.get("max_backoff", 30.0))
        uri = self.config["tracking_uri"]
        while not self.stop.is_set():
            try:
                writer.sync()
            except Exception as error:
                failures += 1
                delay = min(ceiling, initial * 2 ** (failures - 1))
                logger.warning(
                    "tracking: writing to MLflow at %s failed (attempt %d, retry in %.1fs): %s",
                    uri,
                    failures,
                    delay,
                    error,
                )
                self.stop.wait(delay)
                continue
            if failures:
                logger.info("tracking: MLflow at %s reachable again", uri)
            return True
        return False

    def report_runs(self, writer: Any) -> None:
        ids = writer.run_ids()
        new = {k: v for k, v in ids.items() if v is not None and self.reported.get(k) != v}
        if new or (writer.experiment_id is not None and not self.reported):
            self.reported.update(new)
            self.out.send(RUNS, writer.experiment_name, writer.experiment_id, new)

    def open_with_retries(self) -> Any:
        """The writer; a store that cannot be reached yet (OSError) is retried with backoff,
        one that cannot be used at all (not a database, a schema MLflow refuses) is fatal."""
        failures = 0
        initial = float(self.config.get("initial_backoff", 0.5))
        ceiling = float(self.config.get("max_backoff", 30.0))
        while True:
            try:
                return self.open()
            except OSError as error:
                failures += 1
                delay = min(ceiling, initial * 2 ** (failures - 1))
                logger.warning(
                    "tracking: opening the MLflow store at %s failed (attempt %d, retry in "
                    "%.1fs): %s",
                    self.config["tracking_uri"],
                    failures,
                    delay,
                    error,
                )
                self.stop.wait(delay)

    def run(self, writer: Any = None) -> None:
        """Write until the input ends (or ``stop``); ``writer``: an
        :class:`~tuner.tracking.mlflow_writer.MlflowWriter` opened already."""
        if writer is None:
            _quiet_mlflow()
            try:
                writer = self.open_with_retries()
            except Exception as error:
                self.out.send(FATAL, f"{type(error).__name__}: {error}".strip())
                return
            try:
                self._write(writer)
            finally:
                writer.close()  # its database closed as a database is (SQLite: checkpointed)
            return
        self._write(writer)

    def _write(self, writer: Any) -> None:
        interval = float(self.config.get("batch_interval", 0.5))
        while True:
            last = self.take(writer, block=True)
            if not self.write_until_done(writer):
                return  # stopped: nothing more is acknowledged
            self.report_runs(writer)  # before WRITTEN: a flushed tracker knows its run ids
            if last:
                self.out.send(WRITTEN, last)
            if self.closing:
                return  # everything sent before the end was taken: CLOSED comes last
            if not self.flush_now:
                # Let events accumulate so that one cycle writes many of them.
                self.wake.wait(interval)
            if self.stop.is_set():
                return
            self.wake.clear()
            self.flush_now = False


def main() -> int:
    _die_with_parent()
    config = json.loads(sys.argv[1])
    with contextlib.suppress(OSError):
        os.nice(int(config.get("nice", 10)))  # trials first
    # The protocol owns fds 0 and 1; anything printed (by MLflow, say) goes to stderr.
    inbox_stream = os.fdopen(os.dup(0), "rb")
    out_stream = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    out = _Outbox(out_stream)
    root = logging.getLogger()
    root.handlers[:] = [_Forward(out)]
    root.setLevel(logging.INFO)
    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()

    writer = WriteLoop(config, inbox, out)

    def read() -> None:
        while (message := framing.receive(inbox_stream)) is not None:
            inbox.put(message)
            if message[0] == FLUSH:
                writer.wake.set()
        inbox.put(CLOSED)
        writer.wake.set()

    threading.Thread(target=read, name="hyperflow-mlflow-inbox", daemon=True).start()
    writer.run()
    return 0


if __name__ == "__main__":
    code = main()
    # Everything is written, acknowledged and closed, and every frame was flushed as it was
    # sent: leave without the interpreter's clean-up of mlflow's or SQLAlchemy's modules
    # (about 20 ms that the experiment's close would wait for).
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    os._exit(code)
