"""V2 Open Inference Protocol over the in-process ASGI app: endpoints, datatypes, shapes,
outputs, parameters, the binary tensor data extension and every error path."""

from __future__ import annotations

import struct
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from serving.protocol.datatypes import DTYPES
from serving.server import create_app
from tests.serving.test_dataplane_support import (
    BrokenPredictModel,
    EchoModel,
    FailingModel,
    SklearnModel,
    loaded,
    run,
)


@pytest.fixture(scope="module")
def iris_app() -> Any:
    return create_app(loaded(SklearnModel("iris")))


@pytest.fixture(scope="module")
def echo_app() -> Any:
    return create_app(loaded(EchoModel("echo")))


def _get(app: Any, url: str) -> httpx.Response:
    return run(lambda c: c.get(url), app)


def _post(app: Any, url: str, **kw: Any) -> httpx.Response:
    return run(lambda c: c.post(url, **kw), app)


def test_health_and_server_metadata(iris_app: Any) -> None:
    assert _get(iris_app, "/v2/health/live").json() == {"live": True}
    assert _get(iris_app, "/v2/health/ready").json() == {"ready": True}
    meta = _get(iris_app, "/v2").json()
    assert meta["name"] == "hyperflow" and "binary_tensor_data" in meta["extensions"]
    assert isinstance(meta["version"], str)


def test_model_metadata_derived_from_sklearn(iris_app: Any) -> None:
    r = _get(iris_app, "/v2/models/iris")
    assert r.status_code == 200, r.text
    m = r.json()
    assert m["name"] == "iris" and m["platform"] == "sklearn" and m["versions"] == []
    assert m["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
    assert m["outputs"] == [{"name": "output-0", "datatype": "INT64", "shape": [-1]}]
    assert _get(iris_app, "/v2/models/iris/ready").json() == {"name": "iris", "ready": True}
    # No versions listed: none "may be explicitly requested" (the protocol's words).
    for url in ("/v2/models/iris/versions/1", "/v2/models/iris/versions/3/ready"):
        r = _get(iris_app, url)
        assert r.status_code == 404 and "version '" in r.json()["error"], (url, r.text)


def test_infer_sklearn_nested_and_flat(iris_app: Any) -> None:
    rows = [[5.0, 3.4, 1.5, 0.2], [6.3, 3.3, 6.0, 2.5]]
    for data in (rows, [v for r in rows for v in r]):
        body = {
            "id": "req-7",
            "inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": data}],
        }
        r = _post(iris_app, "/v2/models/iris/infer", json=body)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["id"] == "req-7" and out["model_name"] == "iris"
        assert out["outputs"] == [
            {"name": "output-0", "shape": [2], "datatype": "INT64", "data": [0, 2]}
        ]
    # Without an id the server makes one up; an id given is returned, an empty one too.
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": rows[0]}]}
    assert _post(iris_app, "/v2/models/iris/infer", json=body).json()["id"]
    # A version the model does not list is refused, never echoed as "model_version".
    assert _post(iris_app, "/v2/models/iris/versions/9/infer", json=body).status_code == 404
    assert _post(iris_app, "/v2/models/iris/infer", json={**body, "id": ""}).json()["id"] == ""


JSON_VALUES: dict[str, list[Any]] = {
    "BOOL": [True, False, True, True, False, False],
    "UINT8": [0, 1, 2, 253, 254, 255],
    "UINT16": [0, 1, 2, 3, 4, 65535],
    "UINT32": [0, 1, 2, 3, 4, 4294967295],
    "UINT64": [0, 1, 2, 3, 4, 18446744073709551615],
    "INT8": [-128, -1, 0, 1, 2, 127],
    "INT16": [-32768, -1, 0, 1, 2, 32767],
    "INT32": [-2147483648, -1, 0, 1, 2, 2147483647],
    "INT64": [-9223372036854775808, -1, 0, 1, 2, 9223372036854775807],
    "FP16": [0.5, -1.25, 2.0, 0.0, 1024.0, -0.125],
    "FP32": [0.5, -1.25, 2.0, 0.1, 1e30, -3.5],
    "FP64": [0.5, -1.25, 2.0, 0.1, 1e300, -3.5],
    "BYTES": ["a", "bc", "", "héllo", "x y", "zz"],
}


