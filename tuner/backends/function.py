"""Function trials: a Python objective run in a pool of warm worker processes.

``FunctionBackend(fn, workers)`` runs trials whose ``run.command is None`` by calling
``fn`` inside long-lived ``python -m tuner.backends._worker`` processes, so a trial costs
a couple of pipe messages, not an interpreter start. Contracts (beyond ``TrialBackend``):

* **Workers.** At most ``workers`` (the experiment's ``parallelTrialCount``), started
  lazily on the first launch that finds none idle, reused across trials (the most recently
  used idle one first), replaced lazily when one dies or is killed. Launching more trials
  than workers queues them; they start as workers free up. ``fn`` is cloudpickled once
  and sent once per worker; functions from ``__main__``, notebooks or modules the worker
  cannot import travel by value, so the user's script is never re-run in a worker.
* **Calling convention.** See :mod:`tuner.backends._func_calling`: ``fn(parameters)``
  with one dict, or ``fn(**assignments)``.
* **Metrics**, only ``run.metric_names`` kept: ``tuner.report.report(step=, **metrics)``
  and what the experiment's collector finds (StdOut: ``name=value`` lines the trial
  prints; File: lines of the file it writes; followed every 50 ms) stream while the
  trial runs; a returned dict of numbers (or one number: the objective,
  ``metric_names[0]``) comes last, when it finishes.
* **Failures.** An exception fails the trial with ``message="ValueError: ..."`` (traceback
  in the trial log) and keeps the worker; a worker that dies fails its trial with
  ``"worker died (exit code N)"``; ``kill()`` ends the worker (SIGTERM, SIGKILL after
  ``kill_grace`` seconds) and ``poll()`` says ``"killed"``, as it does for the trials
  ``close()`` stops.
* **Restarts.** The pool dies with the controller process, so ``adopt()`` cannot
  reattach: such a trial polls as ``TrialExit(False, None, "lost: controller restarted")``
  and the controller decides whether to run it again.
* **Start method.** ``start="spawn"`` (default): each worker is a fresh
  ``python -m tuner.backends._worker``. ``start="fork"`` (Linux): a worker is a fork of
  this process (see :mod:`tuner.backends._func_fork`), ready in milliseconds with what the
  parent imported; ``initializer`` (as ``ProcessPoolExecutor``'s) runs once in each forked
  worker before its first trial, e.g. to import what trials need while the parent goes on.
  Elsewhere ``"fork"`` falls back to spawning.
* **Waiting.** :meth:`FunctionBackend.wait` (optional, beyond ``TrialBackend``) blocks
  until some trial has news (an unpolled exit or uncollected observations).
* **Threads.** All methods are thread-safe; ``poll``/``collect`` never block on workers.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.machinery
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cloudpickle

from tuner.backends import _func_protocol as proto
from tuner.backends._func_calling import CallingConvention
from tuner.backends._func_process import Spawner, WorkerProcess
from tuner.backends.base import KILLED, TrialBackend, TrialExit, TrialRun
from tuner.spec.models import FileFormat, MetricsCollectorKind, MetricsCollectorSpec
from tuner.types import Observation

WORKER_MODULE = "tuner.backends._worker"
LOG_NAME = "trial.log"
LOST = "lost: controller restarted"

_FUNCTION_KEY = 0  # one function per backend; the worker caches by key all the same


class WarmPool:
    """The launch every warm pool of function trials shares (:class:`FunctionBackend`,
    the ray backend's ``RayFunctionBackend``): the trial's order for a worker, then, under
    the pool's lock, the trial registered and queued, or failed at once when no trial can
    use the experiment's collector (as it would fail on starting). The pool supplies its
    trial records (``_new_trial``), ``_finish``, ``_dispatch`` and ``kill``; ``poll``,
    ``collect`` and ``release`` are shared too."""

    _cond: threading.Condition
    _closed: bool
    _trials: dict[str, Any]
    _queued: deque[Any]
    _calling: CallingConvention

    def launch(self, run: TrialRun) -> None:
        name = type(self).__name__
        if run.command is not None:
            raise ValueError(f"trial {run.trial_name} has a command; {name} runs functions")
        collector, problem = self._collector(run.collector)
        order = proto.TrialOrder(
            trial_name=run.trial_name,
            function_key=_FUNCTION_KEY,
            call=self._calling.call_for(run.assignments.keys()),
            assignments=dict(run.assignments),
            env=dict(run.env),
            cwd=str(run.cwd),
            trial_dir=str(run.trial_dir),
            metric_names=list(run.metric_names),
            collector=collector,
        )
        trial = self._new_trial(run, order)
        with self._cond:
            if self._closed:
                raise RuntimeError(f"{name} is closed")
            current = self._trials.get(run.trial_name)
            if current is not None and current.exit is None:
                raise ValueError(f"trial {run.trial_name} is already running")
            self._trials[run.trial_name] = trial
            if problem is not None:  # a collector no trial can use: fails, as it would start
                self._finish(trial, TrialExit(False, 1, f"cannot set up the trial: {problem}"))
                return
            self._queued.append(trial)
        self._dispatch()

    def poll(self, trial_name: str) -> TrialExit | None:
        with self._cond:
            trial = self._trials[trial_name]
            if trial.exit is not None:
                trial.exit_seen = True
                self._taken(trial)
            return trial.exit

    def collect(self, trial_name: str) -> list[Observation]:
        with self._cond:
            trial = self._trials[trial_name]
            new = trial.observations[trial.collected :]
            trial.collected = len(trial.observations)
            self._taken(trial)
            return new

    def _taken(self, trial: Any) -> None:
        """The controller took a trial's exit or observations (under the lock)."""

    def release(self, trial_name: str) -> None:
        """Forget a trial (killed first if it still runs)."""
        with self._cond:
            trial = self._trials.get(trial_name)
            running = trial is not None and trial.exit is None
        if running:
            self.kill(trial_name)
        with self._cond:
            self._trials.pop(trial_name, None)
            self._forget(trial_name)

    def _forget(self, trial_name: str) -> None:
        """What else the pool keeps of a released trial (under the lock)."""

    def _collector(self, spec: MetricsCollectorSpec) -> tuple[proto.CollectorConfig, str | None]:
        return collector_config(spec)

    def kill(self, trial_name: str) -> None:
        raise NotImplementedError

    def _new_trial(self, run: TrialRun, order: proto.TrialOrder) -> Any:
        raise NotImplementedError

    def _finish(self, trial: Any, exit_: TrialExit) -> None:
        raise NotImplementedError

    def _dispatch(self) -> None:
        raise NotImplementedError


class FunctionBackend(WarmPool, TrialBackend):
    """Run function trials in up to ``workers`` warm worker processes (see module doc).

    Raises ``TypeError`` right away if ``fn`` cannot be pickled for the workers.
    """

    kind = "function"
    runs_functions = True
    reattaches = False  # the pool dies with the controller process

    def __init__(
        self,
        fn: Callable[..., Any],
        workers: int = 1,
        *,
        kill_grace: float = 2.0,
        python: str = sys.executable,
        start: str = "spawn",
        initializer: Callable[[], None] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if start not in ("spawn", "fork"):
            raise ValueError(f"start must be 'spawn' or 'fork', got {start!r}")
        from tuner.backends import _func_fork

        self._fork = start == "fork" and _func_fork.SUPPORTED
        self._initializer = initializer
        if self._fork:
            # Imported here, so a forked worker finds it loaded (and nothing to import).
            from tuner.backends import _worker  # noqa: F401
        self.fn = fn
        self.max_workers = workers
        self.kill_grace = kill_grace
        self._python = python
        self._calling = CallingConvention.of(fn)
        self._payload = _pickle_function(fn)
        self._cond = threading.Condition(threading.Lock())
        self._trials: dict[str, _Trial] = {}
        self._workers: list[WorkerProcess] = []  # alive and usable; killed ones leave at once
        self._idle: list[WorkerProcess] = []  # a stack: the warmest worker is reused first
        self._queued: deque[_Trial] = deque()
        self._news: set[str] = set()  # trials with an unpolled exit or uncollected data
        self._unreaped: list[WorkerProcess] = []  # started, not yet reaped by its reader
        self._closed = False
        self._spawner = Spawner()
        # id(spec) -> (spec, its worker view, why it cannot be collected)
        self._collectors: dict[int, tuple[Any, proto.CollectorConfig, str | None]] = {}

    # -- TrialBackend ------------------------------------------------------------------

    def kill(self, trial_name: str) -> None:
        with self._cond:
            trial = self._trials.get(trial_name)
            if trial is None or trial.exit is not None:
                return
            worker = trial.worker
            if worker is None:  # still queued
                self._queued.remove(trial)
            else:
                self._retire(worker)
            self._finish(trial, TrialExit(succeeded=False, exit_code=None, message=KILLED))
        if worker is not None:
            self._terminate(worker)
        self._dispatch()  # the freed slot may start a queued trial

    def adopt(self, run: TrialRun, skip_observations: int) -> None:
        # The worker that ran this trial died with the previous controller process.
        trial = _Trial(run=run, order=None)
        with self._cond:
            self._trials[run.trial_name] = trial
            self._finish(trial, TrialExit(succeeded=False, exit_code=None, message=LOST))

    def log_path(self, trial_name: str) -> Path:
        with self._cond:
            return self._trials[trial_name].run.trial_dir / LOG_NAME

    def _forget(self, trial_name: str) -> None:
        self._news.discard(trial_name)

    def _taken(self, trial: Any) -> None:
        self._update_news(trial)

    def close(self) -> None:
        """Stop every worker and wait for it: idle ones on EOF, busy ones by signal."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            workers = list(self._workers)
            busy = [w for w in workers if w.trial is not None]
            for worker in workers:
                self._retire(worker)
            for trial in [*self._queued, *(w.trial for w in busy if w.trial)]:
                self._finish(trial, TrialExit(succeeded=False, exit_code=None, message=KILLED))
            self._queued.clear()
            unreaped = list(self._unreaped)
        for worker in busy:
            worker.signal(signal.SIGTERM)
        for worker in workers:
            worker.close_stdin()
        deadline = time.monotonic() + self.kill_grace
        for worker in unreaped:
            if worker.proc is None:
                continue  # a concurrent launch sees ``retired`` and kills it
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            worker.kill_if_alive()
            worker.proc.wait()
            worker.reader.join()
        self._spawner.stop()

    # -- optional ----------------------------------------------------------------------

    def wait(self, timeout: float) -> None:
        """Return once some trial has news (an unpolled exit, uncollected observations).

        Returns at once if there is news already; news is consumed by ``poll`` (of a
        finished trial) and ``collect``. Otherwise returns after ``timeout`` seconds.
        """
        with self._cond:
            self._cond.wait_for(lambda: bool(self._news) or self._closed, timeout)

    def prestart(self, count: int | None = None) -> None:
        """Start idle workers now, up to ``count`` (default: ``workers``) in all.

        Optional: workers otherwise start on the first launches. Called while the caller
        still sets up (imports, store, suggestion), it overlaps worker boots with that, so
        the first trials start at once. Returns once the processes are forked; they
        import in the background. A worker that fails to start is dropped silently here;
        the next launch tries again and fails its trial with the reason.
        """
        target = self.max_workers if count is None else min(count, self.max_workers)
        with self._cond:
            if self._closed:
                return
            new = [
                WorkerProcess(self._on_message, self._on_exit)
                for _ in range(target - len(self._workers))
            ]
            self._workers.extend(new)
            self._unreaped.extend(new)
        for worker in new:
            if self._start(worker, None):
                with self._cond:
                    if not worker.retired:
                        self._idle.append(worker)
        self._dispatch()  # trials launched meanwhile waited for these workers

    def _new_trial(self, run: TrialRun, order: proto.TrialOrder) -> _Trial:
        return _Trial(run=run, order=order)

    def _collector(self, spec: MetricsCollectorSpec) -> tuple[proto.CollectorConfig, str | None]:
        """The worker's view of the experiment's collector (computed once per spec)."""
        cached = self._collectors.get(id(spec))
        if cached is not None and cached[0] is spec:
            return cached[1], cached[2]
        config, problem = collector_config(spec)
        self._collectors[id(spec)] = (spec, config, problem)
        return config, problem

    def worker_pids(self) -> list[int]:
        """PIDs of the live, usable workers (busy or idle)."""
        with self._cond:
            return [w.proc.pid for w in self._workers if w.proc is not None]

    # -- internals ---------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Hand queued trials to idle workers, starting workers while below the limit."""
        while True:
            with self._cond:
                if self._closed or not self._queued:
                    return
                if self._idle:
                    worker = self._idle.pop()
                elif len(self._workers) < self.max_workers:
                    # Reserve the slot now; the process starts outside the lock.
                    worker = WorkerProcess(self._on_message, self._on_exit)
                    self._workers.append(worker)
                    self._unreaped.append(worker)
                else:
                    return
                trial = self._queued.popleft()
                worker.trial = trial
                trial.worker = worker
            if worker.proc is None and not self._start(worker, trial):
                continue
            assert trial.order is not None
            worker.send((proto.RUN, trial.order))

    def _start(self, worker: WorkerProcess, trial: _Trial | None) -> bool:
        """Start ``worker``'s process; False (``trial`` failed, or gone) if it cannot run."""
        env = {**os.environ, proto.PARENT_PID_ENV: str(os.getpid())}
        args = [self._python, "-m", WORKER_MODULE]
        try:
            if self._fork:
                proc: Any = self._spawner.run(functools.partial(self._fork_worker, env))
            else:
                proc = self._spawner.spawn(args, env)
        except Exception as exc:
            with self._cond:
                self._retire(worker)
                self._unreaped.remove(worker)
                if trial is not None:
                    message = f"cannot start a worker: {exc}"
                    self._finish(trial, TrialExit(False, None, message))
            return False
        worker.attach(proc)
        with self._cond:
            retired = worker.retired  # killed or closed while starting
        if retired:
            worker.kill_if_alive()
            return False
        worker.send((proto.INIT, list(sys.path)))
        worker.send((proto.FUNCTION, _FUNCTION_KEY, self._payload))
        return True

    def _fork_worker(self, env: dict[str, str]) -> Any:
        from tuner.backends import _func_fork, _worker

        return _func_fork.fork_worker(env, functools.partial(_worker.main, self._initializer))

    def _retire(self, worker: WorkerProcess) -> None:
        """Take a worker out of service (caller holds the lock)."""
        worker.retired = True
        if worker in self._workers:
            self._workers.remove(worker)
        if worker in self._idle:
            self._idle.remove(worker)

    def _terminate(self, worker: WorkerProcess) -> None:
        worker.signal(signal.SIGTERM)
        timer = threading.Timer(self.kill_grace, worker.kill_if_alive)
        timer.daemon = True
        timer.start()

    def _finish(self, trial: _Trial, exit: TrialExit) -> None:
        """Record the exit unless one is recorded already (caller holds the lock)."""
        if trial.exit is not None:
            return
        trial.exit = exit
        if trial.worker is not None and trial.worker.trial is trial:
            trial.worker.trial = None
        self._news.add(trial.run.trial_name)
        self._cond.notify_all()

    def _update_news(self, trial: _Trial) -> None:
        pending = (trial.exit is not None and not trial.exit_seen) or (
            trial.collected < len(trial.observations)
        )
        if pending:
            self._news.add(trial.run.trial_name)
        else:
            self._news.discard(trial.run.trial_name)

    # Called by a worker's reader thread (see WorkerProcess).

    def _on_message(self, worker: WorkerProcess, message: tuple[Any, ...]) -> None:
        kind, trial_name = message[0], message[1]
        with self._cond:
            trial = self._trials.get(trial_name)
            if trial is None or trial.worker is not worker:
                return  # released, or a stale report of a killed trial
            if kind == proto.OBSERVATIONS:
                if trial.exit is None:
                    trial.observations.extend(message[2])
                    self._news.add(trial_name)
                    self._cond.notify_all()
                return
            outcome: proto.TrialOutcome = message[2]
            if trial.exit is None:
                trial.observations.extend(outcome.observations)
                self._finish(
                    trial, TrialExit(outcome.succeeded, outcome.exit_code, outcome.message)
                )
            worker.trial = None
            if worker in self._workers and not self._closed:
                self._idle.append(worker)
        self._dispatch()

    def _on_exit(self, worker: WorkerProcess) -> None:
        assert worker.proc is not None
        code = worker.proc.wait()
        with self._cond:
            self._retire(worker)
            if worker in self._unreaped:
                self._unreaped.remove(worker)
            trial = worker.trial
            if trial is not None:
                self._finish(
                    trial,
                    TrialExit(
                        succeeded=False, exit_code=code, message=f"worker died (exit code {code})"
                    ),
                )
        self._dispatch()


@dataclass(eq=False, slots=True)
class _Trial:
    run: TrialRun
    order: proto.TrialOrder | None
    worker: WorkerProcess | None = None
    exit: TrialExit | None = None
    exit_seen: bool = False
    observations: list[Observation] = field(default_factory=list)
    collected: int = 0


def _pickle_function(fn: Callable[..., Any]) -> bytes:
    """Cloudpickle ``fn``, by value when a worker could not import its module."""
    module_name = getattr(fn, "__module__", None)
    if module_name and module_name != "__main__" and not _importable(module_name):
        module = sys.modules.get(module_name)
        if module is not None:
            cloudpickle.register_pickle_by_value(module)
    try:
        payload: bytes = cloudpickle.dumps(fn)
    except Exception as exc:  # e.g. a closure over a lock, a socket, an open file
        raise TypeError(
            f"cannot send the objective {getattr(fn, '__qualname__', fn)!r} to worker "
            f"processes: {type(exc).__name__}: {exc}; create such objects inside it"
        ) from exc
    return payload


def _importable(module_name: str) -> bool:
    """Whether a fresh interpreter with our ``sys.path`` would find the module's file."""
    module = sys.modules.get(module_name)
    if module is None or getattr(module, "__spec__", None) is None:
        return False
    top = module_name.partition(".")[0]
    if top in sys.builtin_module_names:
        return True
    return importlib.machinery.PathFinder.find_spec(top, sys.path) is not None


def collector_config(spec: MetricsCollectorSpec) -> tuple[proto.CollectorConfig, str | None]:
    """A function worker's view of the experiment's collector (plain data, so the worker
    needs no spec models), and why no trial can use it (``None`` when one can)."""
    from tuner.metrics.factory import check_collector_supported, metrics_filters

    problem = check_collector_supported(spec)
    kind = spec.collector.kind
    fs = spec.source.file_system_path if spec.source else None
    config = proto.CollectorConfig(
        kind=kind.value,
        filters=tuple(metrics_filters(spec)),
        path=fs.path if fs is not None and kind is MetricsCollectorKind.FILE else None,
        json=fs is not None and fs.format is FileFormat.JSON,
    )
    return config, problem
