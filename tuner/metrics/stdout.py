"""Katib's StdOut collector: ``name=value`` lines of the trial's log (stdout + stderr).

The line rules (default regexp, ``filter.metricsFormat``, RFC 3339 timestamps, steps)
are in :mod:`tuner.metrics.lines`; :class:`StdOutParser` is re-exported here for code
that parses captured output itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from tuner.metrics.base import Collector
from tuner.metrics.lines import DEFAULT_METRICS_FORMAT, StdOutParser
from tuner.metrics.tail import LineTailer
from tuner.types import Observation

__all__ = ["DEFAULT_METRICS_FORMAT", "StdOutCollector", "StdOutParser", "TextFileCollector"]


class TextFileCollector(Collector):
    """Observations in the lines appended to a text file (Katib's text format)."""

    def __init__(
        self, path: Path, metric_names: Iterable[str], filters: Sequence[str] | None = None
    ) -> None:
        super().__init__()
        self.path = path
        self._tailer = LineTailer(path)
        self._parser = StdOutParser(metric_names, filters)

    def _read(self, final: bool) -> list[Observation]:
        lines = self._tailer.read(final)
        if not lines:
            return []
        now = time.time()
        out: list[Observation] = []
        for line in lines:
            out.extend(self._parser.parse_line(line, now))
        return out


class StdOutCollector(TextFileCollector):
    """Tails the trial's log file (its combined stdout and stderr)."""
