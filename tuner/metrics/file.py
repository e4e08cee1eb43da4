"""Katib's File collector: metrics the trial writes to a file, as TEXT or JSON lines.

* TEXT: the same rules as StdOut (:mod:`tuner.metrics.lines`).
* JSON: one JSON object per line. Keys that are requested metric names become
  observations (numbers or numeric strings; other values are skipped). A ``timestamp``
  key (seconds since the epoch, or an RFC 3339 string) is honoured, else the time of
  reading; a ``step`` key, else an ``epoch`` key (integers), is the step, else the number
  of earlier observations of that metric. Lines that are not JSON objects are skipped.

The path (``source.fileSystemPath.path``) is resolved by the factory: ``$VAR``s expand
with the trial's environment; a relative path is relative to the trial's own folder
(``$HYPERFLOW_TRIAL_DIR``), so parallel trials never write to the same file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path

from tuner.metrics.base import Collector
from tuner.metrics.lines import StepCounter, finite, parse_rfc3339
from tuner.metrics.stdout import TextFileCollector
from tuner.metrics.tail import LineTailer
from tuner.types import Observation

__all__ = ["JsonLinesCollector", "TextFileCollector"]


class JsonLinesCollector(Collector):
    def __init__(self, path: Path, metric_names: Iterable[str]) -> None:
        super().__init__()
        self.path = path
        self.metric_names = frozenset(metric_names)
        self._tailer = LineTailer(path)
        self._steps = StepCounter()

    def _read(self, final: bool) -> list[Observation]:
        lines = self._tailer.read(final)
        if not lines:
            return []
        now = time.time()
        out: list[Observation] = []
        for line in lines:
            out.extend(self._parse(line, now))
        return out

    def _parse(self, line: str, now: float) -> list[Observation]:
        line = line.strip()
        if not line.startswith("{"):
            return []
        try:
            record = json.loads(line)
        except ValueError:
            return []
        if not isinstance(record, dict):
            return []
        timestamp = _timestamp(record.get("timestamp"), now)
        explicit_step = _step(record)
        out: list[Observation] = []
        for key, raw in record.items():
            if key not in self.metric_names:
                continue
            value = finite(raw)
            if value is None:
                continue
            # Count every observation, so the implicit steps stay consistent even when
            # some lines carry an explicit step and others do not.
            counted = self._steps.next(key)
            out.append(
                Observation(
                    key, value, counted if explicit_step is None else explicit_step, timestamp
                )
            )
        return out


def _timestamp(raw: object, now: float) -> float:
    if isinstance(raw, str):
        parsed = parse_rfc3339(raw.strip())
        if parsed is not None:
            return parsed
    number = finite(raw)
    return now if number is None else number


def _step(record: dict[str, object]) -> int | None:
    for key in ("step", "epoch"):
        number = finite(record.get(key))
        # A step the store can keep (64-bit); a larger one is no step.
        if number is not None and number.is_integer() and -(2**63) <= number < 2**63:
            return int(number)
    return None