@pytest.mark.parametrize("datatype", sorted(DTYPES))
def test_every_datatype_json_round_trip(echo_app: Any, datatype: str) -> None:
    values = JSON_VALUES[datatype]
    body = {"inputs": [{"name": "t", "shape": [2, 3], "datatype": datatype, "data": values}]}
    r = _post(echo_app, "/v2/models/echo/infer", json=body)
    assert r.status_code == 200, r.text
    (out,) = r.json()["outputs"]
    assert out["name"] == "t" and out["shape"] == [2, 3] and out["datatype"] == datatype
    if datatype == "FP32":
        np.testing.assert_allclose(out["data"], values, rtol=1e-6)
    else:
        assert out["data"] == values


def _binary_request(
    inputs: list[tuple[str, str, list[int], bytes]], extra: dict[str, Any] | None = None
) -> tuple[bytes, dict[str, str]]:
    doc: dict[str, Any] = {
        "inputs": [
            {"name": n, "datatype": dt, "shape": s, "parameters": {"binary_data_size": len(b)}}
            for n, dt, s, b in inputs
        ],
        **(extra or {}),
    }
    head = orjson.dumps(doc)
    body = head + b"".join(b for *_, b in inputs)
    return body, {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(head)),
    }


def _bytes_elements(items: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(i)) + i for i in items)


def _split_binary(r: httpx.Response) -> tuple[dict[str, Any], dict[str, np.ndarray | bytes]]:
    n = int(r.headers["inference-header-content-length"])
    head = orjson.loads(r.content[:n])
    tail = r.content[n:]
    out: dict[str, np.ndarray | bytes] = {}
    pos = 0
    for o in head["outputs"]:
        size = o.get("parameters", {}).get("binary_data_size")
        if size is None:
            continue
        raw = tail[pos : pos + size]
        pos += size
        out[o["name"]] = (
            raw if o["datatype"] == "BYTES" else np.frombuffer(raw, DTYPES[o["datatype"]])
        )
    assert pos == len(tail)
    return head, out


