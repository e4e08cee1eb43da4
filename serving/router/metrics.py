"""Router metrics in Prometheus' text format, on a registry of the router's own.

Per-request work is one counter increment and one histogram observation on children
resolved once per (revision, status); gauges (in-flight, held, replicas, desired) are
read at scrape time by a collector, so they cost nothing per request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from serving.router.pool import RevisionPool

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0)


class _PoolCollector(Collector):
    def __init__(self, pools: Callable[[], Iterable[RevisionPool]]) -> None:
        self._pools = pools

    def collect(self) -> Iterator[Metric]:
        labels = ["namespace", "service", "revision"]
        gauges = {
            "in_flight": GaugeMetricFamily(
                "hyperflow_router_in_flight_requests",
                "Requests routed to the revision and not yet answered (held ones included).",
                labels=labels,
            ),
            "held": GaugeMetricFamily(
                "hyperflow_router_held_requests",
                "Requests held by the activator while the revision has no ready replica.",
                labels=labels,
            ),
            "ready": GaugeMetricFamily(
                "hyperflow_router_ready_replicas", "Ready replicas.", labels=labels
            ),
            "desired": GaugeMetricFamily(
                "hyperflow_router_desired_replicas", "Autoscaler's desired replicas.", labels=labels
            ),
        }
        for p in self._pools():
            lv = [p.namespace, p.service, p.revision]
            gauges["in_flight"].add_metric(lv, p.concurrency)
            gauges["held"].add_metric(lv, p.held)
            gauges["ready"].add_metric(lv, len(p.endpoints))
            gauges["desired"].add_metric(lv, p.desired)
        yield from gauges.values()


class RouterMetrics:
    def __init__(self, pools: Callable[[], Iterable[RevisionPool]]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "hyperflow_router_requests",
            "Requests answered by the router, by namespace, service, revision and HTTP status.",
            ["namespace", "service", "revision", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "hyperflow_router_request_duration_seconds",
            "Time from request received to response sent, through the router.",
            ["namespace", "service", "revision"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_PoolCollector(pools))
        self._count_children: dict[tuple[str, str, str, int], Counter] = {}
        self._latency_children: dict[tuple[str, str, str], Histogram] = {}

    def observe(
        self, namespace: str, service: str, revision: str, status: int, seconds: float
    ) -> None:
        key = (namespace, service, revision, status)
        c = self._count_children.get(key)
        if c is None:
            c = self._count_children[key] = self.requests.labels(
                namespace, service, revision, str(status)
            )
        c.inc()
        lkey = (namespace, service, revision)
        h = self._latency_children.get(lkey)
        if h is None:
            h = self._latency_children[lkey] = self.latency.labels(namespace, service, revision)
        h.observe(seconds)

    def forget(self, namespace: str, service: str, revision: str) -> None:
        """Drop a revision's request series (it was deleted: its labels must not pile up)."""
        for key in [k for k in self._count_children if k[:3] == (namespace, service, revision)]:
            self.requests.remove(*key[:3], str(key[3]))
            del self._count_children[key]
        if self._latency_children.pop((namespace, service, revision), None) is not None:
            self.latency.remove(namespace, service, revision)
