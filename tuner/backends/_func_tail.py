"""Follow a running trial's log and stream the metrics it prints (Katib StdOut).

A function trial's stdout goes straight to its log file at the fd level (so C extensions
and child processes are captured too); this follower reads what was appended, parses
complete lines and emits their observations while the trial still runs, so early
stopping sees printed intermediate values. It lives in the worker, one per trial.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from tuner.types import Observation

LineParser = Callable[[str], list[Observation]]
Emit = Callable[[list[Observation]], None]


class LogFollower:
    """Parse ``path`` from byte ``start`` on, every ``interval`` seconds, until ``stop``.

    ``emit`` is called from the follower's thread with the observations of each batch of
    complete lines. ``stop`` reads the rest (a last line without a newline included) and
    returns its observations instead of emitting them, so the caller can order them.
    """

    def __init__(
        self, path: Path, start: int, parse_line: LineParser, emit: Emit, interval: float = 0.05
    ) -> None:
        self._file = open(path, "rb")  # noqa: SIM115  # closed by stop()
        self._file.seek(start)
        self._parse_line = parse_line
        self._emit = emit
        self._interval = interval
        self._partial = b""
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # one reader of the file at a time
        self._thread = threading.Thread(target=self._follow, name="hyperflow-log-follower")
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> list[Observation]:
        self._stopping.set()
        self._thread.join()
        try:
            with self._lock:
                observations = self._read(final=True)
        finally:
            self._file.close()
        return observations

    def _follow(self) -> None:
        while not self._stopping.wait(self._interval):
            with self._lock:
                observations = self._read(final=False)
            if observations:
                self._emit(observations)

    def _read(self, final: bool) -> list[Observation]:
        data = self._partial + self._file.read()
        lines = data.split(b"\n")
        # The last piece is an unfinished line, unless the trial is over.
        self._partial = b"" if final else lines.pop()
        observations: list[Observation] = []
        for raw in lines:
            if raw:
                observations.extend(self._parse_line(raw.decode("utf-8", errors="replace")))
        return observations
