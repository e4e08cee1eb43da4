"""Choosing a trial's collector from the experiment's ``metricsCollectorSpec``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from tuner.metrics.base import Collector, NullCollector
from tuner.metrics.file import JsonLinesCollector
from tuner.metrics.lines import compile_filters
from tuner.metrics.paths import resolve_metrics_path
from tuner.metrics.stdout import StdOutCollector, TextFileCollector
from tuner.spec.models import (
    FileFormat,
    FileSystemKind,
    MetricsCollectorKind,
    MetricsCollectorSpec,
)

_LOCAL_KINDS = {
    MetricsCollectorKind.STDOUT,
    MetricsCollectorKind.FILE,
    MetricsCollectorKind.PUSH,
    MetricsCollectorKind.NONE,
}


def check_collector_supported(spec: MetricsCollectorSpec) -> str | None:
    """Why ``spec`` cannot be collected locally (an error message), or None if it can."""
    kind = spec.collector.kind
    if kind not in _LOCAL_KINDS:
        return (
            f"metrics collector kind {kind.value} is not supported by local trials; "
            "use StdOut, File, Push or None"
        )
    source = spec.source
    if kind is MetricsCollectorKind.FILE:
        path = source.file_system_path if source else None
        if path is None or not path.path:
            return "metrics collector kind File needs source.fileSystemPath.path"
        if path.kind is not FileSystemKind.FILE:
            return (
                "metrics collector kind File needs source.fileSystemPath.kind File, not Directory"
            )
    if kind in (MetricsCollectorKind.STDOUT, MetricsCollectorKind.FILE):
        try:
            compile_filters(metrics_filters(spec))
        except ValueError as exc:
            return str(exc)
    return None


def make_collector(
    spec: MetricsCollectorSpec,
    *,
    log_path: Path,
    trial_dir: Path,
    metric_names: Sequence[str],
    env: Mapping[str, str] | None = None,
) -> Collector:
    """The collector for one trial.

    ``log_path`` is the trial's combined stdout/stderr (StdOut). A File path expands
    ``$VAR``s from ``env`` and, when relative, is resolved in ``trial_dir``. Raises
    ``ValueError`` with :func:`check_collector_supported`'s message for what it rejects.
    """
    problem = check_collector_supported(spec)
    if problem:
        raise ValueError(problem)
    kind = spec.collector.kind
    if kind is MetricsCollectorKind.STDOUT:
        return StdOutCollector(log_path, metric_names, metrics_filters(spec))
    if kind is MetricsCollectorKind.FILE:
        fs = spec.source.file_system_path if spec.source else None
        assert fs is not None  # checked above
        path = resolve_metrics_path(fs.path, trial_dir, env)
        if fs.format is FileFormat.JSON:
            return JsonLinesCollector(path, metric_names)
        return TextFileCollector(path, metric_names, metrics_filters(spec))
    return NullCollector()


__all__ = [
    "check_collector_supported",
    "make_collector",
    "metrics_filters",
    "resolve_metrics_path",
]


def metrics_filters(spec: MetricsCollectorSpec) -> list[str]:
    source = spec.source
    if source is None or source.filter is None:
        return []
    return list(source.filter.metrics_format)
