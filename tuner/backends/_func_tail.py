"""Follow a running trial's metrics output and stream what it contains.

A function trial's stdout goes straight to its log file at the fd level (so C extensions
and child processes are captured too), and a File collector's file is written by the
trial itself; in both cases the worker's follower reads what was appended every
``interval`` seconds and emits the observations while the trial still runs, so early
stopping sees printed intermediate values.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from tuner.types import Observation

# ``read(final)``: observations appended since the previous call; ``final`` once the
# trial is over (then a last line without its newline counts too).
Reader = Callable[[bool], list[Observation]]
Emit = Callable[[list[Observation]], None]


class MetricsFollower:
    """One per worker: a thread, started on first use, that follows the current trial.

    Between ``start(read, emit)`` and ``stop()`` it calls ``read(False)`` every
    ``interval`` seconds and passes what it finds to ``emit`` (on its own thread).
    ``stop`` waits for a read in progress, then does the final ``read(True)`` itself
    and returns those observations instead of emitting them, so the caller orders them
    after everything emitted. Reusing one thread keeps a thread start off every trial.
    """

    def __init__(self, interval: float = 0.05) -> None:
        self._interval = interval
        self._cond = threading.Condition()
        self._job: tuple[Reader, Emit] | None = None
        self._reading = False
        self._parked = False  # the thread waits for a job, not for its interval
        self._thread: threading.Thread | None = None

    def start(self, read: Reader, emit: Emit) -> None:
        with self._cond:
            self._job = (read, emit)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._follow, name="hyperflow-metrics-follower", daemon=True
                )
                self._thread.start()
            elif self._parked:
                self._cond.notify_all()
            # Otherwise it is between reads: it sees the new job when its interval ends.
            # Waking it on every start and stop would cost each trial two thread switches.

    def stop(self) -> list[Observation]:
        with self._cond:
            job, self._job = self._job, None
            self._cond.wait_for(lambda: not self._reading)
        return job[0](True) if job is not None else []

    def _follow(self) -> None:
        while True:
            with self._cond:
                self._parked = True
                self._cond.wait_for(lambda: self._job is not None)
                self._parked = False
                job = self._job
                self._cond.wait(self._interval)
                if self._job is not job or job is None:
                    continue  # that trial ended meanwhile; follow the next one afresh
                self._reading = True
            try:
                read, emit = job
                observations = read(False)
                if observations:
                    emit(observations)
            except Exception:
                pass  # a failed read is retried; stop()'s final read reports for good
            finally:
                with self._cond:
                    self._reading = False
                    self._cond.notify_all()
