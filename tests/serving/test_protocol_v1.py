"""V1 protocol (KServe's shapes) over the in-process ASGI app."""

from __future__ import annotations

from typing import Any

import httpx

from serving.server import create_app
from tests.serving.test_dataplane_support import EchoModel, SklearnModel, loaded, run

ROWS = [[5.0, 3.4, 1.5, 0.2], [6.3, 3.3, 6.0, 2.5]]


def test_v1_list_status_and_predict() -> None:
    app = create_app([loaded(SklearnModel("iris")), loaded(EchoModel("echo"))])

    async def go(c: httpx.AsyncClient) -> None:
        assert (await c.get("/v1/models")).json() == {"models": ["iris", "echo"]}
        assert (await c.get("/v1/models/iris")).json() == {"name": "iris", "ready": True}
        for key in ("instances", "inputs"):
            r = await c.post("/v1/models/iris:predict", json={key: ROWS})
            assert r.status_code == 200, r.text
            assert r.json() == {"predictions": [0, 2]}
        # Custom models get the dict and their dict answer is returned as-is.
        r = await c.post("/v1/models/echo:predict", json={"instances": [{"a": 1}, "x"]})
        assert r.json() == {"predictions": [{"a": 1}, "x"], "echo": True}

    run(go, app)


def test_v1_errors() -> None:
    app = create_app(loaded(SklearnModel("iris")))
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"content": b"{oops"}, 400, "malformed JSON"),
        ({"json": {"rows": ROWS}}, 400, "instances"),
        ({"json": {"instances": 5}}, 400, "list"),
        ({"json": {"instances": [[1.0, 2.0], [3.0]]}}, 400, "rectangular"),
        ({"json": {"instances": [["a", "b", "c", "d"]]}}, 400, "numeric"),
        ({"json": {"instances": [[1.0, 2.0, 3.0]]}}, 400, "[-1, 4]"),
        ({"content": b"{}", "headers": {"Content-Type": "text/csv"}}, 415, "Content-Type"),
    ]

    async def go(c: httpx.AsyncClient) -> None:
        for kw, status, needle in cases:
            r = await c.post("/v1/models/iris:predict", **kw)
            assert r.status_code == status, (kw, r.text)
            assert needle in r.json()["error"]
        # V1 has no binary extension: the 415 does not send the client to its header.
        r = await c.post(
            "/v1/models/iris:predict",
            content=b"{}",
            headers={
                "Content-Type": "application/octet-stream",
                "Inference-Header-Content-Length": "2",
            },
        )
        assert r.status_code == 415 and "V1 :predict takes application/json" in r.json()["error"]
        r = await c.post("/v1/models/nope:predict", json={"instances": ROWS})
        assert r.status_code == 404
        assert (await c.get("/v1/models/nope")).status_code == 404
        assert (await c.get("/v1/models/iris:predict")).status_code == 405
        # No explainer: KServe's 501 (a model that exists), 404 for one that does not.
        r = await c.post("/v1/models/iris:explain", json={})
        assert r.status_code == 501 and "explainer" in r.json()["error"]
        assert (await c.post("/v1/models/nope:explain", json={})).status_code == 404
        assert (await c.post("/v1/models/iris:train", json={})).status_code == 404
        r = await c.post("/v1/models/iris:predict", json={"instances": ROWS})
        assert r.json() == {"predictions": [0, 2]}

    run(go, app)
