"""The worker's bridges to the metrics code: the ``report()`` sink and StdOut parsing.

Kept in one module so the worker depends on ``tuner.report`` and ``tuner.metrics`` in
exactly one place.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

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


def stdout_line_parser(
    metric_names: list[str], filters: list[str]
) -> Callable[[str], list[Observation]]:
    """Katib StdOut parsing of one printed line (``filters``: ``metricsFormat`` regexps)."""
    from tuner.metrics.stdout import StdOutParser

    return StdOutParser(metric_names, filters or None).parse
