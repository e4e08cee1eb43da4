"""A warm worker process for function trials: ``python -m tuner.backends._worker``.

Started by :class:`~tuner.backends.function.FunctionBackend`, it reads framed messages
(:mod:`tuner.backends._func_protocol`) from stdin and runs one trial at a time, in its main
thread, until stdin reaches EOF. Contracts:

* The protocol pipes are moved off fds 0 and 1 at start (fd 0 becomes ``/dev/null``, fd 1
  the worker's stderr), so a trial's prints and child processes can never corrupt or hold
  them open.
* During a trial, fds 1 and 2 point at ``<trial_dir>/trial.log`` (``os.dup2``, so output
  of C extensions and subprocesses lands there too); the environment carries ``run.env``
  plus ``HYPERFLOW_TRIAL_DIR``, ``HYPERFLOW_TRIAL_NAME`` and ``HYPERFLOW_ARTIFACTS_DIR``;
  the working directory is the trial's ``cwd``. All three are restored afterwards.
* ``tuner.report.report()`` inside the trial streams observations to the parent at once;
  so do the metrics the experiment's collector finds (StdOut: ``name=value`` lines
  printed; File: the file the trial writes), read as they grow.
* An exception in the function fails the trial (traceback in the trial log); the worker
  lives on. Only a signal or the end of stdin ends it.
* The worker dies with its parent (``PR_SET_PDEATHSIG`` on Linux). At EOF it exits
  at once (``os._exit``, as multiprocessing's workers do): no interpreter teardown.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import math
import numbers
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import cloudpickle

from tuner.backends import _func_protocol as proto
from tuner.backends._func_metrics import install_report_sink, metrics_reader
from tuner.backends._func_tail import MetricsFollower
from tuner.types import Observation

_PR_SET_PDEATHSIG = 1


def main(initializer: Callable[[], None] | None = None) -> int:
    """Serve trials until stdin reaches EOF; the exit code is always 0 then.

    ``initializer`` (a forked worker's, see ``FunctionBackend(initializer=)``) runs once
    before the first message, its output in the worker's stderr; if it raises, the
    traceback goes there too and the worker serves all the same.
    """
    _die_with_parent(os.environ.pop(proto.PARENT_PID_ENV, None))
    inbox, outbox = _take_protocol_pipes()
    if initializer is not None:
        try:
            initializer()
        except Exception:
            traceback.print_exc()
    worker = _Worker(outbox)
    while (message := proto.receive(inbox)) is not None:
        worker.handle(message)
    return 0


def _die_with_parent(parent_pid: str | None) -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # The parent may have died between fork and prctl; then we were re-parented already.
    if parent_pid is not None and os.getppid() != int(parent_pid):
        os._exit(1)


def _take_protocol_pipes() -> tuple[IO[bytes], IO[bytes]]:
    # os.dup gives non-inheritable fds: a trial's subprocesses cannot keep the pipes open.
    inbox = os.fdopen(os.dup(0), "rb")
    outbox = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    if isinstance(sys.stdout, io.TextIOWrapper):
        # Lines reach the trial log as they are printed, not when a buffer fills.
        sys.stdout.reconfigure(line_buffering=True)
    return inbox, outbox


class _Worker:
    def __init__(self, outbox: IO[bytes]) -> None:
        self._outbox = outbox
        self._send_lock = threading.Lock()  # report() may be called from the trial's threads
        self._functions: dict[int, Callable[..., Any]] = {}
        self._load_errors: dict[int, str] = {}
        self._follower = MetricsFollower()

    def handle(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == proto.INIT:
            _extend_sys_path(message[1])
        elif kind == proto.FUNCTION:
            self._load(message[1], message[2])
        elif kind == proto.RUN:
            order: proto.TrialOrder = message[1]
            try:
                outcome = self._run(order)
            except Exception as exc:  # the trial could not be set up: fail it, not us
                reason = f"cannot set up the trial: {_describe(exc)}"
                outcome = proto.TrialOutcome(succeeded=False, exit_code=1, message=reason)
            self._send((proto.DONE, order.trial_name, outcome))
        else:
            raise ValueError(f"unknown message kind {kind!r}")

    def _send(self, message: tuple[Any, ...]) -> None:
        with self._send_lock:
            proto.send(self._outbox, message)

    def _load(self, key: int, payload: bytes) -> None:
        try:
            self._functions[key] = cloudpickle.loads(payload)
        except BaseException as exc:
            # Reported on every trial of this function instead of killing the worker.
            self._load_errors[key] = f"cannot load the objective function: {_describe(exc)}"

    def _run(self, order: proto.TrialOrder) -> proto.TrialOutcome:
        fn = self._functions.get(order.function_key)
        if fn is None:
            message = self._load_errors.get(order.function_key, "objective function not sent")
            return proto.TrialOutcome(succeeded=False, exit_code=1, message=message)
        trial_dir = Path(order.trial_dir)
        artifacts = trial_dir / "artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        log_path = trial_dir / "trial.log"
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        stream = self._streamer(order.trial_name, frozenset(order.metric_names))
        following = False
        try:
            start = os.lseek(log_fd, 0, os.SEEK_END)
            with _redirected(log_fd), _trial_environment(order, artifacts):
                read = metrics_reader(
                    order.collector,
                    log_path=log_path,
                    log_start=start,
                    trial_dir=trial_dir,
                    metric_names=order.metric_names,
                )
                if read is not None:
                    self._follower.start(read, stream)
                    following = True
                with install_report_sink(stream):
                    outcome, result = _call(fn, order)
                    returned = _returned_observations(result, order.metric_names)
        finally:
            os.close(log_fd)
            # After the redirection ended: everything the trial printed is flushed.
            collected = self._follower.stop() if following else []
        wanted = set(order.metric_names)
        outcome.observations.extend(o for o in collected if o.name in wanted)
        outcome.observations.extend(returned)
        return outcome

    def _streamer(
        self, trial_name: str, wanted: frozenset[str]
    ) -> Callable[[list[Observation]], None]:
        def stream(observations: list[Observation]) -> None:
            kept = [o for o in observations if o.name in wanted]
            if kept:
                self._send((proto.OBSERVATIONS, trial_name, kept))

        return stream


def _call(fn: Callable[..., Any], order: proto.TrialOrder) -> tuple[proto.TrialOutcome, Any]:
    """Run the objective; never raises. Failures print their traceback to the trial log."""
    try:
        if order.call == proto.CALL_DICT:
            result = fn(dict(order.assignments))
        else:
            result = fn(**order.assignments)
    except SystemExit as exc:
        # sys.exit() inside an objective ends the trial like it would end a trial process.
        # The same status and message as a process's: ``exit code N``, and what
        # ``sys.exit("why")`` prints (to the log, as the interpreter does; no traceback).
        code = exc.code
        if code is None or code == 0:
            return proto.TrialOutcome(True, 0, "exited"), None
        if isinstance(code, int):
            return proto.TrialOutcome(False, code, f"exit code {code}"), None
        print(code, file=sys.stderr, flush=True)
        return proto.TrialOutcome(False, 1, f"exit code 1: {_describe_text(str(code))}"), None
    except BaseException as exc:
        traceback.print_exc()
        return proto.TrialOutcome(False, 1, _describe(exc)), None
    return proto.TrialOutcome(True, 0, "completed"), result


_MAX_MESSAGE = 300


def _describe(exc: BaseException) -> str:
    """``"ValueError: bad lr"``: a trial message is one short line; the log has the rest."""
    text = _describe_text(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _describe_text(text: str) -> str:
    """The first line of ``text``, at most ``_MAX_MESSAGE`` characters (" ..." if cut)."""
    lines = text.strip().splitlines()
    first = lines[0] if lines else ""
    if len(first) > _MAX_MESSAGE or len(lines) > 1:
        first = first[:_MAX_MESSAGE].rstrip() + " ..."
    return first


def _returned_observations(result: Any, metric_names: list[str]) -> list[Observation]:
    """Final metrics from the return value: a dict of numbers, or one number (the objective).

    Anything else is ignored with a note in the trial log (we are still redirected).
    """
    if result is None:
        return []
    now = time.time()
    if _is_number(result):
        if not metric_names:
            return []
        number = _finite(result)
        if number is None:
            print(f"hyperflow: ignoring the returned {metric_names[0]}: {result!r} is not finite")
            return []
        return [Observation(metric_names[0], number, None, now)]
    if isinstance(result, dict):
        kept: list[Observation] = []
        other: list[str] = []
        for name, value in result.items():
            if name not in metric_names:
                if _is_number(value):
                    other.append(f"{name}={value}")
                continue
            if not _is_number(value):
                print(f"hyperflow: ignoring returned metric {name!r}: {value!r} is not a number")
                continue
            number = _finite(value)
            if number is None:
                print(f"hyperflow: ignoring returned metric {name!r}: {value!r} is not finite")
                continue
            kept.append(Observation(str(name), number, None, now))
        if other:
            # In the collector's name=value format, so a metric name typo can be pointed out.
            print(
                f"hyperflow: returned metrics that are not the experiment's "
                f"({', '.join(metric_names)}) were not collected: {' '.join(other)}"
            )
        return kept
    print(
        f"hyperflow: ignoring the objective's return value of type {type(result).__name__};"
        " return a dict of metric values, one number (the objective) or None"
    )
    return []


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _finite(value: Any) -> float | None:
    """``value`` as a float, or None for NaN, infinities and integers beyond a float's range
    (which the store cannot hold: SQLite keeps NaN as NULL)."""
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _extend_sys_path(paths: list[str]) -> None:
    # Modules the parent can import (its script's directory, editable installs) resolve
    # here too, so functions pickled by reference load without re-running the script.
    known = set(sys.path)
    sys.path.extend(p for p in paths if p not in known)


@contextlib.contextmanager
def _redirected(log_fd: int) -> Iterator[None]:
    _flush_std()
    saved_streams = sys.stdout, sys.stderr
    saved_out, saved_err = os.dup(1), os.dup(2)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    try:
        yield
    finally:
        _flush_std()
        # A trial that swapped sys.stdout/sys.stderr does not keep them for the next one.
        sys.stdout, sys.stderr = saved_streams
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        os.close(saved_out)
        os.close(saved_err)


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


@contextlib.contextmanager
def _trial_environment(order: proto.TrialOrder, artifacts: Path) -> Iterator[None]:
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_path = list(sys.path)
    os.environ.update(order.env)
    os.environ["HYPERFLOW_TRIAL_DIR"] = order.trial_dir
    os.environ["HYPERFLOW_TRIAL_NAME"] = order.trial_name
    os.environ["HYPERFLOW_ARTIFACTS_DIR"] = str(artifacts)
    os.chdir(order.cwd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.chdir(saved_cwd)
        sys.path[:] = saved_path  # a trial's sys.path.insert is its own
        # Undo the trial's changes too, so one trial's environment never leaks into the next.
        for key in [k for k in os.environ if k not in saved_env]:
            del os.environ[key]
        for key, value in saved_env.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


if __name__ == "__main__":
    main()
    # At EOF nothing is left to do: skip the interpreter's teardown (tens of ms of every
    # experiment's end, with modules the objective imported), as multiprocessing's
    # workers do; like them, atexit handlers of the objective's libraries do not run.
    _flush_std()
    os._exit(0)
