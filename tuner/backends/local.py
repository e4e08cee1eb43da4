"""``LocalBackend``: each trial a local process, crash-safe.

Layout of a trial's folder (``run.trial_dir``):

* ``trial.log`` — the command's stdout and stderr (appended);
* ``pid`` — created before the command starts; lines appended as the trial goes:
  ``<pid> <start time>`` and ``reaper <pid> <start time>`` (the process that started it
  and reaps it) once it has started, ``exit <status>`` when it ended (files of earlier
  versions may hold ``<pid> -`` and a second ``<pid> <start time>`` line);
* ``launch_error`` — why the command could not start (not found, not executable);
* ``artifacts/`` — ``$HYPERFLOW_ARTIFACTS_DIR``, for the trial's outputs. Not created
  by the backend (a directory costs milliseconds per trial on some disks): a trial that
  saves artifacts runs ``os.makedirs(os.environ["HYPERFLOW_ARTIFACTS_DIR"], exist_ok=True)``.

Each command is started by the backend's reaper (:mod:`tuner.backends._reaper`): one small
process per backend, in a session of its own, that spawns the commands (argv unchanged,
never through a shell's parsing, each in a new session), waits for them and appends
each one's exit status to its ``pid`` file. The reaper outlives a killed controller and
records the exit statuses of the trials it started until the last has ended; a
restarted controller ``adopt``\\ s them: finished <=> ``pid`` holds a complete ``exit``
line; a trial that is gone without one while its reaper is gone too is "lost". (Until
issue 12 a ``/bin/sh`` wrapper around each command did this: one exec per trial more.)
The reaper creates the trial's folder and ``pid`` file, and ``launch`` does not wait for
its answer (the PID): the controller's loop goes on while the command starts, and the
answer is taken with the exits (whatever needs the PID — ``kill``, ``pid`` — waits for
it). ``launch_next`` gives the reaper the next trial of a full set of slots ahead: it
starts it as it reaps one of the trials running at the hand-over, and drops it if the
controller goes (its input closes) first.

Environment: ``os.environ`` + ``run.env`` + ``HYPERFLOW_TRIAL_DIR``,
``HYPERFLOW_TRIAL_NAME``, ``HYPERFLOW_EXPERIMENT_NAME``, ``HYPERFLOW_ARTIFACTS_DIR``;
``PYTHONUNBUFFERED=1`` unless set, so a Python trial's metrics stream as printed.
``os.environ`` is this process's when the reaper started (on ``prestart`` or the first
launch): the reaper holds it, and each launch sends only what the trial adds to it.
``python``/``python3`` as argv[0] become ``sys.executable`` (hyperflow's environment).

Not thread-safe: one controller thread drives it (as the controller does).
"""

from __future__ import annotations

import collections
import contextlib
import marshal
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuner.backends.base import KILLED, TrialBackend, TrialExit, TrialRun, check_command_trial
from tuner.metrics import Collector, NullCollector, make_collector
from tuner.types import Observation

if TYPE_CHECKING:
    from tuner.settings import TunerSettings
    from tuner.spec.models import Experiment

LOG_NAME = "trial.log"
PID_NAME = "pid"
LAUNCH_ERROR_NAME = "launch_error"
ARTIFACTS_NAME = "artifacts"

_REAPER = Path(__file__).with_name("_reaper.py")
_HEADER = struct.Struct(">I")
_PYTHONS = frozenset({"python", "python3"})
_MESSAGE_CHARS = 200


