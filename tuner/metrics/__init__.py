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

from tuner.metrics.base import Collector, NullCollector
from tuner.metrics.factory import check_collector_supported, make_collector
from tuner.metrics.lines import DEFAULT_METRICS_FORMAT, StdOutParser

__all__ = [
    "DEFAULT_METRICS_FORMAT",
    "Collector",
    "NullCollector",
    "StdOutParser",
    "check_collector_supported",
    "make_collector",
]
