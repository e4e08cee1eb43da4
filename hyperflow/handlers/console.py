"""The web UI's view of inference services: their request rate, latency p50/p99 and
replicas over time (sampled from the serving router's own metrics), and "try it" (one
V1 or V2 request sent through the router on the caller's behalf).

Services themselves are the inference-service handlers' (``plane.inferenceservices``):
this module only reads a service through them (so the caller's namespace check applies).
The router labels its series by namespace and service; a service's model is named as the
service (``/v2/models/NAME``), under ``/serving/NS/NAME`` outside the default namespace.
"""

from __future__ import annotations

import collections
import itertools
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from hyperflow.handlers.auth import Caller
from hyperflow.handlers.errors import BadRequest, Unavailable

log = logging.getLogger(__name__)

SAMPLE_SECONDS = 5.0
KEEP = 720  # one hour of samples
# A reader asking more than this after the last sample gets a fresh one first (the page
# polls every SAMPLE_SECONDS: it sees its latest interval, not one up to 5 s old).
FRESH_SECONDS = 1.0


@dataclass(slots=True)
class _Sample:
    time: float
    requests: float
    errors: float
    buckets: dict[float, float]
    ready: float
    desired: float
    in_flight: float


@dataclass
class _Series:
    samples: collections.deque[_Sample] = field(
        default_factory=lambda: collections.deque(maxlen=KEEP)
    )


def read_router(router: Any) -> dict[tuple[str, str], _Sample]:
    """Totals per (namespace, service) over its revisions, from the router's metrics."""
    now = time.time()
    out: dict[tuple[str, str], _Sample] = {}

    def sample(key: tuple[str, str]) -> _Sample:
        if key not in out:
            out[key] = _Sample(now, 0.0, 0.0, {}, 0.0, 0.0, 0.0)
        return out[key]

    for family in router.metrics.registry.collect():
        for s in family.samples:
            name = s.labels.get("service")
            if name is None:
                continue
            service = (s.labels.get("namespace", "default"), name)
            if s.name == "hyperflow_router_requests_total":
                one = sample(service)
                one.requests += s.value
                if s.labels.get("code", "").startswith("5"):
                    one.errors += s.value
            elif s.name == "hyperflow_router_request_duration_seconds_bucket":
                le = float(s.labels["le"])
                buckets = sample(service).buckets
                buckets[le] = buckets.get(le, 0.0) + s.value
            elif s.name == "hyperflow_router_ready_replicas":
                sample(service).ready += s.value
            elif s.name == "hyperflow_router_desired_replicas":
                sample(service).desired += s.value
            elif s.name == "hyperflow_router_in_flight_requests":
                sample(service).in_flight += s.value
    return out


def quantile(q: float, before: dict[float, float], after: dict[float, float]) -> float | None:
    """The q-quantile of the observations between two cumulative histogram samples,
    interpolated within the bucket as Prometheus' histogram_quantile does."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return None
    rank = q * counts[-1]
    lower, below = 0.0, 0.0
    for bound, cumulative in zip(bounds, counts, strict=True):
        if cumulative >= rank:
            if bound == float("inf"):
                return lower
            inside = cumulative - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, cumulative
    return lower


class ServiceConsole:
    """Samples the router every :data:`SAMPLE_SECONDS` (from the first request on) and
    answers the UI's per-service questions through the inference-service handlers."""

    def __init__(self, plane: Any) -> None:
        self.plane = plane
        self._series: dict[tuple[str, str], _Series] = collections.defaultdict(_Series)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last = 0.0

    def service(self, caller: Caller, namespace: str, name: str) -> dict[str, Any]:
        """The InferenceService, read through its handlers (the namespace check, 404)."""
        return self.plane.inferenceservices.get(caller, namespace, name)

    # -- metrics over time -----------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="service-metrics", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()

    def sample_now(self) -> None:
        router = getattr(self.plane, "router", None)
        if router is None:
            return
        samples = read_router(router)
        with self._lock:
            self._last = time.time()
            for service, sample in samples.items():
                self._series[service].samples.append(sample)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample_now()
            except Exception:  # a scrape failing once must not end the sampling
                log.warning("sampling the router's metrics failed", exc_info=True)
            self._stop.wait(SAMPLE_SECONDS)

    def metrics(self, caller: Caller, namespace: str, name: str) -> dict[str, Any]:
        """Per sampling interval: request rate (1/s), error rate, latency p50 and p99
        (seconds) and ready/desired replicas, for the last hour at most."""
        self.service(caller, namespace, name)
        self.start()
        if time.time() - self._last > FRESH_SECONDS:
            self.sample_now()
        key = (namespace, name)
        with self._lock:
            samples = list(self._series[key].samples) if key in self._series else []
        out: dict[str, list[Any]] = {
            k: [] for k in ("time", "rate", "errors", "p50", "p99", "ready", "desired", "inFlight")
        }
        for before, after in itertools.pairwise(samples):
            span = after.time - before.time
            if span <= 0:
                continue
            out["time"].append(after.time)
            out["rate"].append(max(0.0, after.requests - before.requests) / span)
            out["errors"].append(max(0.0, after.errors - before.errors) / span)
            out["p50"].append(quantile(0.5, before.buckets, after.buckets))
            out["p99"].append(quantile(0.99, before.buckets, after.buckets))
            out["ready"].append(after.ready)
            out["desired"].append(after.desired)
            out["inFlight"].append(after.in_flight)
        return {"model": name, "intervalSeconds": SAMPLE_SECONDS, **out}

    # -- try it ------------------------------------------------------------------------

    def try_example(
        self, caller: Caller, namespace: str, name: str, token: str | None
    ) -> dict[str, Any]:
        """A request to start "try it" with, in the service's protocol: shaped as the
        model's V2 metadata states its inputs (zeros), or an iris flower when the model
        takes four features or does not say."""
        import httpx

        obj = self.service(caller, namespace, name)
        protocol = _protocol(obj)
        inputs = None
        # Only a service with a ready replica is asked: a request would wake one scaled to
        # zero (looking at its page kept it awake, and waited for its cold start).
        state = self.plane.services.state(namespace, name)
        if state is not None and any(r.ready for r in state.revisions):
            url = self.plane.services.base_url(namespace, name) + f"/v2/models/{name}"
            headers = {"authorization": f"Bearer {token}"} if token else {}
            try:
                response = httpx.get(url, headers=headers, timeout=10.0)
                inputs = response.json().get("inputs") if response.status_code == 200 else None
            except (httpx.HTTPError, ValueError, AttributeError):
                inputs = None
        return {"protocol": protocol, "body": example_request(protocol, inputs)}

    def try_request(
        self, caller: Caller, namespace: str, name: str, body: Any, token: str | None
    ) -> dict[str, Any]:
        """Send ``body`` to the service through the router: V1 ``/v1/models/NAME:predict``
        or V2 ``/v2/models/NAME/infer``, as the body is shaped (``instances``, or
        ``inputs`` as a list of tensors: every local model serves both), else in the
        service's protocol. Answers the router's status and body, whatever they are."""
        import httpx

        obj = self.service(caller, namespace, name)
        if not isinstance(body, dict):
            raise BadRequest("the request must be a JSON object")
        protocol = _body_protocol(body) or _protocol(obj)
        path = f"/v1/models/{name}:predict" if protocol == "v1" else f"/v2/models/{name}/infer"
        url = self.plane.services.base_url(namespace, name) + path
        headers = {"authorization": f"Bearer {token}"} if token else {}
        started = time.perf_counter()
        try:
            response = httpx.post(url, json=body, headers=headers, timeout=60.0)
        except httpx.HTTPError as exc:
            raise Unavailable(f"the serving router did not answer: {exc}") from None
        elapsed = time.perf_counter() - started
        try:
            answer: Any = response.json()
        except ValueError:
            answer = response.text
        from urllib.parse import urlsplit

        return {
            "protocol": protocol,
            # The path on the serving port as it was sent (with /serving/NAMESPACE for a
            # service outside "default"), so that it can be copied into a curl command.
            "path": urlsplit(url).path,
            "status": response.status_code,
            "seconds": elapsed,
            "body": answer,
        }


