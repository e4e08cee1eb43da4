"""The ``ray`` backend: trials on a Ray cluster. The only module of hyperflow that
imports ``ray`` (an import-linter contract says so): it also holds the Ray side of the
Ray Tune searcher (:func:`katib_parameters`, the ``Searcher`` subclass
``KatibSearcher``, made on first use), which :mod:`tuner.integrations.ray_tune` hands
out lazily.

**Cluster.** ``settings.ray_address`` (``--ray-address``, ``HYPERFLOW_RAY_ADDRESS``):
``ray://host:10001`` (Ray Client), ``auto`` or ``host:port`` (a cluster this machine is
part of). Unset: the Ray instance this process already joined, else a new local one,
started on the first trial (and stopped with the process). hyperflow must be installed
on the cluster's nodes (the trials' code is hyperflow's).

**Command trials** (:class:`RayBackend`): each trial is a Ray task (a streaming
generator, :func:`tuner.backends._remote.run_command`) that starts the command as a
process on its node and streams back its output and the observations its collector
finds there. The task asks for the primary container's resources: ``cpu`` as
``num_cpus`` (default 1, as any Ray task), ``memory`` as ``memory`` (bytes),
``nvidia.com/gpu`` as ``num_gpus``; other resource names are not scheduled on.

The tasks are owned by a *trial supervisor*: a detached, named actor per experiment
(``hyperflow-trials-<experiment uid>`` in Ray namespace ``hyperflow``, no CPU) that
follows every task's stream and keeps what the controller has not acknowledged yet. So
trials outlive the controller process: a restarted controller finds the supervisor by
name and ``adopt``\\ s them, collecting only what it had not stored (its trial log's size
and ``skip_observations`` are the acknowledgements). A trial the supervisor does not
know (the cluster, or the supervisor, restarted) is reported failed with a reason.
``kill`` cancels the task (``ray.cancel``); the task then stops its process group
(SIGTERM, SIGKILL after ``kill_grace``) before ``poll`` says ``"killed"``. ``close``
kills the experiment's trials and its supervisor; a control plane that detaches
(``hyperflow server`` stopping) leaves both running.

**Function trials** (:class:`RayFunctionBackend`): a warm pool of up to ``workers``
(``parallelTrialCount``) actors, 1 CPU each, each holding the cloudpickled function and
running one trial at a time as a streaming actor call, as the local warm pool's worker
processes do (:mod:`tuner.backends.function`). The pool dies with the controller
process, so such trials are run again after a restart (``reattaches`` is False).
``kill`` ends the trial's actor; the pool replaces it on demand.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ray

from tuner.backends import BackendError
from tuner.backends import _func_protocol as proto
from tuner.backends._func_calling import CallingConvention
from tuner.backends._remote import Chunk, FunctionRunner, run_command
from tuner.backends.base import KILLED, TrialBackend, TrialExit, TrialRun, check_command_trial
from tuner.backends.function import LOST, WarmPool
from tuner.types import Observation

if TYPE_CHECKING:
    from tuner.settings import TunerSettings
    from tuner.spec.models import Experiment

RAY_NAMESPACE = "hyperflow"
LOG_NAME = "trial.log"
_CALLS = 32  # concurrent calls into the supervisor (its followers are threads of its own)


def _problems(experiment: Experiment, address: str | None) -> list[str]:
    from tuner.runnable import local_problems

    # On a cluster given by address, the command may exist only on its nodes.
    return local_problems(experiment, check_command_here=address is None)


def problems(experiment: Experiment, settings: TunerSettings) -> list[str]:
    """Why ``experiment``'s command trials cannot run on ``ray`` at
    ``settings.ray_address`` (``experiment validate --backend ray``; no cluster joined)."""
    return _problems(experiment, settings.ray_address)


def create(
    settings: TunerSettings,
    *,
    function: Callable[..., Any] | None = None,
    workers: int = 1,
    experiment: Experiment | None = None,
) -> TrialBackend:
    """The ``ray`` backend of the registry."""
    if function is not None:
        return RayFunctionBackend(function, workers=workers, address=settings.ray_address)
    return RayBackend(address=settings.ray_address)


def connect(address: str | None) -> None:
    """Join the Ray cluster at ``address`` (module docstring), once per process.

    ``BackendError`` when it cannot be reached (Ray itself would wait for minutes), or for
    a ``ray://`` address without Ray Client installed. The process keeps its own SIGTERM
    and SIGINT handlers: ``ray.init`` installs its own, which ended a controller with an
    abort instead of the clean stop it does on a signal.
    """
    if ray.is_initialized():
        return
    _check_reachable(address)
    main = threading.current_thread() is threading.main_thread()
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)} if main else {}
    try:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            ignore_reinit_error=True,
            configure_logging=False,
        )
    except ValueError as exc:
        if "ray[client]" in str(exc):
            raise BackendError(
                f"the Ray address {address} needs Ray Client: pip install 'ray[client]'"
            ) from None
        raise
    finally:
        for sig, handler in saved.items():
            if handler is not None:
                signal.signal(sig, handler)


REACH_TIMEOUT = 5.0  # seconds to connect to a cluster's address before saying it is not there


def _check_reachable(address: str | None) -> None:
    """A ``host:port`` or ``ray://host:port`` address must accept a TCP connection."""
    if not address or address in ("auto", "local"):
        return
    hostport = address.removeprefix("ray://").rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return  # a form Ray itself judges
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_TIMEOUT).close()
    except OSError as exc:
        raise BackendError(
            f"cannot reach the Ray cluster at {address}: {exc.strerror or exc} "
            "(HYPERFLOW_RAY_ADDRESS / --ray-address; `ray status` on the cluster)"
        ) from None


