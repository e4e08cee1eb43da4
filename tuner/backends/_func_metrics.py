"""The worker's bridges to the metrics code: the ``report()`` sink and the collectors.

Kept in one module so the worker depends on ``tuner.report`` and ``tuner.metrics`` in
exactly one place.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from tuner.backends._func_protocol import FILE, STDOUT, CollectorConfig
from tuner.types import Observation

Sink = Callable[[list[Observation]], None]
Reader = Callable[[bool], list[Observation]]


@contextlib.contextmanager
def install_report_sink(sink: Sink) -> Iterator[None]:
    """Route ``tuner.report.report()`` calls to ``sink`` for the duration of the block."""
    from tuner import report

    report.set_sink(sink)
    try:
        yield
    finally:
        report.set_sink(None)


def metrics_reader(
    config: CollectorConfig,
    *,
    log_path: Path,
    log_start: int,
    trial_dir: Path,
    metric_names: list[str],
) -> Reader | None:
    """An incremental reader of the trial's collected metrics, or None if none are.

    StdOut parses the trial log from byte ``log_start`` on (earlier bytes belong to
    earlier runs of the same trial); File reads the collector's file, its path expanded
    with the trial's environment (call this inside it). Push and None collect nothing
    here: ``report()`` streams through the sink either way.
    """
    if config.kind == STDOUT:
        from tuner.metrics.lines import StdOutParser
        from tuner.metrics.tail import LineTailer

        tailer = LineTailer(log_path)
        tailer.offset = log_start
        parser = StdOutParser(metric_names, list(config.filters))

        def read_log(final: bool) -> list[Observation]:
            out: list[Observation] = []
            for line in tailer.read(final):
                out.extend(parser.parse_line(line))
            return out

        return read_log
    if config.kind == FILE and config.path:
        from tuner.metrics.paths import resolve_metrics_path

        path = resolve_metrics_path(config.path, trial_dir, dict(os.environ))
        if config.json:
            from tuner.metrics.file import JsonLinesCollector

            return JsonLinesCollector(path, metric_names).collect
        from tuner.metrics.stdout import TextFileCollector

        return TextFileCollector(path, metric_names, list(config.filters)).collect
    return None
