"""Start a function-trial worker by forking this process (``start="fork"``).

A spawned worker (``python -m tuner.backends._worker``) pays an interpreter start and its
imports: 0.3-2 s before its first trial. A forked one starts with everything its parent
imported (kfp, numpy, the user's modules) and is ready in milliseconds. The child is made
as clean as a spawned worker before it serves:

* its own session (``setsid``: Ctrl-C in the terminal reaches the parent only);
* fds 0 and 1 are the protocol pipes, 2 the parent's stderr; every other inherited fd is
  replaced by ``/dev/null`` (not closed: a Python object of the parent that owned it and
  is finalized later must not close a file the worker opened under the same number), so
  no pipe, socket or database file of the parent is held open by a worker (another
  worker's stdin, the MLflow writer's pipe, a server's listening socket);
* fresh ``sys.stdin/stdout/stderr`` (the parent's may be locked by a thread that no
  longer exists here), no root logging handlers, default signal handlers, the given
  environment;
* it ends with ``os._exit``: none of the parent's ``atexit`` hooks or finalizers run.

Forking is only safe when no other thread of the parent is importing a module the child
will import at that moment; the backend forks from its spawner thread while the caller
waits (``prestart``/``launch``). Linux only (``/proc/self/fd``); elsewhere workers spawn.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from typing import IO

SUPPORTED = sys.platform.startswith("linux")


class ForkedWorker:
    """What the backend uses of :class:`subprocess.Popen`, for a forked child."""

    def __init__(self, pid: int, stdin: IO[bytes], stdout: IO[bytes]) -> None:
        self.pid = pid
        self.stdin = stdin
        self.stdout = stdout
        self.returncode: int | None = None
        self._lock = threading.Lock()

    def _reap(self, flags: int) -> None:
        """Caller holds the lock."""
        if self.returncode is not None:
            return
        try:
            pid, status = os.waitpid(self.pid, flags)
        except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored): as Popen does
            self.returncode = 0
            return
        if pid == self.pid:
            self.returncode = os.waitstatus_to_exitcode(status)

    def poll(self) -> int | None:
        if self._lock.acquire(blocking=False):
            try:
                self._reap(os.WNOHANG)
            finally:
                self._lock.release()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if timeout is None:
            with self._lock:
                self._reap(0)
            assert self.returncode is not None
            return self.returncode
        deadline = time.monotonic() + timeout
        delay = 0.001
        while (code := self.poll()) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired([str(self.pid)], timeout)
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.05)
        return code


def fork_worker(env: dict[str, str], serve: Callable[[], int]) -> ForkedWorker:
    """Fork a worker that runs ``serve()`` (the worker's main loop) on its pipes."""
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns on fork() in a process with threads; see the module docstring.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, which never returns
        code = 1
        try:
            _become_worker(to_child_r, from_child_w, env)
            code = serve()
        except BaseException:
            with contextlib.suppress(Exception):
                traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    os.close(to_child_r)
    os.close(from_child_w)
    return ForkedWorker(pid, os.fdopen(to_child_w, "wb"), os.fdopen(from_child_r, "rb"))


def _become_worker(stdin_fd: int, stdout_fd: int, env: dict[str, str]) -> None:
    os.setsid()
    os.dup2(stdin_fd, 0)
    os.dup2(stdout_fd, 1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd != devnull:
            with contextlib.suppress(OSError):  # the listing's own fd, closed by now
                os.dup2(devnull, fd)
    os.close(devnull)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with contextlib.suppress(ValueError):
        signal.set_wakeup_fd(-1)
    os.environ.clear()
    os.environ.update(env)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the worker's for its lifetime
    sys.stdout = io.TextIOWrapper(open(1, "wb", closefd=False), line_buffering=True)  # noqa: SIM115
    sys.stderr = io.TextIOWrapper(
        open(2, "wb", closefd=False),  # noqa: SIM115
        line_buffering=True,
        errors="backslashreplace",
    )
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