def ray_options(resources: dict[str, str]) -> dict[str, Any]:
    """Ray task options for a container's resources (``ValueError`` naming the one that is
    not a Kubernetes quantity)."""
    from serving.spec.quantity import parse_quantity

    options: dict[str, Any] = {}
    for name, key, convert in (
        ("cpu", "num_cpus", float),
        ("memory", "memory", round),
        ("nvidia.com/gpu", "num_gpus", float),
    ):
        if name in resources:
            try:
                value = parse_quantity(resources[name])
            except ValueError as exc:
                raise ValueError(f"resources {name}: {exc}") from None
            if value < 0:
                raise ValueError(f"resources {name}: must not be negative, got {resources[name]}")
            options[key] = convert(value)
    return options


def experiment_key(run: TrialRun) -> str:
    return run.experiment_uid or run.experiment_name


def supervisor_name(run: TrialRun) -> str:
    return supervisor_name_of(experiment_key(run))


def supervisor_name_of(key: str) -> str:
    """The detached actor that supervises the trials of experiment ``key`` (its uid)."""
    return f"hyperflow-trials-{key}"


# -- on the cluster ------------------------------------------------------------------------


@ray.remote(num_returns="streaming", max_retries=0)
def _command_task(run: TrialRun, key: str, kill_grace: float) -> Any:
    yield from run_command(run, key, kill_grace=kill_grace)


@dataclass(eq=False)
class _Stream:
    """What the supervisor keeps of one trial: the data after the acknowledged offsets."""

    ref: Any  # the task's ObjectRefGenerator
    log: bytearray = field(default_factory=bytearray)
    log_base: int = 0  # stream offset of log[0]
    observations: list[Observation] = field(default_factory=list)
    obs_base: int = 0  # stream index of observations[0]
    exit: TrialExit | None = None
    killed: bool = False
    kill_grace: float = 5.0


