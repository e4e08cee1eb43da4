"""What runs where a remote trial runs (a Ray worker): no ``ray`` import here.

A remote trial streams :class:`Chunk`\\ s back to the controller: the bytes its stdout and
stderr wrote since the previous chunk, the observations the experiment's collector found
since then (collectors run *here*, next to the files they read), and, in the last chunk,
how it ended. The controller writes the bytes to the trial log on its own disk, so logs,
failure messages and MLflow artifacts work as for local trials, without a shared disk.

The trial's folder on this node is :func:`node_trial_dir` (emptied when a run starts):
``$HYPERFLOW_TRIAL_DIR``, where a relative File collector path is resolved and where
``$HYPERFLOW_ARTIFACTS_DIR`` points. The working directory is the trial's ``cwd`` when
this node has it (a local cluster), else the trial's folder.

* :func:`run_command` — a command trial: the process, its output and metrics followed
  every ``interval`` seconds. Interrupted (``KeyboardInterrupt``: a cancelled Ray task,
  or the generator closed), it stops the process group: SIGTERM, SIGKILL after
  ``kill_grace`` seconds; it never leaves the command running.
* :class:`FunctionRunner` — function trials in a warm process (a Ray actor): the warm
  worker's trial logic (:mod:`tuner.backends._worker`) with the messages streamed as
  chunks instead of written to a pipe.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tuner.backends import _func_protocol as proto
from tuner.backends.base import TrialExit, TrialRun
from tuner.types import Observation

LOG_NAME = "trial.log"
_CHUNK_BYTES = 1 << 20  # at most this much log per chunk


@dataclass(slots=True)
class Chunk:
    log: bytes = b""
    observations: list[Observation] = field(default_factory=list)
    exit: TrialExit | None = None


def node_trial_dir(experiment_key: str, trial_name: str) -> Path:
    """The trial's folder on this node (under the system's temporary folder)."""
    return Path(tempfile.gettempdir()) / "hyperflow-trials" / experiment_key / trial_name


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    return path


class LogReader:
    """The bytes appended to a file since the previous read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def read(self, limit: int = _CHUNK_BYTES) -> bytes:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(limit)
        except FileNotFoundError:
            return b""
        self.offset += len(data)
        return data


def run_command(
    run: TrialRun, experiment_key: str, *, kill_grace: float = 5.0, interval: float = 0.05
) -> Iterator[Chunk]:
    """Run a command trial on this node, yielding chunks (module docstring)."""
    from tuner.backends.local import check_command, exit_for, trial_argv, trial_env
    from tuner.metrics import make_collector

    assert run.command is not None
    trial_dir = fresh_dir(node_trial_dir(experiment_key, run.trial_name))
    log_path = trial_dir / LOG_NAME
    cwd = Path(run.cwd) if Path(run.cwd).is_dir() else trial_dir
    env = trial_env(run, trial_dir)
    try:
        collector = make_collector(
            run.collector,
            log_path=log_path,
            trial_dir=trial_dir,
            metric_names=run.metric_names,
            env=env,
        )
    except ValueError as exc:
        yield _failed(str(exc))
        return
    argv = trial_argv(run.command)
    problem = check_command(argv, cwd, env.get("PATH", os.defpath))
    if problem:
        yield _failed(problem)
        return
    with open(log_path, "ab") as log:
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            yield _failed(f"cannot start: {exc}")
            return
    reader = LogReader(log_path)
    try:
        while proc.poll() is None:
            time.sleep(interval)
            data, observations = reader.read(), collector.collect()
            if data or observations:
                yield Chunk(data, observations)
        code = proc.returncode
        if code < 0:
            exit_ = TrialExit(False, None, f"killed by signal {_signal_name(-code)}")
        else:
            exit_ = exit_for(code, trial_dir)
        yield from _last(reader, collector.collect(final=True), exit_)
    finally:
        _stop_group(proc, kill_grace)


def _last(reader: LogReader, observations: list[Observation], exit_: TrialExit) -> Iterator[Chunk]:
    """The rest of the log with the last observations and the exit: one chunk unless the
    rest is longer than a chunk (one message per short trial)."""
    data = reader.read()
    while more := reader.read():
        yield Chunk(data)
        data = more
    yield Chunk(data, observations, exit_)


def _failed(message: str) -> Chunk:
    return Chunk((message + "\n").encode(), [], TrialExit(False, None, message))


def _stop_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM to the trial's process group, SIGKILL after ``grace`` seconds if needed."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    # Whatever the command left behind in its group goes with it.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


class FunctionRunner:
    """Function trials, one at a time, in this (warm) process."""

    def __init__(self, payload: bytes, sys_path: list[str]) -> None:
        from tuner.backends._worker import _extend_sys_path, _Worker

        _extend_sys_path(sys_path)
        self._messages: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        messages = self._messages

        class StreamingWorker(_Worker):
            def _send(self, message: tuple[Any, ...]) -> None:
                messages.put(message)

        self._worker = StreamingWorker(outbox=None)  # type: ignore[arg-type]
        self._worker.handle((proto.FUNCTION, 0, payload))

    def run(
        self, order: proto.TrialOrder, experiment_key: str, interval: float = 0.05
    ) -> Iterator[Chunk]:
        trial_dir = fresh_dir(node_trial_dir(experiment_key, order.trial_name))
        cwd = order.cwd if Path(order.cwd).is_dir() else str(trial_dir)
        order = replace(order, trial_dir=str(trial_dir), cwd=cwd, function_key=0)
        reader = LogReader(trial_dir / LOG_NAME)
        thread = threading.Thread(
            target=self._worker.handle, args=((proto.RUN, order),), daemon=True
        )
        thread.start()
        while True:
            observations: list[Observation] = []
            outcome: proto.TrialOutcome | None = None
            with contextlib.suppress(queue.Empty):
                message = self._messages.get(timeout=interval)
                while True:
                    if message[0] == proto.OBSERVATIONS:
                        observations.extend(message[2])
                    elif message[0] == proto.DONE:
                        outcome = message[2]
                        break
                    message = self._messages.get_nowait()
            if outcome is not None:
                thread.join()
                exit_ = TrialExit(outcome.succeeded, outcome.exit_code, outcome.message)
                yield from _last(reader, [*observations, *outcome.observations], exit_)
                return
            data = reader.read()
            if data or observations:
                yield Chunk(data, observations)