@pytest.mark.parametrize("datatype", sorted(set(DTYPES) - {"BYTES"}))
def test_every_datatype_binary_round_trip(echo_app: Any, datatype: str) -> None:
    arr = np.array(JSON_VALUES[datatype], dtype=DTYPES[datatype]).reshape(2, 3)
    body, headers = _binary_request(
        [("t", datatype, [2, 3], arr.tobytes())], {"parameters": {"binary_data_output": True}}
    )
    r = _post(echo_app, "/v2/models/echo/infer", content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    head, tensors = _split_binary(r)
    assert head["outputs"][0]["shape"] == [2, 3]
    np.testing.assert_array_equal(tensors["t"], arr.reshape(-1))


def test_bytes_binary_and_mixed_outputs(echo_app: Any) -> None:
    items = [b"\x00\xff", b"hello", b""]
    body, headers = _binary_request(
        [
            ("b", "BYTES", [3], _bytes_elements(items)),
            ("f", "FP16", [2], np.array([1.5, 2], "<f2").tobytes()),
        ],
        {
            "outputs": [
                {"name": "b", "parameters": {"binary_data": True}},
                {"name": "f", "parameters": {"binary_data": False}},
            ]
        },
    )
    r = _post(echo_app, "/v2/models/echo/infer", content=body, headers=headers)
    assert r.status_code == 200, r.text
    head, tensors = _split_binary(r)
    assert tensors["b"] == _bytes_elements(items)
    f = next(o for o in head["outputs"] if o["name"] == "f")
    assert f["data"] == [1.5, 2.0] and "parameters" not in f


def test_mixed_json_and_binary_inputs(echo_app: Any) -> None:
    head = orjson.dumps(
        {
            "inputs": [
                {"name": "a", "datatype": "INT32", "shape": [2], "data": [7, 8]},
                {
                    "name": "b",
                    "datatype": "BOOL",
                    "shape": [3],
                    "parameters": {"binary_data_size": 3},
                },
            ]
        }
    )
    r = _post(
        echo_app,
        "/v2/models/echo/infer",
        content=head + b"\x01\x00\x01",
        headers={"Inference-Header-Content-Length": str(len(head))},
    )
    assert r.status_code == 200, r.text
    outs = {o["name"]: o["data"] for o in r.json()["outputs"]}
    assert outs == {"a": [7, 8], "b": [True, False, True]}


def test_requested_outputs_and_parameters_pass_through(echo_app: Any) -> None:
    body = {
        "id": "p1",
        "parameters": {"content_type": "np", "temperature": 0.5, "flag": True},
        "inputs": [
            {"name": "a", "shape": [1], "datatype": "INT8", "data": [1]},
            {"name": "b", "shape": [1], "datatype": "INT8", "data": [2]},
        ],
        "outputs": [{"name": "b"}],
    }
    out = _post(echo_app, "/v2/models/echo/infer", json=body).json()
    assert [o["name"] for o in out["outputs"]] == ["b"]
    assert out["parameters"] == body["parameters"] and out["id"] == "p1"
    body["outputs"] = [{"name": "nope"}]
    r = _post(echo_app, "/v2/models/echo/infer", json=body)
    assert r.status_code == 400 and "nope" in r.json()["error"]


def test_array_model_binary_output_and_several_inputs(iris_app: Any) -> None:
    body = {
        "parameters": {"binary_data_output": True},
        "inputs": [
            {"name": "a", "shape": [1, 2], "datatype": "FP64", "data": [6.3, 3.3]},
            {"name": "b", "shape": [1, 2], "datatype": "FP64", "data": [6.0, 2.5]},
        ],
    }
    r = _post(iris_app, "/v2/models/iris/infer", json=body)
    assert r.status_code == 200, r.text
    _, tensors = _split_binary(r)
    assert tensors["output-0"].tolist() == [2]  # type: ignore[union-attr]


BAD_BODIES: list[tuple[str, Any, int, str]] = [
    ("malformed", b"{not json", 400, "malformed JSON"),
    ("not an object", b"[1, 2]", 400, "JSON object"),
    ("no inputs", b"{}", 400, "inputs"),
    (
        "element count",
        {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [1.0] * 7}]},
        400,
        "elements",
    ),
    (
        "ragged",
        {
            "inputs": [
                {"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [[1.0, 2.0], [3.0]]}
            ]
        },
        400,
        "x",
    ),
    (
        "bad datatype",
        {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP99", "data": [1, 2, 3, 4]}]},
        400,
        "datatype",
    ),
    (
        "strings as FP32",
        {
            "inputs": [
                {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": ["a", "b", "c", "d"]}
            ]
        },
        400,
        "FP32",
    ),
    (
        "floats as INT32",
        {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "INT32", "data": [1.5, 2, 3, 4]}]},
        400,
        "INT32",
    ),
    (
        "overflow",
        {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "UINT8", "data": [1, 2, 3, 300]}]},
        400,
        "range",
    ),
    (
        "negative shape",
        {"inputs": [{"name": "x", "shape": [-1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]},
        400,
        "shape",
    ),
    (
        "wrong feature count",
        {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]},
        400,
        "[-1, 4]",
    ),
    (
        "bool as BOOL?",
        {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "BOOL", "data": [1, 0, 1, 0]}]},
        400,
        "BOOL",
    ),
    ("no data", {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32"}]}, 400, "data"),
    (
        "zero rows",
        {"inputs": [{"name": "x", "shape": [0, 4], "datatype": "FP32", "data": []}]},
        400,
        "no rows",
    ),
    (
        "zero rows in two inputs",
        {
            "inputs": [
                {"name": "a", "shape": [0, 2], "datatype": "FP32", "data": []},
                {"name": "b", "shape": [0, 2], "datatype": "FP32", "data": []},
            ]
        },
        400,
        "no rows",
    ),
    (
        "id not a string",
        {
            "id": 5,
            "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}],
        },
        400,
        "id",
    ),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "needle"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES]
)
def test_bad_requests_are_4xx_json_and_server_keeps_serving(
    iris_app: Any, case: str, body: Any, status: int, needle: str
) -> None:
    async def go(c: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response]:
        kw: dict[str, Any] = {"content": body} if isinstance(body, bytes) else {"json": body}
        bad = await c.post("/v2/models/iris/infer", **kw)
        good = await c.post(
            "/v2/models/iris/infer",
            json={
                "inputs": [
                    {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.0, 3.4, 1.5, 0.2]}
                ]
            },
        )
        return bad, good

    bad, good = run(go, iris_app)
    assert bad.status_code == status, bad.text
    assert bad.headers["content-type"] == "application/json"
    assert needle in bad.json()["error"]
    assert good.status_code == 200