@ray.remote(num_cpus=0, max_concurrency=_CALLS)  # type: ignore[call-overload]
class TrialSupervisor:
    """Owns an experiment's command tasks and buffers their streams (module docstring)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._trials: dict[str, _Stream] = {}

    def launch(self, run: TrialRun, key: str, options: dict[str, Any], kill_grace: float) -> None:
        ref = _command_task.options(**options).remote(run, key, kill_grace)
        stream = _Stream(ref, kill_grace=kill_grace)
        with self._cond:
            old = self._trials.get(run.trial_name)
            if old is not None and old.exit is None:
                ray.cancel(old.ref, force=True)
            self._trials[run.trial_name] = stream
        threading.Thread(target=self._follow, args=(stream,), daemon=True).start()

    def _follow(self, stream: _Stream) -> None:
        exit_: TrialExit | None = None
        try:
            for ref in stream.ref:
                chunk: Chunk = ray.get(ref)
                with self._cond:
                    stream.log += chunk.log
                    stream.observations.extend(chunk.observations)
                    exit_ = chunk.exit
                    self._cond.notify_all()
        except ray.exceptions.TaskCancelledError:
            pass
        except Exception as exc:  # the node or worker died, the task could not run
            if not stream.killed:
                exit_ = TrialExit(False, None, f"lost: {type(exc).__name__}: {_first_line(exc)}")
        with self._cond:
            if stream.killed:
                exit_ = TrialExit(False, None, KILLED)
            stream.exit = exit_ or TrialExit(False, None, "lost: the trial's Ray task ended early")
            self._cond.notify_all()

    def drain(
        self, acks: dict[str, tuple[int, int, bool]], timeout: float
    ) -> dict[str, tuple[bytes, list[Observation], TrialExit | None]]:
        """New data of the trials in ``acks`` (log offset, observation index, exit seen),
        after dropping what they acknowledge; waits up to ``timeout`` s for some."""

        def news() -> dict[str, tuple[bytes, list[Observation], TrialExit | None]]:
            out = {}
            for name, (log_at, obs_at, exit_seen) in acks.items():
                s = self._trials.get(name)
                if s is None:
                    continue
                log = bytes(s.log[log_at - s.log_base :])
                obs = s.observations[obs_at - s.obs_base :]
                exit_ = s.exit if not exit_seen else None
                if log or obs or exit_ is not None:
                    out[name] = (log, obs, exit_)
            return out

        with self._cond:
            for name, (log_at, obs_at, _) in acks.items():
                s = self._trials.get(name)
                if s is None:
                    continue
                drop = max(0, min(log_at - s.log_base, len(s.log)))
                del s.log[:drop]
                s.log_base += drop
                drop = max(0, min(obs_at - s.obs_base, len(s.observations)))
                del s.observations[:drop]
                s.obs_base += drop
            found = news()
            if not found and timeout > 0:
                self._cond.wait_for(lambda: bool(news()), timeout)
                found = news()
            return found

    def known(self, names: list[str]) -> list[str]:
        with self._cond:
            return [n for n in names if n in self._trials]

    def kill(self, name: str) -> None:
        with self._cond:
            s = self._trials.get(name)
            if s is None or s.exit is not None or s.killed:
                return
            s.killed = True
        self._cancel(s)

    def release(self, name: str) -> None:
        with self._cond:
            s = self._trials.pop(name, None)
        if s is not None and s.exit is None:
            s.killed = True
            self._cancel(s)

    def _cancel(self, s: _Stream) -> None:
        """Interrupt the task (it stops its process group); if it has not ended well
        after its grace period (stuck outside Python), end its worker process."""
        ray.cancel(s.ref, force=False)

        def insist() -> None:
            with self._cond:
                ended = self._cond.wait_for(lambda: s.exit is not None, s.kill_grace + 10.0)
            if not ended:
                with contextlib.suppress(Exception):
                    ray.cancel(s.ref, force=True)

        threading.Thread(target=insist, daemon=True).start()

    def running(self) -> int:
        with self._cond:
            return sum(1 for s in self._trials.values() if s.exit is None)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else ""


# -- on the controller ---------------------------------------------------------------------


@dataclass(eq=False)
class _Trial:
    run: TrialRun
    log_written: int = 0  # bytes of the stream in the local trial log
    obs_received: int = 0  # stream index of the next observation
    observations: list[Observation] = field(default_factory=list)  # not yet collected
    exit: TrialExit | None = None
    exit_seen: bool = False  # the supervisor's exit has reached us
    reported: bool = False  # ``poll`` returned the exit
    local: bool = False  # failed before reaching the cluster


class RayBackend(TrialBackend):
    """Command trials as Ray tasks (see the module docstring). One controller thread
    drives it, as the controller does."""

    kind = "ray"

    def __init__(
        self, address: str | None = None, *, kill_grace: float = 5.0, refresh: float = 0.02
    ) -> None:
        self.address = address
        self.kill_grace = kill_grace
        self.refresh = refresh
        self._trials: dict[str, _Trial] = {}
        self._supervisor: Any = None
        self._supervisor_name: str | None = None
        self._drained_at = 0.0

    # -- what the controller asks --------------------------------------------------------

    def prestart(self, count: int | None = None) -> None:
        # Join the cluster before any trial is created: one that cannot be reached is said
        # at once (BackendError), not after trials wait on it.
        connect(self.address)

    def delete_leftovers(self, experiment_uid: str, trial_dirs: list[Path]) -> None:
        # The experiment's detached supervisor actor (and so its trials' tasks) would live
        # on for an experiment no longer in the store.
        connect(self.address)
        try:
            actor = ray.get_actor(supervisor_name_of(experiment_uid), namespace=RAY_NAMESPACE)
        except ValueError:
            return
        ray.kill(actor)

    def problems(self, experiment: Experiment) -> list[str]:
        return _problems(experiment, self.address)

    def may_have_started(self, run: TrialRun) -> bool:
        supervisor = self._find_supervisor(run)
        return supervisor is not None and bool(ray.get(supervisor.known.remote([run.trial_name])))

    # -- TrialBackend --------------------------------------------------------------------

    def launch(self, run: TrialRun) -> None:
        if run.trial_name in self._trials:
            raise ValueError(f"trial {run.trial_name} is already known to this backend")
        check_command_trial(run, "RayBackend")
        trial = _Trial(run)
        self._trials[run.trial_name] = trial
        log = self._log(run)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_bytes(b"")  # offsets count from this run's first byte
        try:
            options = ray_options(run.resources)
        except ValueError as exc:
            self._fail_locally(trial, str(exc))
            return
        supervisor = self._get_supervisor(run)
        # Waited for: calls into a threaded actor may run in any order, and a kill or
        # release sent right after must find the trial there.
        ray.get(supervisor.launch.remote(run, experiment_key(run), options, self.kill_grace))

    def poll(self, trial_name: str) -> TrialExit | None:
        trial = self._trials[trial_name]
        if trial.exit is None:
            self._drain_if_stale()
        if trial.exit is not None:
            trial.reported = True
        return trial.exit

    def collect(self, trial_name: str) -> list[Observation]:
        trial = self._trials[trial_name]
        if trial.exit is None:
            self._drain_if_stale()
        out, trial.observations = trial.observations, []
        return out

    def kill(self, trial_name: str) -> None:
        trial = self._trials.get(trial_name)
        if trial is None or trial.exit is not None or self._supervisor is None:
            return
        self._supervisor.kill.remote(trial_name)

    def adopt(self, run: TrialRun, skip_observations: int) -> None:
        if run.trial_name in self._trials:
            raise ValueError(f"trial {run.trial_name} is already known to this backend")
        trial = _Trial(run, obs_received=skip_observations)
        self._trials[run.trial_name] = trial
        log = self._log(run)
        with contextlib.suppress(OSError):
            trial.log_written = log.stat().st_size
        supervisor = self._find_supervisor(run)
        if supervisor is None or not ray.get(supervisor.known.remote([run.trial_name])):
            trial.exit = TrialExit(
                False,
                None,
                "lost: the Ray cluster does not know this trial any more "
                "(the cluster or its trial supervisor restarted)",
            )
            trial.local = True

    def log_path(self, trial_name: str) -> Path:
        return self._log(self._trials[trial_name].run)

    def release(self, trial_name: str) -> None:
        trial = self._trials.pop(trial_name, None)
        if trial is not None and not trial.local and self._supervisor is not None:
            self._supervisor.release.remote(trial_name)

    def close(self) -> None:
        """Kill every running trial, wait for them, and end the experiment's supervisor."""
        for name in list(self._trials):
            self.kill(name)
        deadline = time.monotonic() + self.kill_grace + 10.0
        while time.monotonic() < deadline and any(t.exit is None for t in self._trials.values()):
            self.wait(0.1)
        for name in list(self._trials):
            self.release(name)
        if self._supervisor is not None:
            with contextlib.suppress(Exception):
                ray.kill(self._supervisor)
            self._supervisor = None

    # -- optional ------------------------------------------------------------------------

    def wait(self, timeout: float) -> None:
        """Return once some trial has news (an unpolled exit, uncollected observations),
        or after ``timeout`` seconds: one long-polling call to the supervisor."""
        if any(
            t.observations or (t.exit is not None and not t.reported) for t in self._trials.values()
        ):
            return
        if not self._drain(timeout):
            time.sleep(timeout)

    # -- internals -----------------------------------------------------------------------

    def _log(self, run: TrialRun) -> Path:
        return Path(os.path.abspath(run.trial_dir)) / LOG_NAME

    def _fail_locally(self, trial: _Trial, message: str) -> None:
        with open(self._log(trial.run), "a", encoding="utf-8") as log:
            log.write(message + "\n")
        trial.exit, trial.local = TrialExit(False, None, message), True

    def _get_supervisor(self, run: TrialRun) -> Any:
        if self._supervisor is None:
            connect(self.address)
            self._supervisor_name = supervisor_name(run)
            self._supervisor = TrialSupervisor.options(  # type: ignore[attr-defined]
                name=self._supervisor_name,
                namespace=RAY_NAMESPACE,
                lifetime="detached",
                get_if_exists=True,
            ).remote()
        return self._supervisor

    def _find_supervisor(self, run: TrialRun) -> Any:
        if self._supervisor is not None:
            return self._supervisor
        connect(self.address)
        try:
            self._supervisor = ray.get_actor(supervisor_name(run), namespace=RAY_NAMESPACE)
        except ValueError:
            return None
        self._supervisor_name = supervisor_name(run)
        return self._supervisor

    def _drain_if_stale(self) -> None:
        if time.monotonic() - self._drained_at >= self.refresh:
            self._drain(0.0)

    def _drain(self, timeout: float) -> bool:
        """Fetch what the supervisor has for our running trials; False if it has none."""
        acks = {
            name: (t.log_written, t.obs_received, t.exit_seen)
            for name, t in self._trials.items()
            if not t.local and not t.exit_seen
        }
        if not acks or self._supervisor is None:
            return False
        try:
            found = ray.get(self._supervisor.drain.remote(acks, timeout))
        except ray.exceptions.RayActorError as exc:
            # The supervisor (and with it the tasks it owned) is gone: say so once.
            lost = TrialExit(
                False, None, f"lost: the experiment's trial supervisor died ({_first_line(exc)})"
            )
            for name in acks:
                trial = self._trials[name]
                trial.exit, trial.exit_seen = trial.exit or lost, True
            self._supervisor = None
            return True
        self._drained_at = time.monotonic()
        for name, (log, observations, exit_) in found.items():
            trial = self._trials[name]
            if log:
                with open(self._log(trial.run), "ab") as f:
                    f.write(log)
                trial.log_written += len(log)
            trial.observations.extend(observations)
            trial.obs_received += len(observations)
            if exit_ is not None:
                trial.exit, trial.exit_seen = exit_, True
        return True


