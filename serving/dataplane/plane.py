"""The data plane: V1/V2 semantics over a set of models, with no web framework in it.

The transport hands it decoded routing facts (model name, version, body bytes, headers)
and gets back bytes or a :class:`ServingError` carrying the HTTP status.

Two paths per request:
- **array fast path** for :class:`ArrayModel` runtimes: the body is parsed with orjson
  straight into numpy and ``predict_array`` gets the array (V1: ``instances``; V2 one
  input: that input's array; V2 several inputs: each reshaped to ``(rows, -1)`` and
  stacked column-wise in request order — all must have the same row count). Inputs must
  be numeric (V1 instances and V2 tensors alike; BYTES is a 400 naming the input). The output
  is one tensor ``output-0`` (V2) or ``{"predictions": [...]}`` (V1). Overridden
  ``preprocess``/``postprocess`` are called with the array. Batching applies here.
- **custom path** for any other :class:`Model`: ``preprocess -> predict -> postprocess``
  with a ``dict`` (V1) or an :class:`InferRequest` (V2); results are converted as KServe.

Model readiness: a model is ready when ``model.ready`` is true and it did not fail to
load; load errors are kept and shown in readiness bodies.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from serving.dataplane.batcher import Batcher
from serving.dataplane.metadata import derive_metadata, expected_features
from serving.dataplane.metrics import Metrics
from serving.dataplane.runner import PredictRunner
from serving.protocol import v1, v2
from serving.protocol.errors import (
    InferenceError,
    InvalidInput,
    ModelNotFound,
    ModelNotReady,
    ServerNotReady,
    ServingError,
)
from serving.protocol.infer_type import InferOutput, InferRequest, InferResponse
from serving.runtimes.base import ArrayModel, Model

log = logging.getLogger("serving.dataplane")

SERVER_NAME = "hyperflow"
SERVER_VERSION = "0.1.0"

_perf = time.perf_counter


def _overrides(model: Model, method: str, base: type) -> bool:
    return getattr(type(model), method) is not getattr(base, method)


class _Entry:
    """One served model: its state, runner, optional batcher, cached metadata."""

    def __init__(
        self,
        model: Model,
        *,
        batcher: Any | None,
        container_concurrency: int,
        inline: bool | None,
        metrics: Metrics,
    ) -> None:
        self.model = model
        self.name = model.name
        self.error: str | None = None
        self.loading = False
        self.is_array = isinstance(model, ArrayModel)
        self.runner = PredictRunner(
            inline=getattr(model, "inline_predict", inline),
            thread_safe=bool(getattr(model, "thread_safe", True)),
            concurrency=container_concurrency,
        )
        if self.is_array:
            self.predict_fn = (
                model.predict_array  # type: ignore[attr-defined]
                if not _overrides(model, "predict", ArrayModel)
                else model.predict
            )
            self.pre = model.preprocess if _overrides(model, "preprocess", Model) else None
            self.post = model.postprocess if _overrides(model, "postprocess", Model) else None
        self.batcher: Batcher | None = None
        if batcher is not None and self.is_array:
            size = int(getattr(batcher, "max_batch_size", None) or 32)
            latency_ms = getattr(batcher, "max_latency", None)
            latency = (5.0 if latency_ms is None else float(latency_ms)) / 1000.0
            self.batcher = Batcher(
                self._predict,
                max_batch_size=size,
                max_latency=latency,
                on_batch=lambda rows: metrics.observe_batch(self.name, rows),
            )
        self._meta: dict[str, Any] | None = None
        self.n_features: int | None = None

    async def _predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(await self.runner.run(self.predict_fn, x))

    @property
    def ready(self) -> bool:
        return self.error is None and bool(getattr(self.model, "ready", False))

    def metadata(self) -> dict[str, Any]:
        if self._meta is None:
            meta = derive_metadata(self.model)
            if not self.ready:
                return meta  # an unloaded estimator cannot tell its shape yet: don't cache
            self._meta = meta
            self.n_features = expected_features(meta) if self.is_array else None
        return self._meta


class DataPlane:
    """V1/V2 operations over the served models (see module docstring)."""

    def __init__(
        self,
        models: Sequence[Model],
        *,
        batcher: Any | None = None,
        container_concurrency: int = 0,
        inline: bool | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics or Metrics()
        self._entries: dict[str, _Entry] = {}
        for m in models:
            self._entries[m.name] = _Entry(
                m,
                batcher=batcher,
                container_concurrency=container_concurrency,
                inline=inline,
                metrics=self.metrics,
            )
            self.metrics.set_ready(m.name, self._entries[m.name].ready)

    @property
    def model_names(self) -> list[str]:
        return list(self._entries)

    def entry(self, name: str, version: str | None = None, *, need_ready: bool = True) -> _Entry:
        e = self._entries.get(name)
        if e is None:
            raise ModelNotFound(name)
        # A version the model's metadata does not list is unknown (none when it lists
        # none: the OIP's versions are those "that may be explicitly requested").
        if version is not None and version not in e.metadata()["versions"]:
            raise ModelNotFound(name, version)
        if need_ready and not e.ready:
            raise ModelNotReady(self._not_ready_reason(e), extra={"name": name, "ready": False})
        return e

    def _not_ready_reason(self, e: _Entry) -> str:
        if e.error is not None:
            return f"model {e.name!r} failed to load: {e.error}"
        return f"model {e.name!r} is not ready (loading)"

    # -- lifecycle ---------------------------------------------------------------------

    def load_all(self) -> None:
        """Load every model not yet ready (blocking: call from a thread). Never raises;
        a failure is logged and kept as the model's not-ready reason."""
        for e in self._entries.values():
            if e.ready:
                continue
            e.loading, e.error = True, None
            t0 = _perf()
            try:
                ok = e.model.load()
                if ok is False or not getattr(e.model, "ready", False):
                    e.error = "load() returned without setting the model ready"
            except Exception as exc:
                e.error = f"{type(exc).__name__}: {exc}"
                log.exception("model %s failed to load", e.name)
            finally:
                e.loading = False
            if e.error is None:
                log.info("model %s loaded in %.3fs", e.name, _perf() - t0)
            self.metrics.set_ready(e.name, e.ready)

    def close(self) -> None:
        for e in self._entries.values():
            e.runner.close()

    # -- health and metadata -------------------------------------------------------------

    def live(self) -> dict[str, Any]:
        return {"live": True}

    def ready(self) -> dict[str, Any]:
        not_ready = [e for e in self._entries.values() if not e.ready]
        if not_ready:
            raise ServerNotReady(
                "; ".join(self._not_ready_reason(e) for e in not_ready), extra={"ready": False}
            )
        return {"ready": True}

    def server_metadata(self) -> dict[str, Any]:
        return {"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": list(v2.EXTENSIONS)}

    def model_metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        e = self.entry(name, version, need_ready=False)
        return {"name": name, **e.metadata()}

    def model_ready(self, name: str, version: str | None = None) -> dict[str, Any]:
        self.entry(name, version, need_ready=True)
        return {"name": name, "ready": True}

    def v1_list_models(self) -> dict[str, Any]:
        return {"models": self.model_names}

    def v1_model_status(self, name: str) -> dict[str, Any]:
        return self.model_ready(name)

    # -- inference -----------------------------------------------------------------------

    async def infer_v2(
        self,
        name: str,
        version: str | None,
        body: bytes,
        header_length: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[bytes, int | None]:
        """Run a V2 inference; returns the body and the JSON header length if binary."""
        e = self.entry(name, version)
        t0 = _perf()
        request = v2.decode_infer_request(body, header_length, name, version)
        if e.is_array:
            x = self._array_of(e, request)
            if e.pre is not None:
                x = await self._call(e, e.pre, x, headers)
            t1 = _perf()
            y = await self._predict_array(e, x)
            t2 = _perf()
            if e.post is not None:
                y = await self._call(e, e.post, y, headers)
            response = InferResponse([InferOutput.from_numpy("output-0", np.asarray(y))], name)
        else:
            payload = await self._call(e, e.model.preprocess, request, headers)
            t1 = _perf()
            result = await self._call(e, e.model.predict, payload, headers)
            t2 = _perf()
            result = await self._call(e, e.model.postprocess, result, headers)
            response = self._as_response(result, name)
        out = v2.encode_infer_response(response, request)
        self.metrics.observe_verbs(name, t1 - t0, t2 - t1, _perf() - t2)
        return out

    async def predict_v1(
        self, name: str, body: bytes, headers: dict[str, str] | None = None
    ) -> bytes:
        """Run a V1 ``:predict``; returns the JSON body."""
        e = self.entry(name)
        t0 = _perf()
        payload = v1.decode_predict_request(body)
        if e.is_array:
            x = v1.instances_array(payload)
            self._check_features(e, x)
            if e.pre is not None:
                x = await self._call(e, e.pre, x, headers)
            t1 = _perf()
            y = await self._predict_array(e, x)
            t2 = _perf()
            if e.post is not None:
                y = await self._call(e, e.post, y, headers)
            result: Any = {"predictions": np.asarray(y)}
        else:
            payload = await self._call(e, e.model.preprocess, payload, headers)
            t1 = _perf()
            result = await self._call(e, e.model.predict, payload, headers)
            t2 = _perf()
            result = await self._call(e, e.model.postprocess, result, headers)
            if isinstance(result, InferResponse):
                raise InferenceError("a V1 request got a V2 InferResponse from the model")
        out = v1.encode_predict_response(result)
        self.metrics.observe_verbs(name, t1 - t0, t2 - t1, _perf() - t2)
        return out

    # -- helpers -------------------------------------------------------------------------

    def _array_of(self, e: _Entry, request: InferRequest) -> np.ndarray:
        inputs = request.inputs
        for inp in inputs:
            # As V1's instances: array runtimes predict on numbers. Strings would fail
            # inside the model ("could not convert string to float"): the request's fault.
            if inp.datatype == "BYTES":
                raise InvalidInput(
                    f"input {inp.name!r}: model {e.name!r} takes numeric tensors; BYTES data "
                    "cannot be used (send BOOL, INT*, UINT* or FP* data)"
                )
        if len(inputs) == 1:
            x = inputs[0].as_numpy()
        else:
            arrays = [i.as_numpy() for i in inputs]
            rows = {a.shape[0] if a.ndim else 1 for a in arrays}
            if len(rows) != 1:
                raise InvalidInput(
                    f"inputs have different row counts {sorted(rows)}; an array model "
                    "stacks several inputs column-wise"
                )
            n = rows.pop()
            if n == 0:  # reshape(0, -1) cannot infer the columns
                raise InvalidInput("the inputs have no rows to predict")
            x = np.hstack([a.reshape(n, -1) for a in arrays])
        if x.ndim >= 1 and x.shape[0] == 0:
            raise InvalidInput("the input has no rows to predict")
        self._check_features(e, x)
        return x

    def _check_features(self, e: _Entry, x: np.ndarray) -> None:
        if e._meta is None:
            e.metadata()
        n = e.n_features
        if n is not None and (x.ndim != 2 or x.shape[1] != n):
            raise InvalidInput(
                f"model {e.name!r} expects input shape [-1, {n}], got {list(x.shape)}"
            )

    async def _predict_array(self, e: _Entry, x: np.ndarray) -> np.ndarray:
        try:
            if e.batcher is not None and x.ndim >= 1:
                return await e.batcher.submit(x)
            return await e._predict(x)
        except ServingError:
            raise
        except Exception as exc:
            log.exception("predict failed for model %s", e.name)
            raise InferenceError(f"{type(exc).__name__}: {exc}") from exc

    async def _call(self, e: _Entry, fn: Any, payload: Any, headers: dict[str, str] | None) -> Any:
        try:
            if inspect.iscoroutinefunction(fn):
                return await fn(payload, headers)
            return await e.runner.run(fn, payload, headers)
        except ServingError:
            raise
        except Exception as exc:
            log.exception("model %s raised", e.name)
            raise InferenceError(f"{type(exc).__name__}: {exc}") from exc

    def _as_response(self, result: Any, name: str) -> InferResponse:
        try:
            return v2.to_infer_response(result, name)
        except ServingError:
            raise
        except Exception as exc:
            raise InferenceError(f"cannot convert the model's result: {exc}") from exc