def test_binary_flags_are_booleans(echo_app: Any) -> None:
    # "false" is no false: it turned binary output on.
    tensor = {"name": "x", "shape": [2], "datatype": "FP32", "data": [1.0, 2.0]}
    for extra in (
        {"parameters": {"binary_data_output": "false"}},
        {"outputs": [{"name": "x", "parameters": {"binary_data": 1}}]},
    ):
        r = _post(echo_app, "/v2/models/echo/infer", json={"inputs": [tensor], **extra})
        assert r.status_code == 400 and "true or false" in r.json()["error"], r.text
    r = _post(
        echo_app,
        "/v2/models/echo/infer",
        json={"inputs": [tensor], "parameters": {"binary_data_output": False}},
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")


def test_binary_errors(echo_app: Any) -> None:
    head = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [2],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 8},
                }
            ]
        }
    )
    hdr = {"Inference-Header-Content-Length": str(len(head))}
    cases = [
        (head + b"\x00" * 4, hdr),  # too short
        (head + b"\x00" * 12, hdr),  # unclaimed bytes
        (head + b"\x00" * 8, {"Inference-Header-Content-Length": "99999"}),  # header > body
        (head + b"\x00" * 8, {"Inference-Header-Content-Length": "abc"}),
        (head, {}),  # binary_data_size without the header
    ]
    for content, headers in cases:
        r = _post(echo_app, "/v2/models/echo/infer", content=content, headers=headers)
        assert r.status_code == 400, (headers, r.text)
        assert "error" in r.json()
    bad_bytes = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "s",
                    "shape": [1],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": 6},
                }
            ]
        }
    )
    r = _post(
        echo_app,
        "/v2/models/echo/infer",
        content=bad_bytes + struct.pack("<I", 10) + b"ab",
        headers={"Inference-Header-Content-Length": str(len(bad_bytes))},
    )
    assert r.status_code == 400 and "BYTES" in r.json()["error"]


