"""The batcher: concurrent requests become fewer predict calls; each caller gets its rows."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import httpx
import numpy as np
import pytest

from serving.dataplane.batcher import Batcher
from serving.server import create_app
from tests.serving.test_dataplane_support import CountingModel, run


def _row(i: int) -> list[float]:
    return [float(i), float(i) * 10, 1.0]


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_sixteen_concurrent_requests_are_batched(protocol: str) -> None:
    model = CountingModel("counter")
    model.load()
    app = create_app(model, batcher=SimpleNamespace(max_batch_size=64, max_latency=50))

    async def one(c: httpx.AsyncClient, i: int) -> float:
        rows = [_row(i), _row(i + 100)]
        if protocol == "v1":
            r = await c.post("/v1/models/counter:predict", json={"instances": rows})
            assert r.status_code == 200, r.text
            preds = r.json()["predictions"]
        else:
            body = {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP64", "data": rows}]}
            r = await c.post("/v2/models/counter/infer", json=body)
            assert r.status_code == 200, r.text
            (out,) = r.json()["outputs"]
            assert out["shape"] == [2]
            preds = out["data"]
        assert preds == [sum(rows[0]), sum(rows[1])]
        return preds[0]

    async def go(c: httpx.AsyncClient) -> list[float]:
        return await asyncio.gather(*(one(c, i) for i in range(16)))

    results = run(go, app)
    assert results == [sum(_row(i)) for i in range(16)]
    assert sum(model.calls) == 32
    assert len(model.calls) < 16, model.calls


def test_batch_closes_at_max_batch_size_and_after_max_latency() -> None:
    calls: list[int] = []

    async def predict(x: np.ndarray) -> np.ndarray:
        calls.append(x.shape[0])
        return x * 2

    async def go() -> None:
        b = Batcher(predict, max_batch_size=4, max_latency=10.0)  # latency never reached
        outs = await asyncio.gather(*(b.submit(np.array([[i]])) for i in range(8)))
        assert [o.tolist() for o in outs] == [[[2 * i]] for i in range(8)]
        assert calls == [4, 4]
        calls.clear()
        b = Batcher(predict, max_batch_size=100, max_latency=0.01)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        out = await b.submit(np.array([[1], [2]]))
        assert out.tolist() == [[2], [4]] and calls == [2]
        assert loop.time() - t0 >= 0.009

    asyncio.run(go())


def test_mismatched_shapes_and_errors_reach_every_caller() -> None:
    async def predict(x: np.ndarray) -> np.ndarray:
        if (x < 0).any():
            raise RuntimeError("negative")
        return x.sum(axis=1)

    async def go() -> None:
        b = Batcher(predict, max_batch_size=100, max_latency=0.005)
        a, c = await asyncio.gather(b.submit(np.ones((1, 2))), b.submit(np.ones((2, 3))))
        assert a.tolist() == [2.0] and c.tolist() == [3.0, 3.0]
        res = await asyncio.gather(
            b.submit(np.ones((1, 2))), b.submit(-np.ones((1, 2))), return_exceptions=True
        )
        assert all(isinstance(r, RuntimeError) for r in res)

    asyncio.run(go())
