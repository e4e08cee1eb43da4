"""The worker's bridges to the metrics code: the ``report()`` sink and StdOut parsing.

Kept in one module so the worker depends on ``tuner.report`` and ``tuner.metrics`` in
exactly one place.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from tuner.types import Observation

Sink = Callable[[list[Observation]], None]


@contextlib.contextmanager
def install_report_sink(sink: Sink) -> Iterator[None]:
    """Route ``tuner.report.report()`` calls to ``sink`` for the duration of the block."""
    from tuner import report

    report.set_sink(sink)
    try:
        yield
    finally:
        report.set_sink(None)


def parse_printed(
    log_path: Path, start: int, metric_names: list[str], filters: list[str]
) -> list[Observation]:
    """Katib StdOut observations in the log from byte ``start`` on (the trial's output)."""
    from tuner.metrics.stdout import StdOutParser

    with open(log_path, "rb") as log:
        log.seek(start)
        text = log.read().decode("utf-8", errors="replace")
    parser = StdOutParser(metric_names, filters or None)
    return parser.parse(text)
