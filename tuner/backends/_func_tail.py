"""Follow a running trial's metrics output and stream what it contains.

A function trial's stdout goes straight to its log file at the fd level (so C extensions
and child processes are captured too), and a File collector's file is written by the
trial itself; in both cases a follower in the worker reads what was appended every
``interval`` seconds and emits the observations while the trial still runs, so early
stopping sees printed intermediate values. One follower per trial.
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
    """Call ``read`` every ``interval`` seconds and ``emit`` what it finds, until ``stop``.

    ``emit`` runs on the follower's thread. ``stop`` does the final read itself and
    returns its observations instead of emitting them, so the caller can order them.
    """

    def __init__(self, read: Reader, emit: Emit, interval: float = 0.05) -> None:
        self._read = read
        self._emit = emit
        self._interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._follow, name="hyperflow-metrics-follower", daemon=True
        )
        self._thread.start()

    def stop(self) -> list[Observation]:
        self._stopping.set()
        self._thread.join()
        return self._read(True)

    def _follow(self) -> None:
        while not self._stopping.wait(self._interval):
            observations = self._read(False)
            if observations:
                self._emit(observations)
