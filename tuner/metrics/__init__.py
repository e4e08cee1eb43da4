"""Metrics collection: Katib's collector kinds, read incrementally per trial.

* ``StdOut`` — ``name=value`` lines of the trial's log (:mod:`tuner.metrics.stdout`).
* ``File`` — a file the trial writes, TEXT or JSON lines (:mod:`tuner.metrics.file`).
* ``Push`` — the trial calls ``tuner.report.report()``; observations arrive at a
  :class:`tuner.metrics.push.PushReceiver`, not through a collector.
* ``None`` — nothing is collected.

``TensorFlowEvent``, ``PrometheusMetric`` and ``Custom`` are not supported locally:
:func:`check_collector_supported` says so, for the controller to fail the experiment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuner.metrics.base import Collector, NullCollector
from tuner.metrics.lines import DEFAULT_METRICS_FORMAT, StdOutParser

if TYPE_CHECKING:
    from tuner.metrics.factory import check_collector_supported, make_collector


def __getattr__(name: str) -> Any:
    # The factory reads the experiment's spec (pydantic); the function-trial worker uses
    # the collectors without it.
    if name in ("check_collector_supported", "make_collector"):
        from tuner.metrics import factory

        return getattr(factory, name)
    raise AttributeError(f"module 'tuner.metrics' has no attribute {name!r}")


__all__ = [
    "DEFAULT_METRICS_FORMAT",
    "Collector",
    "NullCollector",
    "StdOutParser",
    "check_collector_supported",
    "make_collector",
]