@dataclass(eq=False)
class _Trial:
    run: TrialRun
    collector: Collector
    ours: bool = False  # started by this backend's reaper (not adopted)
    pid: int | None = None
    start_time: str | None = None
    reaper: tuple[int, str | None] | None = None  # adopted: the reaper that started it
    ident: int = 0  # ours: the reaper's name for it (its exit is reported by this)
    starting: bool = False  # ours: asked the reaper to start it, no answer yet
    # ``launch_next``: given to the reaper to start after one of the trials ``after`` ends
    after: frozenset[int] = frozenset()  # (empty: launched)
    next_up: bool = False  # ``launch`` (or ``withdraw``) has not been called for it
    withdrawn: bool = False
    pidfd: int | None = None
    exit: TrialExit | None = None
    reported: bool = False  # ``poll`` has returned the exit
    killed_at: float | None = None
    sigkilled: bool = False

    @property
    def waiting(self) -> bool:
        """Held (``launch_next``) and not started nor withdrawn yet, as far as this process
        knows: no answer of the reaper's has come."""
        return self.starting and bool(self.after)

    def close_pidfd(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


def create(
    settings: TunerSettings,
    *,
    function: Callable[..., Any] | None = None,
    workers: int = 1,
    experiment: Experiment | None = None,
) -> TrialBackend:
    """The ``local`` backend of the registry: processes, or a warm pool for functions."""
    if function is not None:
        from tuner.backends.function import FunctionBackend

        return FunctionBackend(function, workers=workers)
    return LocalBackend()


class LocalBackend(TrialBackend):
    """Runs command trials as local processes (see the module docstring)."""

    kind = "local"

    def __init__(self, kill_grace: float = 5.0) -> None:
        self.kill_grace = kill_grace
        self._trials: dict[str, _Trial] = {}
        self._reaper: subprocess.Popen[bytes] | None = None
        self._from_reaper = b""  # bytes of an incomplete frame
        self._exits: dict[int, int] = {}  # ident -> exit status, as the reaper reported
        self._starting: dict[int, _Trial] = {}  # ident -> trial whose start is unanswered
        self._idents = 0

    # -- TrialBackend ------------------------------------------------------------------

    def may_have_started(self, run: TrialRun) -> bool:
        # The pid file is created before the command starts (see _reaper).
        return (Path(run.trial_dir) / PID_NAME).exists()

    def launch(self, run: TrialRun) -> None:
        trial = self._trials.get(run.trial_name)
        if trial is not None and trial.next_up:
            # Given to ``launch_next`` already: started now, unless its reaper has already
            # started it (an answer is on its way either way).
            trial.next_up = False
            if trial.waiting:
                self._send_to_reaper(("now", trial.ident))
            if self._trials.get(run.trial_name) is trial:
                return
            trial = None  # forgotten with a reaper that went before starting it: anew
        if trial is not None:
            raise ValueError(f"trial {run.trial_name} is already known to this backend")
        self._submit(run, None)

    def launch_next(self, run: TrialRun) -> bool:
        """``TrialBackend.launch_next``: the reaper holds the trial and starts it as soon as
        one of the trials it runs now has ended (and its status is written), with no turn
        of the controller's loop in between; or at ``launch``. Declined (False) when this
        backend runs none of its trials itself (adopted ones end unseen by the reaper),
        or when the trial could not start (``launch`` then says why)."""
        if run.trial_name in self._trials or not self._reaper_alive():
            return False
        # The trials launched here (by ``launch``: one started for ``launch_next`` that has
        # not been answered yet counts too) and not seen to end. One not started yet at the
        # reaper was asked to start before this request, so it has when the request comes.
        after = [
            t.ident
            for t in self._trials.values()
            if t.ours and not t.next_up and t.exit is None and t.ident not in self._exits
        ]
        if not after:
            return False
        try:
            return self._submit(run, after)
        except ValueError:
            return False

    def withdraw(self, trial_name: str) -> bool:
        """``TrialBackend.withdraw``: True if the trial given to ``launch_next`` never
        started (forgotten here), False if the reaper started it (or tried) before the
        withdrawal reached it: ``launch`` then takes it as started."""
        trial = self._trials.get(trial_name)
        if trial is None or not trial.next_up:
            return trial is None
        if trial.waiting:
            self._send_to_reaper(("cancel", trial.ident))
            # (Until the answer, or the reaper is gone: ``_forget_reaper`` settles it.)
            while trial.waiting and self._reaper is not None:
                self._receive(1.0)
        if trial.withdrawn or trial_name not in self._trials:
            self._trials.pop(trial_name, None)
            return True
        return False

    def _submit(self, run: TrialRun, after: list[int] | None) -> bool:
        """Ask the reaper to start ``run`` (now, or after one of the trials ``after``); False
        if it cannot start (with ``after``: nothing is recorded, else its failure is)."""
        command = check_command_trial(run, "LocalBackend")
        trial_dir = Path(os.path.abspath(run.trial_dir))
        # Only what differs from this process's environment goes to the reaper, which
        # started with that environment and adds these (no copy of it per trial here).
        overrides = trial_env_overrides(run, trial_dir)
        env = collections.ChainMap(overrides, os.environ, _BASE_ENV)
        trial = _Trial(run=run, collector=NullCollector())
        if after is None:
            self._trials[run.trial_name] = trial
        try:
            trial.collector = make_collector(
                run.collector,
                log_path=trial_dir / LOG_NAME,
                trial_dir=trial_dir,
                metric_names=run.metric_names,
                env=env,
            )
        except ValueError as exc:
            if after is None:
                self._fail_launch(trial, trial_dir, str(exc))
            return False
        argv = trial_argv(command)
        path, problem = locate_command(argv, Path(run.cwd), env.get("PATH", os.defpath))
        if path is None:
            assert problem is not None
            if after is None:
                self._fail_launch(trial, trial_dir, problem)
            return False
        self._idents += 1
        trial.ident = self._idents
        request = (
            trial.ident,
            path,
            argv,
            overrides,
            str(run.cwd),
            str(trial_dir),
            str(trial_dir / LOG_NAME),
            after,
        )
        if not self._send_to_reaper(request, start=after is None):
            if after is None:
                self._fail_launch(trial, trial_dir, "cannot start: the trial reaper is not running")
            return False
        trial.ours = trial.starting = True
        trial.next_up = after is not None
        trial.after = frozenset(after or ())
        self._trials[run.trial_name] = trial
        self._starting[trial.ident] = trial
        return True

    def _send_to_reaper(self, message: tuple[Any, ...], start: bool = False) -> bool:
        """Send one frame to the reaper (``start``: start a new one if it is gone, once).
        False if there is none to take it."""
        data = marshal.dumps(message)
        for _ in (1, 2):
            reaper = self._ensure_reaper() if start else self._reaper
            if reaper is None or reaper.stdin is None:
                return False
            try:
                reaper.stdin.write(_HEADER.pack(len(data)) + data)
                reaper.stdin.flush()
            except (BrokenPipeError, ValueError):
                self._forget_reaper()
                if not start:
                    return False
                continue
            return True
        return False

    def poll(self, trial_name: str) -> TrialExit | None:
        trial = self._trials[trial_name]
        if trial.exit is None:
            trial.exit = self._poll_killed(trial) if trial.killed_at else self._poll_running(trial)
            if trial.exit is not None:
                trial.close_pidfd()
        if trial.exit is not None:
            trial.reported = True
        return trial.exit

    def collect(self, trial_name: str) -> list[Observation]:
        trial = self._trials[trial_name]
        return trial.collector.collect(final=trial.exit is not None)

    def kill(self, trial_name: str) -> None:
        trial = self._trials.get(trial_name)
        if trial is None or trial.exit is not None or trial.killed_at is not None:
            return
        if trial.next_up and self.withdraw(trial_name):
            return  # it never started
        # A trial held for this one's end would start when its main process is reaped,
        # while the rest of its group may still be stopping (its slot is taken until
        # then): taken back here; ``launch`` then starts it anew.
        for held in list(self._trials.values()):
            if held.next_up and held.waiting and trial.ident in held.after:
                self.withdraw(held.run.trial_name)
        self._await_start(trial)
        if trial.exit is not None:
            return
        trial.killed_at = time.monotonic()
        if trial.pid is not None and self._group_alive(trial):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(trial.pid, signal.SIGTERM)

    def adopt(self, run: TrialRun, skip_observations: int) -> None:
        if run.trial_name in self._trials:
            raise ValueError(f"trial {run.trial_name} is already known to this backend")
        trial_dir = Path(os.path.abspath(run.trial_dir))
        trial = _Trial(run=run, collector=NullCollector())
        self._trials[run.trial_name] = trial
        try:
            trial.collector = make_collector(
                run.collector,
                log_path=trial_dir / LOG_NAME,
                trial_dir=trial_dir,
                metric_names=run.metric_names,
                env=trial_env(run, trial_dir),
            )
        except ValueError as exc:
            trial.exit = TrialExit(False, None, str(exc))
            return
        trial.collector.skip(skip_observations)
        launch_error = _read_text(trial_dir / LAUNCH_ERROR_NAME)
        if launch_error is not None:
            trial.exit = TrialExit(False, None, launch_error.strip() or "cannot start")
            return
        pid, start_time, code = _read_pid_file(trial_dir)
        if pid is not None:
            trial.pid, trial.start_time = pid, start_time
            trial.reaper = _read_reaper(trial_dir)
            if code is None and _alive(pid, start_time):
                trial.pidfd = _pidfd(pid)
        if code is not None:
            # It ended while no controller watched: when its reaper appended the status
            # (the file's last write), not when this one looked.
            trial.exit = replace(exit_for(code, trial_dir), ended_at=_mtime(trial_dir))
        elif pid is None:
            trial.exit = TrialExit(False, None, "lost: the trial never started (no pid file)")

    def log_path(self, trial_name: str) -> Path:
        return Path(os.path.abspath(self._trials[trial_name].run.trial_dir)) / LOG_NAME

    def delete_leftovers(self, experiment_uid: str, trial_dirs: list[Path]) -> None:
        # Trials of a controller killed with SIGKILL run on (the next run adopts them):
        # their process groups, each its recorded start time's, not a reused pid's.
        for trial_dir in trial_dirs:
            pid, start_time, code = _read_pid_file(trial_dir)
            if pid is not None and code is None and _alive(pid, start_time):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)

    def release(self, trial_name: str) -> None:
        trial = self._trials.get(trial_name)
        if trial is None:
            return
        self._await_start(trial)
        del self._trials[trial_name]
        trial.close_pidfd()
        if not trial.ours or trial.pid is None:
            return
        pid = trial.pid
        if trial.exit is None:
            # Released while running: nobody will watch it any more.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            deadline = time.monotonic() + self.kill_grace
            while trial.ident not in self._exits and self._reaper_alive():
                if time.monotonic() >= deadline:
                    break
                self._receive(min(0.05, max(0.0, deadline - time.monotonic())))
            self._exits.pop(trial.ident, None)
            return
        self._exits.pop(trial.ident, None)
        # The command has been reaped; processes it left behind in its group would
        # outlive the trial. The group id cannot be reused while they exist.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, 0)
            os.killpg(pid, signal.SIGKILL)

    def close(self) -> None:
        """Kill every running trial: SIGTERM, then SIGKILL after ``kill_grace`` seconds."""
        for name, trial in list(self._trials.items()):
            if trial.next_up:  # first: a kill below would free the slot it waits for
                self.withdraw(name)
        for name in list(self._trials):
            self.kill(name)
        deadline = time.monotonic() + self.kill_grace + 5.0
        while time.monotonic() < deadline:
            if all(self.poll(name) is not None for name in list(self._trials)):
                break
            time.sleep(0.01)
        for trial in self._trials.values():
            trial.close_pidfd()
        self._trials.clear()
        self._stop_reaper()

    # -- optional ----------------------------------------------------------------------

    def prestart(self, count: int | None = None) -> None:
        """Start the reaper now (``count``, the trials to come, does not matter here).

        ``TrialBackend.prestart``: ``run_experiment`` calls it as soon as it has created
        the backend, and the controller before its own set-up (a no-op if the reaper
        runs), so the reaper's interpreter boots meanwhile instead of delaying
        the first trial (10-20 ms here). A reaper that fails to start is started again by
        the first ``launch``, which reports why if it cannot.
        """
        with contextlib.suppress(OSError):
            self._ensure_reaper()

    def wait(self, timeout: float) -> None:
        """Return as soon as some trial's exit awaits ``poll``, or after ``timeout`` s.

        Trial exits are watched through the reaper's reports (and pidfds for adopted
        trials), so the controller learns of an exit at once instead of at its next
        polling tick. The reaper's answers to starts are taken on the way without
        returning. Killed trials are polled on the tick.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            watched: list[int] = []
            reaper_fd: int | None = None
            running: set[int] = set()
            for trial in self._trials.values():
                if trial.exit is not None:
                    if not trial.reported:
                        return
                elif trial.ours and trial.killed_at is None and not trial.next_up:
                    # (A held trial is not the controller's to poll until it launches it.)
                    running.add(trial.ident)
                elif trial.pidfd is not None and trial.killed_at is None:
                    watched.append(trial.pidfd)
            if running and self._reaper is not None and self._reaper.stdout is not None:
                if self._exits.keys() & running:
                    return
                reaper_fd = self._reaper.stdout.fileno()
                watched.append(reaper_fd)
            remaining = deadline - time.monotonic()
            if not watched:
                time.sleep(max(0.0, remaining))
                return
            if remaining <= 0:
                return
            poller = select.poll()
            for fd in watched:
                poller.register(fd, select.POLLIN)
            events = poller.poll(remaining * 1000)
            if not events or any(fd != reaper_fd for fd, _ in events):
                return
            self._receive(0)

    def pid(self, trial_name: str) -> int | None:
        """The PID (and process group id) of the trial's command, if it started."""
        trial = self._trials[trial_name]
        self._await_start(trial)
        return trial.pid

    # -- the reaper --------------------------------------------------------------------

    def _await_start(self, trial: _Trial) -> None:
        """Take the reaper's answer to ``trial``'s start (its PID, or why it could not)."""
        while trial.starting and self._reaper is not None:
            self._receive(1.0)

    def _ensure_reaper(self) -> subprocess.Popen[bytes]:
        if self._reaper is None or self._reaper.poll() is not None:
            self._forget_reaper()
            self._reaper = subprocess.Popen(
                [sys.executable, "-I", "-S", str(_REAPER)],
                # The trials' environment but what each launch sets (trial_env_overrides).
                env={**_BASE_ENV, **os.environ},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                # Its own session: neither a Ctrl-C to the terminal nor the controller's
                # death stops it; it ends after its input closed and its last trial ended.
                start_new_session=True,
            )
            assert self._reaper.stdout is not None
            os.set_blocking(self._reaper.stdout.fileno(), False)
        return self._reaper

    def _reaper_alive(self) -> bool:
        return self._reaper is not None and self._reaper.poll() is None

    def _receive(self, timeout: float) -> None:
        """Take the reaper's frames that arrive within ``timeout`` s (what is there already,
        with 0): started trials get their PID, failed starts their exit, ended trials'
        statuses are recorded. The reaper's end (EOF) is :meth:`_forget_reaper`."""
        reaper = self._reaper
        if reaper is None or reaper.stdout is None:
            return
        fd = reaper.stdout.fileno()
        while True:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                return
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:  # the reaper exited
                self._forget_reaper()
                return
            self._from_reaper += chunk
            while len(self._from_reaper) >= _HEADER.size:
                (size,) = _HEADER.unpack_from(self._from_reaper)
                end = _HEADER.size + size
                if len(self._from_reaper) < end:
                    break
                frame = marshal.loads(self._from_reaper[_HEADER.size : end])
                self._from_reaper = self._from_reaper[end:]
                self._take(frame)
            timeout = 0

    def _take(self, frame: tuple[Any, ...]) -> None:
        kind, ident = frame[0], int(frame[1])
        if kind == "exit":
            self._exits[ident] = int(frame[2])
            return
        trial = self._starting.pop(ident, None)
        if trial is None:
            return
        trial.starting = False
        if kind == "cancelled":
            trial.withdrawn = True
        elif kind == "pid":
            trial.pid, trial.start_time = int(frame[2]), None if frame[3] == "-" else frame[3]
        else:
            trial.ours = False
            self._fail_launch(trial, Path(os.path.abspath(trial.run.trial_dir)), str(frame[2]))

    def _forget_reaper(self) -> None:
        """The reaper is gone (or is being replaced): its trials are watched through their
        ``pid`` files from now on, as adopted ones are."""
        reaper, self._reaper = self._reaper, None
        self._from_reaper = b""
        starting, self._starting = self._starting, {}
        for trial in starting.values():
            # It may have started the command before it went: watched through its files.
            was_waiting, trial.starting = trial.waiting, False
            trial_dir = Path(os.path.abspath(trial.run.trial_dir))
            started, start_time, _ = _read_pid_file(trial_dir)
            if was_waiting and not (trial_dir / PID_NAME).exists():
                # Held for ``launch_next``, never started: forgotten (``launch`` starts it).
                del self._trials[trial.run.trial_name]
            elif started is None:
                trial.ours = False
                self._fail_launch(trial, trial_dir, "cannot start: the trial reaper exited")
            else:
                trial.pid, trial.start_time = started, start_time
        for trial in self._trials.values():
            if trial.ours and trial.exit is None and trial.ident not in self._exits:
                trial.ours = False
                if trial.pid is not None and reaper is not None:
                    trial.reaper = (reaper.pid, _start_time(reaper.pid))
                    trial.pidfd = _pidfd(trial.pid)
        if reaper is not None:
            for stream in (reaper.stdin, reaper.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                reaper.wait(timeout=0)

    def _stop_reaper(self) -> None:
        """Close the reaper's input; it exits once its trials have ended (all were killed)."""
        reaper = self._reaper
        if reaper is None:
            return
        for trial in list(self._starting.values()):  # (``close`` withdrew the held ones)
            self._await_start(trial)
        self._reaper = None
        self._from_reaper = b""
        for stream in (reaper.stdin, reaper.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        # Woken by its exit (a pidfd), not by ``Popen.wait``'s polling sleeps, which
        # overshoot the reaper's few milliseconds of shutting down.
        pidfd = _pidfd(reaper.pid)
        if pidfd is not None:
            try:
                select.select([pidfd], [], [], self.kill_grace + 5.0)
            finally:
                os.close(pidfd)
        with contextlib.suppress(subprocess.TimeoutExpired):
            reaper.wait(timeout=self.kill_grace + 5.0)

    # -- internals ---------------------------------------------------------------------

    def _fail_launch(self, trial: _Trial, trial_dir: Path, message: str) -> None:
        trial.exit = TrialExit(succeeded=False, exit_code=None, message=message)
        # Written down so that a controller adopting this trial knows why it failed (a
        # folder that cannot be made: its trial fails all the same, for this controller).
        with contextlib.suppress(OSError):
            trial_dir.mkdir(parents=True, exist_ok=True)
            with open(trial_dir / LOG_NAME, "a", encoding="utf-8") as log:
                log.write(message + "\n")
            (trial_dir / LAUNCH_ERROR_NAME).write_text(message + "\n", encoding="utf-8")

    def _poll_running(self, trial: _Trial) -> TrialExit | None:
        if trial.ours:
            self._receive(0)
            if trial.exit is not None:  # it could not start
                return trial.exit
            if trial.ours:  # (the reaper may have turned out to be gone)
                code = self._exits.get(trial.ident)
                if code is None:  # the common answer, polled every turn: no path built
                    return None
                return exit_for(code, Path(os.path.abspath(trial.run.trial_dir)))
        trial_dir = Path(os.path.abspath(trial.run.trial_dir))
        # Adopted (or its reaper is gone): check the file, then liveness, then the file
        # again — the reaper writes the file after the command ended, the moment it does.
        code = _read_exit_code(trial_dir)
        if code is None:
            if trial.pid is not None and _alive(trial.pid, trial.start_time):
                return None
            if trial.reaper is not None and _alive(*trial.reaper):
                trial.close_pidfd()  # ended: its reaper is about to write the status
                return None
            code = _read_exit_code(trial_dir)
            if code is None:
                return TrialExit(False, None, "lost: the trial process ended without an exit code")
        return exit_for(code, trial_dir)

    def _poll_killed(self, trial: _Trial) -> TrialExit | None:
        if trial.ours:
            self._receive(0)
        if trial.pid is None or not self._group_alive(trial):
            code = self._exits.get(trial.ident) if trial.ident else None
            if code is None and not trial.ours:
                code = _read_exit_code(Path(os.path.abspath(trial.run.trial_dir)))
            return TrialExit(False, code, KILLED)
        assert trial.killed_at is not None
        if not trial.sigkilled and time.monotonic() - trial.killed_at >= self.kill_grace:
            trial.sigkilled = True
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(trial.pid, signal.SIGKILL)
        return None

    def _group_alive(self, trial: _Trial) -> bool:
        """Whether any live (non-zombie) process is in the trial's process group."""
        assert trial.pid is not None
        try:
            os.killpg(trial.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return group_has_live_members(trial.pid)


def trial_env(run: TrialRun, trial_dir: Path) -> dict[str, str]:
    """The trial's environment (module docstring)."""
    return {**_BASE_ENV, **os.environ, **trial_env_overrides(run, trial_dir)}


# What a trial's environment adds to the controller's unless the controller has it.
_BASE_ENV = {"PYTHONUNBUFFERED": "1"}


def trial_env_overrides(run: TrialRun, trial_dir: Path) -> dict[str, str]:
    """What the trial's environment sets over the controller's (and ``_BASE_ENV``)."""
    env = dict(run.env)
    env["HYPERFLOW_TRIAL_DIR"] = str(trial_dir)
    env["HYPERFLOW_TRIAL_NAME"] = run.trial_name
    env["HYPERFLOW_EXPERIMENT_NAME"] = run.experiment_name
    env["HYPERFLOW_ARTIFACTS_DIR"] = str(trial_dir / ARTIFACTS_NAME)
    return env


def trial_argv(command: list[str]) -> list[str]:
    """``command`` with ``python``/``python3`` replaced by hyperflow's interpreter."""
    argv = [str(a) for a in command]
    if argv and argv[0] in _PYTHONS:
        argv[0] = sys.executable
    return argv


def check_command(argv: list[str], cwd: Path, path: str) -> str | None:
    """Why ``argv`` cannot start (a short message), or None if it can."""
    return locate_command(argv, cwd, path)[1]


def locate_command(argv: list[str], cwd: Path, path: str) -> tuple[str | None, str | None]:
    """(the file ``argv[0]`` names, as ``execvp`` in ``cwd`` with ``PATH=path`` finds it,
    None), or (None, why it cannot start: a short message)."""
    if not argv or not argv[0]:
        return None, "empty command"
    exe = argv[0]
    if os.sep in exe:
        full = exe if os.path.isabs(exe) else os.path.join(cwd, exe)
        if not os.path.isfile(full):
            return None, f"command not found: {exe}"
        if not os.access(full, os.X_OK):
            return None, f"command not executable: {exe}"
        return full, None
    found = shutil.which(exe, path=path)
    if found is None:
        return None, f"command not found: {exe}"
    return (found if os.path.isabs(found) else os.path.join(cwd, found)), None


def group_has_live_members(pgid: int) -> bool:
    """Scan /proc for a non-zombie process in group ``pgid`` (True where /proc is absent)."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    wanted = str(pgid)
    for entry in entries:
        if not entry.isdigit():
            continue
        stat = _proc_stat(int(entry))
        if stat is not None and len(stat) > 2 and stat[2] == wanted and stat[0] not in "ZX":
            return True
    return False


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name: [state, ppid, pgrp, ...]."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rfind(b")") + 2 :].decode("ascii", errors="replace").split()


def _start_time(pid: int) -> str | None:
    stat = _proc_stat(pid)
    # Field 22 of /proc/<pid>/stat (1-based) is the start time; index 19 after the name.
    return stat[19] if stat is not None and len(stat) > 19 else None


def _alive(pid: int, start_time: str | None) -> bool:
    """Whether ``pid`` is still the (non-zombie) process that had ``start_time``."""
    stat = _proc_stat(pid)
    if stat is None:
        if os.path.isdir("/proc/self"):
            return False
        try:  # no /proc: trust the PID
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    if stat[0] in "ZX":
        return False
    return start_time is None or (len(stat) > 19 and stat[19] == start_time)


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None


def _read_pid_file(trial_dir: Path) -> tuple[int | None, str | None, int | None]:
    """(pid, start time, exit status) from the ``pid`` file; None for what it lacks.

    Only complete (newline-terminated) lines count: the file may be being written.
    """
    text = _read_text(trial_dir / PID_NAME) or ""
    pid: int | None = None
    start_time: str | None = None
    code: int | None = None
    for line in text.split("\n")[:-1]:
        fields = line.split()
        if len(fields) == 2 and fields[0] == "exit" and fields[1].isdigit():
            code = int(fields[1])
        elif len(fields) == 2 and fields[0].isdigit():
            line_pid, line_start = int(fields[0]), None if fields[1] == "-" else fields[1]
            # The reaper's "<pid> -" line may land after the controller's line with
            # the start time: it must not erase that start time.
            if line_pid != pid or line_start is not None:
                pid, start_time = line_pid, line_start
    return pid, start_time, code


def _read_reaper(trial_dir: Path) -> tuple[int, str | None] | None:
    """The (pid, start time) of the reaper that started the trial, from its ``pid`` file."""
    text = _read_text(trial_dir / PID_NAME) or ""
    for line in text.split("\n")[:-1]:
        fields = line.split()
        if len(fields) == 3 and fields[0] == "reaper" and fields[1].isdigit():
            return int(fields[1]), None if fields[2] == "-" else fields[2]
    return None


def _mtime(trial_dir: Path) -> float | None:
    try:
        return (trial_dir / PID_NAME).stat().st_mtime
    except OSError:
        return None


def _read_exit_code(trial_dir: Path) -> int | None:
    """The exit status the trial's reaper appended to ``pid``; None until it did."""
    return _read_pid_file(trial_dir)[2]


def exit_for(code: int, trial_dir: Path) -> TrialExit:
    """The exit of a command that ended with ``code``: the last log line says why it failed."""
    if code == 0:
        return TrialExit(True, 0, "exit code 0")
    last = _last_line(trial_dir / LOG_NAME)
    return TrialExit(False, code, f"exit code {code}: {last}" if last else f"exit code {code}")


def _last_line(log_path: Path) -> str:
    try:
        with open(log_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            tail = f.read()
    except OSError:
        return ""
    for line in reversed(tail.decode("utf-8", errors="replace").splitlines()):
        line = line.strip()
        if line:
            return line if len(line) <= _MESSAGE_CHARS else line[: _MESSAGE_CHARS - 3] + "..."
    return ""


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)
