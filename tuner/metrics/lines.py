"""Katib's text metrics format: ``name=value`` pairs found by regexps in lines of text.

Used by the StdOut collector (the trial's log), the File collector's TEXT format and the
function backend (captured stdout). Rules, as Katib's metrics collector applies them:

* Each line may start with an RFC 3339 timestamp followed by a space
  (``2024-05-01T12:00:00.5Z loss=0.3``); it becomes the observation's timestamp and is
  not searched for metrics. Otherwise the timestamp is the time of reading.
* Each regexp (``filter.metricsFormat``; Katib's default when none is given) is applied
  to the line with "find all": group 1 is the metric name, group 2 the value, so one line
  can hold several metrics (``epoch=2 loss=0.3 accuracy=0.91``). Regexps are applied in
  the order given, matches in the order they appear in the line.
* Only the requested metric names are kept; values that are not finite numbers are
  skipped (Katib's default regexp also matches ``name=`` with an empty value).
* The **step** of an observation is the number of earlier observations of the same
  metric parsed by the same parser: the first ``loss`` is step 0, the next step 1, ...
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Sequence
from datetime import datetime

from tuner.types import Observation

# Katib's default ``filter.metricsFormat`` (pkg/metricscollector/v1beta1/common).
DEFAULT_METRICS_FORMAT = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def parse_rfc3339(text: str) -> float | None:
    """Seconds since the epoch of an RFC 3339 timestamp, or None if ``text`` is not one."""
    if not _RFC3339.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(text.upper()).timestamp()
    except ValueError:
        return None


def compile_filters(filters: Sequence[str] | None) -> list[re.Pattern[str]]:
    """Compile ``filter.metricsFormat`` regexps (the default when empty).

    Raises ``ValueError`` naming the regexp if one does not compile or has fewer than
    two groups (name and value).
    """
    patterns: list[re.Pattern[str]] = []
    for source in filters or [DEFAULT_METRICS_FORMAT]:
        try:
            pattern = re.compile(source)
        except re.error as exc:
            raise ValueError(f"invalid metricsFormat regexp {source!r}: {exc}") from exc
        if pattern.groups < 2:
            raise ValueError(
                f"metricsFormat regexp {source!r} needs two groups (metric name, value)"
            )
        patterns.append(pattern)
    return patterns


def finite(value: object) -> float | None:
    """``value`` as a finite float (numbers and numeric strings), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
    if not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


class StepCounter:
    """Assigns steps: the number of earlier observations of the same metric."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def next(self, name: str) -> int:
        step = self._counts.get(name, 0)
        self._counts[name] = step + 1
        return step


class StdOutParser:
    """Parses lines of text into observations of ``metric_names`` (module rules).

    Stateful only in its step counts: feed one trial's text through one parser.
    """

    def __init__(self, metric_names: Iterable[str], filters: Sequence[str] | None = None) -> None:
        self.metric_names = frozenset(metric_names)
        self._patterns = compile_filters(filters)
        self._steps = StepCounter()

    def parse(self, text: str, now: float | None = None) -> list[Observation]:
        """Observations in ``text`` (complete lines; a last line without newline counts)."""
        now = time.time() if now is None else now
        out: list[Observation] = []
        for line in text.splitlines():
            out.extend(self.parse_line(line, now))
        return out

    def parse_line(self, line: str, now: float | None = None) -> list[Observation]:
        """Observations in one line of text."""
        # Cheap pre-filter, as Katib does: a line naming no metric holds none of them.
        if not any(name in line for name in self.metric_names):
            return []
        timestamp = None
        head, sep, rest = line.partition(" ")
        if sep and head[:1].isdigit():
            timestamp = parse_rfc3339(head)
            if timestamp is not None:
                line = rest
        if timestamp is None:
            timestamp = time.time() if now is None else now
        out: list[Observation] = []
        for pattern in self._patterns:
            for match in pattern.finditer(line):
                name = (match.group(1) or "").strip()
                if name not in self.metric_names:
                    continue
                value = finite(match.group(2) or "")
                if value is None:
                    continue
                out.append(Observation(name, value, self._steps.next(name), timestamp))
        return out
