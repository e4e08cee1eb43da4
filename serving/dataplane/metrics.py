"""Prometheus metrics of one model server, in its own registry (served at ``/metrics``).

Names: KServe's per-verb histograms (``request_preprocess_seconds``,
``request_predict_seconds``, ``request_postprocess_seconds``, label ``model_name``) so
existing dashboards work, plus ``hyperflow_requests_total{model,protocol,code}``,
``hyperflow_request_duration_seconds{model,protocol}``,
``hyperflow_inflight_requests{model}``, ``hyperflow_model_ready{model}`` and
``hyperflow_batch_size{model}`` (rows per predict call when batching).
Label children are cached so a request costs a few dict lookups and observations.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

_LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """The server's metric families and cheap, cached observation helpers."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "hyperflow_requests",
            "Inference requests by model, protocol and HTTP status code.",
            ["model", "protocol", "code"],
            registry=r,
        )
        self.duration = Histogram(
            "hyperflow_request_duration_seconds",
            "Inference request latency, body read to response sent.",
            ["model", "protocol"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.inflight = Gauge(
            "hyperflow_inflight_requests",
            "Inference requests currently being handled.",
            ["model"],
            registry=r,
        )
        self.ready = Gauge(
            "hyperflow_model_ready", "1 when the model is loaded and ready.", ["model"], registry=r
        )
        self.batch_size = Histogram(
            "hyperflow_batch_size",
            "Rows per predict call when the batcher is on.",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self._verbs = {
            verb: Histogram(
                f"request_{verb}_seconds",
                f"Time spent in {verb} (KServe-compatible).",
                ["model_name"],
                buckets=_LATENCY_BUCKETS,
                registry=r,
            )
            for verb in ("preprocess", "predict", "postprocess")
        }
        self._cache: dict[tuple[Any, ...], Any] = {}

    def _child(self, key: tuple[Any, ...]) -> Any:
        child = self._cache.get(key)
        if child is None:
            family = key[0]
            child = self._cache[key] = family.labels(*key[1:])
        return child

    def observe_verbs(self, model: str, pre: float, predict: float, post: float) -> None:
        v = self._verbs
        self._child((v["preprocess"], model)).observe(pre)
        self._child((v["predict"], model)).observe(predict)
        self._child((v["postprocess"], model)).observe(post)

    def observe_request(self, model: str, protocol: str, code: int, seconds: float) -> None:
        self._child((self.requests, model, protocol, str(code))).inc()
        self._child((self.duration, model, protocol)).observe(seconds)

    def inflight_child(self, model: str) -> Any:
        return self._child((self.inflight, model))

    def observe_batch(self, model: str, rows: int) -> None:
        self._child((self.batch_size, model)).observe(rows)

    def set_ready(self, model: str, ready: bool) -> None:
        self._child((self.ready, model)).set(1.0 if ready else 0.0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