def _body_protocol(body: dict[str, Any]) -> str | None:
    """``v1`` for a V1 request (``instances``), ``v2`` for a V2 one (``inputs``: a list of
    tensor objects; V1's own ``inputs`` is columnar data), else None."""
    inputs = body.get("inputs")
    if isinstance(inputs, list) and inputs and all(isinstance(t, dict) for t in inputs):
        return "v2"
    if "instances" in body:
        return "v1"
    return None


def _protocol(obj: dict[str, Any]) -> str:
    """``v1`` or ``v2``: spec.predictor.model.protocolVersion, or in the legacy
    per-framework form (``spec.predictor.sklearn.protocolVersion``); unset, KServe's
    default v1 (what ``serve validate`` says too). ``grpc-v2`` is tried over V2's REST."""
    predictor = ((obj.get("spec") or {}).get("predictor")) or {}
    given = [v.get("protocolVersion") for v in predictor.values() if isinstance(v, dict)]
    protocol = str(next((p for p in given if p), "v1")).lower()
    return "v1" if protocol == "v1" else "v2"


# An iris flower (setosa): what the examples' models take, and the example when a model
# states no inputs.
_IRIS = [5.1, 3.5, 1.4, 0.2]


def _zero(datatype: str) -> Any:
    if datatype == "BOOL":
        return False
    if datatype == "BYTES":
        return ""
    return 0 if "INT" in datatype else 0.0


def example_request(protocol: str, inputs: Any) -> dict[str, Any]:
    """A request of ``protocol`` for a model whose V2 metadata lists ``inputs``."""
    tensors = inputs if isinstance(inputs, list) and inputs else None
    shapes: list[list[int]] = []
    for tensor in tensors or []:
        shape = tensor.get("shape") if isinstance(tensor, dict) else None
        if not isinstance(shape, list) or not all(isinstance(d, int) for d in shape):
            tensors = None
            break
        shapes.append([1 if d < 0 else d for d in shape])
    if tensors is None or shapes == [[1, 4]] or sum(math.prod(s) for s in shapes) > 10_000:
        if protocol == "v1":
            return {"instances": [_IRIS]}
        return {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": _IRIS}]}
    if protocol == "v1":
        if len(shapes) == 1 and len(shapes[0]) == 2:
            return {"instances": [[0.0] * shapes[0][1]] * shapes[0][0]}
        return {"instances": [_IRIS]}
    return {
        "inputs": [
            {
                "name": str(tensor.get("name") or f"input-{i}"),
                "shape": shape,
                "datatype": str(tensor.get("datatype") or "FP64"),
                "data": [_zero(str(tensor.get("datatype") or "FP64"))] * math.prod(shape),
            }
            for i, (tensor, shape) in enumerate(zip(tensors, shapes, strict=True))
        ]
    }
