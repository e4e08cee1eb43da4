"""A function-trial worker process as the backend sees it, and the thread that starts them.

:class:`WorkerProcess` owns one ``python -m tuner.backends._worker`` process: a lock for
writing messages to its stdin and a reader thread that hands every message from its
stdout to ``on_message`` and, at EOF, calls ``on_exit`` once. :class:`Spawner` forks
workers from one long-lived thread (see ``Spawner`` for why).
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import IO, TYPE_CHECKING, Any

from tuner.backends import _func_protocol as proto

if TYPE_CHECKING:
    from tuner.backends._func_fork import ForkedWorker
    from tuner.backends.function import _Trial


class WorkerProcess:
    """One worker process, its write lock and its reader thread.

    ``trial`` and ``retired`` are the backend's bookkeeping, guarded by its lock.
    """

    def __init__(
        self,
        on_message: Callable[[WorkerProcess, tuple[Any, ...]], None],
        on_exit: Callable[[WorkerProcess], None],
    ) -> None:
        self._on_message = on_message
        self._on_exit = on_exit
        self.proc: subprocess.Popen[bytes] | ForkedWorker | None = None
        self.reader: threading.Thread
        self.trial: _Trial | None = None
        self.retired = False
        self._send_lock = threading.Lock()

    def attach(self, proc: subprocess.Popen[bytes] | ForkedWorker) -> None:
        self.proc = proc
        self.reader = threading.Thread(
            target=self._read, name=f"hyperflow-func-worker-{proc.pid}", daemon=True
        )
        self.reader.start()

    def send(self, message: tuple[Any, ...]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        # A dead worker is noticed by its reader thread (EOF), which fails the trial.
        with self._send_lock, contextlib.suppress(BrokenPipeError, ValueError, OSError):
            proto.send(self.proc.stdin, message)

    def close_stdin(self) -> None:
        if self.proc is not None and self.proc.stdin is not None:
            with self._send_lock, contextlib.suppress(OSError):
                self.proc.stdin.close()

    def signal(self, signum: int) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        # The worker leads its own process group: this also reaches the trial's children.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signum)

    def kill_if_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.signal(signal.SIGKILL)

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        stdout: IO[bytes] = self.proc.stdout
        try:
            while (message := proto.receive(stdout)) is not None:
                self._on_message(self, message)
        except BaseException:
            self.kill_if_alive()  # a garbled pipe: this worker cannot be trusted any more
            raise
        finally:
            self._on_exit(self)


class Spawner:
    """A long-lived thread that starts worker processes.

    Workers set ``PR_SET_PDEATHSIG``, which fires when the *thread* that forked them ends,
    not the process; the backend's callers (a controller's short-lived threads, a reader
    thread replacing a worker) may end any time, this thread only at ``stop()``.
    """

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._lock = threading.Lock()

    def spawn(self, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """``python -m tuner.backends._worker``-style: a fresh interpreter."""

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                args,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
                start_new_session=True,
            )

        proc: subprocess.Popen[bytes] = self.run(start)
        return proc

    def run(self, start: Callable[[], Any]) -> Any:
        """Call ``start`` (which starts a process) in the spawner thread; its result."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("the backend is closed")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="hyperflow-func-spawner", daemon=True
                )
                self._thread.start()
        future: Future[Any] = Future()
        self._requests.put((start, future))
        return future.result()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            thread, self._thread = self._thread, None
        if thread is not None:
            self._requests.put(None)
            thread.join()

    def _serve(self) -> None:
        while (request := self._requests.get()) is not None:
            start, future = request
            try:
                proc = start()
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(proc)
