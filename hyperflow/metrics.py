"""The control plane's Prometheus metrics (``/metrics``).

Experiments and trials by phase are read from the store at scrape time (one GROUP BY
each), the trial queue from the slots; suggestion latency and API request latency are
histograms fed as things happen. The serving router keeps its own metrics on its port.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from tuner.scheduling import FairTrialQueue
from tuner.store import Store
from tuner.store.queries import count_by_phase
from tuner.types import ExperimentPhase, TrialPhase


class _StateCollector(Collector):
    def __init__(self, store: Store, slots: FairTrialQueue, ready: Callable[[], bool]) -> None:
        self.store = store
        self.slots = slots
        self.ready = ready

    def collect(self) -> Iterator[GaugeMetricFamily]:
        experiments, trials = count_by_phase(self.store)
        g = GaugeMetricFamily(
            "hyperflow_experiments", "Experiments in the store, by phase", labels=["phase"]
        )
        for phase in ExperimentPhase:
            g.add_metric([phase.value], experiments.get(phase.value, 0))
        yield g
        g = GaugeMetricFamily("hyperflow_trials", "Trials in the store, by phase", labels=["phase"])
        for trial_phase in TrialPhase:
            g.add_metric([trial_phase.value], trials.get(trial_phase.value, 0))
        yield g
        yield GaugeMetricFamily(
            "hyperflow_trial_queue_length",
            "Trials created and waiting for a free trial slot",
            value=self.slots.queued(),
        )
        yield GaugeMetricFamily(
            "hyperflow_trial_slots_in_use", "Trials holding a slot", value=self.slots.running()
        )
        yield GaugeMetricFamily(
            "hyperflow_trial_slots", "--max-running-trials", value=self.slots.capacity
        )


class ServerMetrics:
    def __init__(self, store: Store, slots: FairTrialQueue, ready: Callable[[], bool]) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_StateCollector(store, slots, ready))
        self.suggestion_seconds = Histogram(
            "hyperflow_suggestion_duration_seconds",
            "Time to get new trial assignments from the suggestion service",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.api_seconds = Histogram(
            "hyperflow_api_request_duration_seconds",
            "API request latency (until the response started), by route and status code",
            ["method", "route", "code"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