# -- function trials -----------------------------------------------------------------------


@ray.remote(num_cpus=1, max_restarts=0)
class FunctionActor:
    """A warm worker for function trials: the function loaded once, one trial at a time."""

    def __init__(self, payload: bytes, sys_path: list[str]) -> None:
        self._runner = FunctionRunner(payload, sys_path)

    def ready(self) -> bool:
        return True

    @ray.method(num_returns="streaming")
    def run(self, order: proto.TrialOrder, key: str) -> Any:
        yield from self._runner.run(order, key)


@dataclass(eq=False)
class _FnTrial:
    run: TrialRun
    order: proto.TrialOrder | None
    actor: Any = None
    exit: TrialExit | None = None
    exit_seen: bool = False
    killed: bool = False
    observations: list[Observation] = field(default_factory=list)
    collected: int = 0


class RayFunctionBackend(WarmPool, TrialBackend):
    """Function trials in a warm pool of Ray actors (see the module docstring).

    Thread-safe; a follower thread per running trial consumes its stream.
    """

    kind = "ray"
    runs_functions = True
    reattaches = False

    def __init__(
        self, fn: Callable[..., Any], workers: int = 1, *, address: str | None = None
    ) -> None:
        from tuner.backends.function import _pickle_function

        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.max_workers = workers
        self.address = address
        self._calling = CallingConvention.of(fn)
        self._payload = _pickle_function(fn)
        self._cond = threading.Condition()
        self._trials: dict[str, _FnTrial] = {}
        self._actors: list[Any] = []
        self._idle: list[Any] = []
        self._queued: deque[_FnTrial] = deque()
        self._closed = False

    def _new_trial(self, run: TrialRun, order: proto.TrialOrder) -> _FnTrial:
        log = Path(os.path.abspath(run.trial_dir)) / LOG_NAME
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_bytes(b"")
        return _FnTrial(run, order)

    def prestart(self, count: int | None = None) -> None:
        """Create the pool's actors now (they load the function in the background)."""
        connect(self.address)
        target = self.max_workers if count is None else min(count, self.max_workers)
        with self._cond:
            while len(self._actors) < target:
                actor = self._new_actor()
                self._actors.append(actor)
                self._idle.append(actor)

    def kill(self, trial_name: str) -> None:
        with self._cond:
            trial = self._trials.get(trial_name)
            if trial is None or trial.exit is not None:
                return
            if trial.actor is None:
                self._queued.remove(trial)
                self._finish(trial, TrialExit(False, None, KILLED))
                return
            trial.killed = True
            actor = trial.actor
            self._retire(actor)
        ray.kill(actor)  # the follower sees the actor die and reports "killed"

    def adopt(self, run: TrialRun, skip_observations: int) -> None:
        with self._cond:
            trial = _FnTrial(run, None)
            self._trials[run.trial_name] = trial
            self._finish(trial, TrialExit(False, None, LOST))

    def log_path(self, trial_name: str) -> Path:
        with self._cond:
            return Path(os.path.abspath(self._trials[trial_name].run.trial_dir)) / LOG_NAME

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            actors = list(self._actors)
            for trial in [*self._queued, *(t for t in self._trials.values() if t.actor)]:
                trial.killed = True
            for trial in self._queued:
                self._finish(trial, TrialExit(False, None, KILLED))
            self._queued.clear()
            self._actors.clear()
            self._idle.clear()
        for actor in actors:
            with contextlib.suppress(Exception):
                ray.kill(actor)
        deadline = time.monotonic() + 10.0
        with self._cond:
            self._cond.wait_for(
                lambda: all(t.exit is not None for t in self._trials.values()),
                max(0.0, deadline - time.monotonic()),
            )

    def wait(self, timeout: float) -> None:
        """Return once some trial has news (an unpolled exit, uncollected observations)."""

        def news() -> bool:
            return self._closed or any(
                (t.exit is not None and not t.exit_seen) or t.collected < len(t.observations)
                for t in self._trials.values()
            )

        with self._cond:
            self._cond.wait_for(news, timeout)

    # -- internals -----------------------------------------------------------------------

    def _new_actor(self) -> Any:
        return FunctionActor.remote(self._payload, list(sys.path))  # type: ignore[attr-defined]

    def _dispatch(self) -> None:
        starts: list[tuple[_FnTrial, Any]] = []
        with self._cond:
            while self._queued and not self._closed:
                if self._idle:
                    actor = self._idle.pop()
                elif len(self._actors) < self.max_workers:
                    if not ray.is_initialized():
                        connect(self.address)
                    actor = self._new_actor()
                    self._actors.append(actor)
                else:
                    break
                trial = self._queued.popleft()
                trial.actor = actor
                starts.append((trial, actor))
        for trial, actor in starts:
            assert trial.order is not None
            key = experiment_key(trial.run)
            stream = actor.run.remote(trial.order, key)
            threading.Thread(
                target=self._follow,
                args=(trial, actor, stream),
                name=f"hyperflow-ray-trial-{trial.run.trial_name}",
                daemon=True,
            ).start()

    def _follow(self, trial: _FnTrial, actor: Any, stream: Any) -> None:
        log = Path(os.path.abspath(trial.run.trial_dir)) / LOG_NAME
        exit_: TrialExit | None = None
        try:
            with open(log, "ab") as f:
                for ref in stream:
                    chunk: Chunk = ray.get(ref)
                    if chunk.log:
                        f.write(chunk.log)
                        f.flush()
                    with self._cond:
                        if trial.exit is None:
                            trial.observations.extend(chunk.observations)
                            self._cond.notify_all()
                    exit_ = chunk.exit
        except Exception as exc:  # the actor died: killed, or its process crashed
            if not trial.killed:
                exit_ = TrialExit(False, None, f"worker died: {type(exc).__name__}")
                with self._cond:
                    self._retire(actor)
        with self._cond:
            if trial.killed:
                exit_ = TrialExit(False, None, KILLED)
            self._finish(trial, exit_ or TrialExit(False, None, "worker ended without a result"))
            if actor in self._actors and not self._closed:
                self._idle.append(actor)
        self._dispatch()

    def _retire(self, actor: Any) -> None:
        if actor in self._actors:
            self._actors.remove(actor)
        if actor in self._idle:
            self._idle.remove(actor)

    def _finish(self, trial: _FnTrial, exit_: TrialExit) -> None:
        if trial.exit is None:
            trial.exit = exit_
            self._cond.notify_all()


