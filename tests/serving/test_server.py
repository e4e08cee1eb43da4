"""The model server on a real socket (uvicorn in a thread): a slow predict never blocks
health or other requests; containerConcurrency; metrics; the inline/offload policy."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
import numpy as np
import uvicorn

from serving.dataplane.runner import PredictRunner
from serving.runtimes.base import ArrayModel
from serving.server import create_app
from tests.serving.test_dataplane_support import SklearnModel, SlowModel, loaded, run
from tests.util import free_port, wait_http_ok, wait_until


@contextmanager
def serving(app: Any) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http_ok(f"{base}/v2/health/live", timeout=20)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_slow_predict_does_not_block_health_or_metadata() -> None:
    model = loaded(SlowModel("slow"))
    app = create_app(model)
    body = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}
    with serving(app) as base, ThreadPoolExecutor(2) as pool:
        slow = pool.submit(httpx.post, f"{base}/v2/models/slow/infer", json=body, timeout=60)
        try:
            wait_until(model.started.is_set, timeout=30)
            # The predict is blocked until released: a blocked event loop would leave
            # these unanswered (a read timeout), however fast or slow the machine is.
            with httpx.Client(base_url=base, timeout=10) as c:
                for url in (
                    "/v2/health/live",
                    "/v2/health/ready",
                    "/v2/models/slow",
                    "/v2/models/slow/ready",
                ):
                    r = c.get(url)
                    assert r.status_code == 200, url
            assert not slow.done()
        finally:
            model.release.set()
        assert slow.result().status_code == 200


class _Tracking(ArrayModel):
    def __init__(self) -> None:
        super().__init__("track")
        self.active = 0
        self.peak = 0
        self._lock = threading.Lock()

    def predict_array(self, inputs: np.ndarray) -> np.ndarray:
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(0.05)
        with self._lock:
            self.active -= 1
        return inputs


def test_container_concurrency_bounds_concurrent_predicts() -> None:
    model = _Tracking()
    model.load()
    app = create_app(model, container_concurrency=2)
    body = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}

    async def go(c: httpx.AsyncClient) -> None:
        rs = await asyncio.gather(*(c.post("/v2/models/track/infer", json=body) for _ in range(6)))
        assert all(r.status_code == 200 for r in rs)

    run(go, app)
    assert model.peak == 2


def test_metrics_exposed() -> None:
    app = create_app(loaded(SklearnModel("iris")))
    body = {
        "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.0, 3.4, 1.5, 0.2]}]
    }

    async def go(c: httpx.AsyncClient) -> str:
        for _ in range(3):
            assert (await c.post("/v2/models/iris/infer", json=body)).status_code == 200
        assert (
            await c.post("/v1/models/iris:predict", json={"instances": [[1, 2, 3, 4]]})
        ).status_code == 200
        assert (await c.post("/v2/models/iris/infer", content=b"{")).status_code == 400
        r = await c.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        return r.text

    text = run(go, app)
    assert 'hyperflow_requests_total{code="200",model="iris",protocol="v2"} 3.0' in text
    assert 'hyperflow_requests_total{code="400",model="iris",protocol="v2"} 1.0' in text
    assert 'hyperflow_requests_total{code="200",model="iris",protocol="v1"} 1.0' in text
    assert 'hyperflow_request_duration_seconds_count{model="iris",protocol="v2"} 4.0' in text
    assert 'request_predict_seconds_count{model_name="iris"} 4.0' in text
    assert 'request_preprocess_seconds_count{model_name="iris"} 4.0' in text
    assert 'hyperflow_model_ready{model="iris"} 1.0' in text
    assert 'hyperflow_inflight_requests{model="iris"} 0.0' in text


def test_runner_goes_inline_for_fast_calls_and_back_for_slow_ones() -> None:
    async def go() -> None:
        r = PredictRunner(warmup=4, inline_below=0.01, offload_above=0.02)
        assert not r.inline
        caller = threading.get_ident()
        threads = [await r.run(lambda: threading.get_ident()) for _ in range(4)]
        assert all(t != caller for t in threads)
        assert r.inline
        assert await r.run(lambda: threading.get_ident()) == caller
        await r.run(time.sleep, 0.03)  # one slow inline call ...
        assert not r.inline  # ... sends the model back to the pool
        assert await r.run(lambda: threading.get_ident()) != caller
        fixed = PredictRunner(inline=False, warmup=1, inline_below=1.0)
        for _ in range(3):
            await fixed.run(lambda: None)
        assert not fixed.inline
        unsafe = PredictRunner(inline=True, thread_safe=False)
        assert not unsafe.inline
        for x in (r, fixed, unsafe):
            x.close()

    asyncio.run(go())