def test_unknown_model_route_method_content_type_and_size() -> None:
    app = create_app(loaded(SklearnModel("iris")), max_body_bytes=1024)
    body = {
        "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.0, 3.4, 1.5, 0.2]}]
    }

    async def go(c: httpx.AsyncClient) -> None:
        r = await c.post("/v2/models/nope/infer", json=body)
        assert r.status_code == 404 and "nope" in r.json()["error"]
        assert (await c.get("/v2/models/nope")).status_code == 404
        assert (await c.get("/v2/models/nope/ready")).status_code == 404
        assert (await c.get("/v2/nothing/here")).status_code == 404
        # A 405 says what the endpoint takes (RFC 9110's Allow header).
        for response, allow in (
            (await c.get("/v2/models/iris/infer"), "POST"),
            (await c.post("/v2/health/live"), "GET, HEAD"),
            (await c.delete("/v2/models/iris"), "GET, HEAD"),
            (await c.put("/v2/models/iris/infer"), "POST"),
        ):
            assert response.status_code == 405 and response.headers["allow"] == allow
        r = await c.post(
            "/v2/models/iris/infer",
            content=orjson.dumps(body),
            headers={"Content-Type": "text/plain"},
        )
        assert r.status_code == 415 and "Content-Type" in r.json()["error"]
        big = {
            "inputs": [{"name": "x", "shape": [300, 4], "datatype": "FP64", "data": [1.0] * 1200}]
        }
        r = await c.post("/v2/models/iris/infer", json=big)
        assert r.status_code == 413 and "limit" in r.json()["error"]

        async def chunks():  # no Content-Length: counted while streaming
            for _ in range(10):
                yield b" " * 200

        r = await c.post("/v2/models/iris/infer", content=chunks())
        assert r.status_code == 413
        r = await c.post("/v2/models/iris/infer", json=body)
        assert r.status_code == 200
        for resp in [r]:
            assert resp.json()["outputs"][0]["data"] == [0]

    run(go, app)


def test_gzip_request_body() -> None:
    import gzip

    app = create_app(loaded(SklearnModel("iris")), max_body_bytes=4096)
    body = orjson.dumps(
        {
            "inputs": [
                {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.0, 3.4, 1.5, 0.2]}
            ]
        }
    )
    r = _post(
        app,
        "/v2/models/iris/infer",
        content=gzip.compress(body),
        headers={"Content-Encoding": "gzip"},
    )
    assert r.status_code == 200, r.text
    bomb = gzip.compress(b" " * 100_000)  # small on the wire, over the limit inflated
    r = _post(app, "/v2/models/iris/infer", content=bomb, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 413


def test_not_ready_and_load_failure_are_503_with_reason() -> None:
    app = create_app([FailingModel("bad")], load_on_startup=False)
    r = _get(app, "/v2/models/bad/ready")
    assert r.status_code == 503 and r.json()["ready"] is False and "loading" in r.json()["error"]
    app.plane.load_all()
    for url in ("/v2/health/ready", "/v2/models/bad/ready", "/v1/models/bad"):
        r = _get(app, url)
        assert r.status_code == 503, url
        assert "weights file missing" in r.json()["error"]
    r = _post(app, "/v2/models/bad/infer", json={"inputs": []})
    assert r.status_code == 503
    assert _get(app, "/v2/health/live").status_code == 200
    assert _get(app, "/v2/models/bad").status_code == 200  # metadata works while not ready


def test_model_error_is_json_500_without_traceback() -> None:
    app = create_app(loaded(BrokenPredictModel("broken")))
    body = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}
    r = _post(app, "/v2/models/broken/infer", json=body)
    assert r.status_code == 500 and r.json() == {"error": "RuntimeError: boom"}


class RaggedModel(EchoModel):
    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        return [[1, 2], [3]]  # not a tensor


def test_a_model_result_that_is_no_tensor_is_the_models_500() -> None:
    # It was a 400, as if the client had sent something wrong.
    app = create_app(loaded(RaggedModel("ragged")))
    body = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}
    r = _post(app, "/v2/models/ragged/infer", json=body)
    assert r.status_code == 500, r.text
    assert r.json()["error"].startswith("model returned a value that is not a tensor")


def test_an_input_name_given_twice_is_a_400(iris_app: Any) -> None:
    # The two were stacked into one [1, 8] array: "expects [-1, 4], got [1, 8]".
    row = {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.0, 3.4, 1.5, 0.2]}
    r = _post(iris_app, "/v2/models/iris/infer", json={"inputs": [row, row]})
    assert r.status_code == 400
    assert r.json() == {"error": "inputs[1]: input name 'x' is given twice"}