__all__ = [
    "RAY_NAMESPACE",
    "FunctionActor",
    "RayBackend",
    "RayFunctionBackend",
    "TrialSupervisor",
    "connect",
    "create",
    "ray_options",
]


# -- Ray Tune: the KatibSearcher's Ray side (tuner.integrations.ray_tune) -----------------------


def katib_parameters(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """Katib parameters (``tuner.sdk.SearchSpace``) for Tune's ``param_space``, and each
    categorical's original values.

    Raises ``ValueError`` naming a key whose domain has no Katib equivalent.
    """
    from ray.tune.search.sample import (
        Categorical,
        Domain,
        Float,
        Integer,
        LogUniform,
        Quantized,
    )

    from tuner.sdk import SearchSpace, search

    parameters: dict[str, SearchSpace] = {}
    choices: dict[str, list[Any]] = {}
    for key, domain in config.items():
        if isinstance(domain, dict) and any(isinstance(v, Domain) for v in domain.values()):
            raise ValueError(f"param_space[{key!r}]: nested search spaces are not supported")
        if not isinstance(domain, Domain):
            continue  # a constant
        sampler = domain.get_sampler()
        step = None
        if isinstance(sampler, Quantized):
            step, sampler = sampler.q, sampler.sampler
        distribution = "logUniform" if isinstance(sampler, LogUniform) else None
        if isinstance(domain, Float):
            parameters[key] = search.double(
                min=domain.lower, max=domain.upper, step=step, distribution=distribution
            )
        elif isinstance(domain, Integer):
            upper = domain.upper if step else domain.upper - 1
            parameters[key] = search.int(
                min=domain.lower,
                max=upper,
                step=int(step) if step else None,
                distribution=distribution,
            )
        elif isinstance(domain, Categorical):
            values = list(domain.categories)
            choices[key] = values
            parameters[key] = search.categorical([str(i) for i in range(len(values))])
        else:
            raise ValueError(
                f"param_space[{key!r}]: {type(domain).__name__} has no Katib parameter type"
            )
    return parameters, choices


_SEARCHER: type | None = None


def _searcher_class() -> type:
    """``KatibSearcher``: made on first use, so that the backend does not load Ray Tune."""
    global _SEARCHER
    if _SEARCHER is None:
        from ray.tune.search import Searcher

        from tuner.integrations.ray_tune import KatibSearch

        class KatibSearcher(KatibSearch, Searcher):
            __doc__ = (
                "A ``ray.tune.search.Searcher`` asking hyperflow's suggestion service and "
                "recording the experiment in hyperflow's store (see "
                ":mod:`tuner.integrations.ray_tune`)."
            )

            def _katib_parameters(
                self, config: dict[str, Any]
            ) -> tuple[dict[str, Any], dict[str, list[Any]]]:
                return katib_parameters(config)

        # Pickled by reference (Tune pickles its searcher with the Tuner).
        KatibSearcher.__module__ = __name__
        KatibSearcher.__qualname__ = "KatibSearcher"
        _SEARCHER = KatibSearcher
    return _SEARCHER


def __getattr__(name: str) -> Any:
    if name == "KatibSearcher":
        return _searcher_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
