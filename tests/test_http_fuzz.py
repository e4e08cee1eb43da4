"""Malformed input against every HTTP server of the project, on real loopback sockets.

The model server (a replica app under uvicorn with the product's protocol class), the
router (its httptools front end, in front of a real replica process), the suggestion
service (FastAPI under uvicorn) and the push receiver (http.server) each get a table of
malformed requests, raw bytes where an HTTP client would refuse to send them, plus a
seeded random mutation of valid bodies. For every answer: a 4xx (or a 2xx when the
request is in fact valid), never a 5xx, a JSON body with an ``error`` key, no traceback;
afterwards the server still answers a valid request (and the router's replica is alive).
"""

from __future__ import annotations

import contextlib
import copy
import gzip
import json
import random
import socket
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import joblib
import pytest
import uvicorn
from sklearn.linear_model import LogisticRegression

from serving.router import RoutedService, Router
from serving.server import create_app
from serving.server.http import uvicorn_config
from tests.serving.test_dataplane_support import X_TRAIN, Y_TRAIN, EchoModel, SklearnModel, loaded
from tests.serving.test_router import RouterThread, pool
from tests.tuner.test_suggestion_conformance import make_experiment
from tests.util import REPO, free_port, running, wait_http_ok
from tuner.metrics.push import PushReceiver
from tuner.suggestion.http import create_app as suggestion_app
from tuner.suggestion.http import server_config
from tuner.suggestion.wire import PREFIX

# --- a raw HTTP/1.1 client ------------------------------------------------------------


class Answer:
    def __init__(self, status: int, headers: dict[bytes, bytes], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def __repr__(self) -> str:
        return f"<{self.status} {self.body[:300]!r}>"


def _read_answer(f: Any, head_only: bool) -> Answer | None:
    """One response from a socket file, skipping interim 1xx; None at EOF."""
    while True:
        line = f.readline(65537)
        if not line:
            return None
        parts = line.split(b" ", 2)
        assert parts[0].startswith(b"HTTP/1."), line[:200]
        status = int(parts[1])
        headers: dict[bytes, bytes] = {}
        while (h := f.readline(65537)) not in (b"\r\n", b"\n", b""):
            k, _, v = h.partition(b":")
            headers[k.strip().lower()] = v.strip()
        if status < 200:
            continue
        n = int(headers.get(b"content-length", b"0"))
        body = b"" if head_only else f.read(n)
        return Answer(status, headers, body)


def raw(
    port: int,
    data: bytes,
    *,
    answers: int = 1,
    head_only: bool = False,
    shut: bool = False,
    timeout: float = 10.0,
) -> list[Answer]:
    """Send ``data`` and read up to ``answers`` responses (fewer if the server closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        out: list[Answer] = []
        with s.makefile("rb") as f, contextlib.suppress(ConnectionResetError):
            while len(out) < answers and (a := _read_answer(f, head_only)) is not None:
                out.append(a)
        return out


def request(
    method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    h = {"host": "fuzz", **(headers or {})}
    if body or method in ("POST", "PUT", "PATCH"):
        h.setdefault("content-length", str(len(body)))
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items())
    return head.encode("utf-8") + b"\r\n" + body


Allowed = Callable[[int], bool]


def client_error(status: int) -> bool:
    return 400 <= status < 500


def ok_or_client_error(status: int) -> bool:
    return 200 <= status < 300 or 400 <= status < 500


def problem(answer: Answer | None, allowed: Allowed, head_only: bool = False) -> str | None:
    """Why ``answer`` breaks the contract, or None."""
    if answer is None:
        return "no answer"
    if not allowed(answer.status):
        return f"status {answer.status}"
    if b"Traceback" in answer.body or b'File "' in answer.body:
        return "traceback in the body"
    if answer.status >= 400 and not head_only:
        if not answer.headers.get(b"content-type", b"").startswith(b"application/json"):
            return f"content-type {answer.headers.get(b'content-type')!r}"
        try:
            doc = json.loads(answer.body)
        except ValueError:
            return "body is not JSON"
        if not isinstance(doc, dict) or not isinstance(doc.get("error"), str):
            return "no 'error' in the body"
    return None


class Failures:
    """Collects every contract breach of a table, so one run reports them all."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def check(self, case: str, answer: Answer | None, allowed: Allowed = client_error) -> None:
        why = problem(answer, allowed)
        if why is not None:
            self.items.append(f"{case}: {why}: {answer!r}")

    def check_httpx(self, case: str, r: httpx.Response, allowed: Allowed = client_error) -> None:
        headers = {k.encode(): v.encode() for k, v in r.headers.items()}
        self.check(case, Answer(r.status_code, headers, r.content), allowed)

    def assert_none(self) -> None:
        assert not self.items, "\n".join(self.items[:60])


# --- JSON mutation ----------------------------------------------------------------------

ODD_VALUES: list[Any] = [
    None, True, 0, -1, 2**63, 2**64 + 1, -(2**63) - 1, 1e308, -1e308, 1.5, "", "x", "FP32",
    "é\u0000", [], [None], [[]], [1, "a"], {}, {"a": 1}, [[[[[[[[1]]]]]]]], "1" * 200,
]  # fmt: skip


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*prefix, i))


def mutate(doc: Any, rng: random.Random) -> Any:
    """``doc`` with one node replaced, deleted, duplicated or renamed."""
    doc = copy.deepcopy(doc)
    path = rng.choice(list(_paths(doc))[1:])
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    op = rng.random()
    if op < 0.6:
        parent[key] = rng.choice(ODD_VALUES)
    elif op < 0.75:
        del parent[key]
    elif op < 0.9 and isinstance(parent, list):
        parent.insert(key, copy.deepcopy(parent[key]))
    elif isinstance(parent, dict):
        parent[key + "x"] = parent.pop(key)
    else:
        parent[key] = [parent[key]]
    return doc


def byte_mutate(body: bytes, rng: random.Random) -> bytes:
    b = bytearray(body)
    op = rng.random()
    if op < 0.4:
        return bytes(b[: rng.randrange(len(b))])
    if op < 0.8:
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    i = rng.randrange(len(b))
    return bytes(b[:i] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 8))) + b[i:])


# --- the replica app ------------------------------------------------------------------

V2_OK = {
    "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]
}
V2_OK_BYTES = json.dumps(V2_OK).encode()


@contextlib.contextmanager
def uvicorn_thread(config: uvicorn.Config) -> Iterator[None]:
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def replica_port() -> Iterator[int]:
    app = create_app(
        [loaded(SklearnModel("iris")), loaded(EchoModel("echo"))], max_body_bytes=1 << 16
    )
    port = free_port()
    config = uvicorn_config(app, "127.0.0.1", port, lifespan="on", log_level="critical")
    with uvicorn_thread(config):
        wait_http_ok(f"http://127.0.0.1:{port}/v2/health/live", timeout=20)
        yield port


def replica_still_serves(port: int) -> None:
    r = httpx.post(f"http://127.0.0.1:{port}/v2/models/iris/infer", json=V2_OK, timeout=10)
    assert r.status_code == 200, r.text
    assert httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=10).status_code == 200


def tensor(datatype: str, shape: Any, data: Any, **extra: Any) -> bytes:
    return json.dumps(
        {"inputs": [{"name": "x", "shape": shape, "datatype": datatype, "data": data}], **extra}
    ).encode()


V2_BODIES: list[bytes] = [
    b"", b"null", b"1", b"[]", b'"x"', b"{}", b"{", b'{"inputs": null}', b'{"inputs": 1}',
    b'{"inputs": []}', b'{"inputs": [null]}', b'{"inputs": [1]}', b'{"inputs": [{}]}',
    b'{"inputs": [{"name": 1}]}', b'{"inputs": [{"name": "x"}]}',
    b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32"}]}',
    b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": NaN}]}',
    b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [NaN]}]}',
    b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [Infinity]}]}',
    b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1e999]}]}',
    b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1' + b"0" * 400 + b"]}]}",
    b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]', b"\xff\xfe{}",
    b'{"inputs": "\xff"}', b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 2000 + b"1" + b"}" * 2000,
    b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": '
    + b"[" * 5000 + b"]" * 5000 + b"}]}",
    b'{"inputs": [], "inputs": [{"name": "x", "shape": [1,4], "datatype": "FP32", "data": [1,2,3,4]}]}',
    tensor("FP32", [1, 4], [1, 2, 3, 4], id="a") + b" ",
    tensor("FP16", [1, 4], [1, 2, 3, 70000]),
    tensor("FP32", [1, 4], [1, 2, 3, 1e39]),
    tensor("FP64", [1, 4], [1, 2, 3, 1e308]),
    tensor("INT32", [1, 4], [1, 2, 3, 2**40]),
    tensor("INT8", [1, 4], [1, 2, 3, -129]),
    tensor("UINT64", [1, 4], [2**64 - 1, 1, 2, 3]),
    tensor("UINT64", [1, 4], [-1, 1, 2, 3]),
    tensor("INT64", [1, 4], [-(2**63), 1, 2, 3]),
    tensor("INT32", [1, 4], ["1", 2, 3, 4]),
    tensor("INT32", [1, 4], [1.5, 2, 3, 4]),
    tensor("INT32", [1, 4], [True, 2, 3, 4]),
    tensor("FP32", [1, 4], ["1", "2", "3", "4"]),
    tensor("FP32", [1, 4], ["a", "2", "3", "4"]),
    tensor("FP32", [1, 4], [None, 2, 3, 4]),
    tensor("FP32", [1, 4], [{}, 2, 3, 4]),
    tensor("FP32", [1, 4], [[1, 2], [3]]),
    tensor("INT32", [1, 4], [[1, 2], [3]]),
    tensor("FP32", [2, 2], [[1, 2], [3, 4]]),
    tensor("BOOL", [1, 4], [True, False, True, 1]),
    tensor("BOOL", [1, 4], [1, 0, 1, 0]),
    tensor("BYTES", [1], [1]),
    tensor("BYTES", [1], ["é"]),
    tensor("BYTES", [2], [["a"], ["b", "c"]]),
    tensor("BYTES", [0], []),
    tensor("BYTES", [1], "abc"),
    tensor("FP99", [1, 4], [1, 2, 3, 4]),
    tensor(None, [1, 4], [1, 2, 3, 4]),  # type: ignore[arg-type]
    tensor("fp32", [1, 4], [1, 2, 3, 4]),
    tensor("FP32", [-1, 4], [1, 2, 3, 4]),
    tensor("FP32", [0, 4], []),
    tensor("FP32", [4, 0], []),
    tensor("FP32", [], [1]),
    tensor("FP32", [1, 4], [1]),
    tensor("FP32", [1, 4], [1, 2, 3, 4, 5]),
    tensor("FP32", [2**40, 2**40], [1]),
    tensor("FP32", [2**70], [1]),
    tensor("FP32", [1.0, 4], [1, 2, 3, 4]),
    tensor("FP32", [True, 4], [1, 2, 3, 4]),
    tensor("FP32", "1,4", [1, 2, 3, 4]),
    tensor("FP32", None, [1, 2, 3, 4]),
    tensor("FP32", [1, 4], [1, 2, 3, 4], outputs=[{"name": "nope"}]),
    tensor("FP32", [1, 4], [1, 2, 3, 4], outputs=1),
    tensor("FP32", [1, 4], [1, 2, 3, 4], outputs=[{"name": "output-0", "parameters": 5}]),
    tensor("FP32", [1, 4], [1, 2, 3, 4], outputs=[{"name": None}]),
    tensor("FP32", [1, 4], [1, 2, 3, 4], parameters=[]),
    tensor("FP32", [1, 4], [1, 2, 3, 4], id=5),
    tensor("FP32", [1, 4], [1, 2, 3, 4], id="é" * 1000),
    json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "parameters": 7, "data": [1, 2, 3, 4]}]}).encode(),
    json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": 16}, "data": [1, 2, 3, 4]}]}).encode(),
    json.dumps({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}, {"name": "y", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]}).encode(),
    json.dumps({"inputs": [{"name": "x", "shape": [0, 2], "datatype": "FP32", "data": []}, {"name": "y", "shape": [0, 2], "datatype": "FP32", "data": []}]}).encode(),
    json.dumps({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}, {"name": "y", "shape": [1, 2], "datatype": "INT32", "data": [3, 4]}]}).encode(),
]  # fmt: skip

V1_BODIES: list[bytes] = [
    b"", b"null", b"1", b"[]", b"{}", b'{"instances": null}', b'{"instances": 1}',
    b'{"instances": "abc"}', b'{"instances": []}', b'{"instances": [[]]}', b'{"instances": [[1,2],[3]]}',
    b'{"instances": [["a","b","c","d"]]}', b'{"instances": [[1,2,3,4]]}', b'{"instances": [1,2,3,4]}',
    b'{"instances": [[NaN,2,3,4]]}', b'{"instances": [[1e999,2,3,4]]}', b'{"instances": [[true,false,true,false]]}',
    b'{"instances": [[null,2,3,4]]}', b'{"instances": [[{},2,3,4]]}', b'{"inputs": [[1,2,3,4]]}',
    b'{"instances": [[[1,2,3,4]]]}', b'{"instances": [[1,2,3,4]], "instances": 5}',
    b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b"}", b'{"instances": [[1,2,3,4]]}' + b" " * 70_000,
    b'{"instances": [[18446744073709551616,2,3,4]]}', b'{"instances": [[1,2,3,4]], "inputs": 7}',
]  # fmt: skip


def test_replica_v2_and_v1_bodies(replica_port: int) -> None:
    fails = Failures()
    json_ct = {"content-type": "application/json"}
    with httpx.Client(base_url=f"http://127.0.0.1:{replica_port}", timeout=10) as c:
        for model in ("iris", "echo"):
            for body in V2_BODIES:
                r = c.post(f"/v2/models/{model}/infer", content=body, headers=json_ct)
                fails.check_httpx(f"V2 {model} {body[:120]!r}", r, ok_or_client_error)
            for body in V1_BODIES:
                r = c.post(f"/v1/models/{model}:predict", content=body, headers=json_ct)
                fails.check_httpx(f"V1 {model} {body[:120]!r}", r, ok_or_client_error)
        # Regressions: an FP16/FP32 overflow and an empty V1 batch are 400s.
        r = c.post("/v2/models/iris/infer", content=tensor("FP16", [1, 4], [1, 2, 3, 70000]))
        assert r.status_code == 400 and "out of range for FP16" in r.json()["error"]
        r = c.post("/v1/models/echo:predict", json={"instances": []})
        assert r.status_code == 200  # custom models get the payload as it is
        r = c.post("/v1/models/iris:predict", json={"instances": []})
        assert r.status_code == 400
    fails.assert_none()
    replica_still_serves(replica_port)


def test_replica_routes_methods_content_types_and_encodings(replica_port: int) -> None:
    fails = Failures()
    paths = [
        "/", "/v2", "/v2/", "/v2/health", "/v2/health/live/", "/v2/models", "/v2/models/",
        "/v2/models/iris", "/v2/models/iris/versions/1", "/v2/models/iris/versions/1/ready",
        "/v2/models/iris/versions", "/v2/models/iris/infer/x", "/v1", "/v1/models",
        "/v1/models/iris", "/v1/models/iris:predict", "/v1/models/iris:explain", "/v1/models/:predict",
        "/v1/models/a:b:predict", "/v1/models/nope", "/v1/models/iris/x", "/metrics", "/metrics/",
        "/%ff", "/v2/models/%ff/ready", "/v2/models/%2e%2e/infer", "/v2/models/../../etc/passwd",
        "/v2/models/%2e%2e%2f%2e%2e/ready", "/v2/models/\u00e9/infer", "/v2/models/" + "a" * 5000 + "/infer",
        "/v2/models/iris/infer?x=1&y&%ff=%00", "/v2/models/ir%00is/infer", "//v2//models//iris//infer",
    ]  # fmt: skip
    methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"]
    with httpx.Client(base_url=f"http://127.0.0.1:{replica_port}", timeout=10) as c:
        for path in paths:
            for method in methods:
                r = c.request(method, path, content=V2_OK_BYTES if method == "POST" else None)
                case = f"{method} {path[:80]}"
                if method == "HEAD" or (path.startswith("/metrics") and r.status_code == 200):
                    assert r.status_code < 500, case
                elif method == "POST" and path == "/v1/models/iris:explain":
                    # KServe's answer without an explainer: not implemented, a JSON 501.
                    fails.check_httpx(case, r, lambda status: status == 501)
                else:
                    fails.check_httpx(case, r, ok_or_client_error)
        for ct in [
            "text/plain", "application/octet-stream", "application/json; charset=latin1",
            "application/x+json", "multipart/form-data; boundary=x", "application/json;;;", "*/*",
        ]:  # fmt: skip
            for path, body in (
                ("/v2/models/iris/infer", V2_OK_BYTES),
                ("/v1/models/iris:predict", b'{"instances": [[1,2,3,4]]}'),
            ):
                r = c.post(path, content=body, headers={"content-type": ct})
                fails.check_httpx(f"content-type {ct} {path}", r, ok_or_client_error)
        for enc, body in [
            ("gzip", b"not gzip"), ("gzip", gzip.compress(b"{}")), ("br", b"{}"),
            ("deflate", b"xx"), ("gzip, gzip", b"{}"), ("identity", V2_OK_BYTES),
            ("gzip", gzip.compress(b" " * (1 << 20))), ("gzip", gzip.compress(V2_OK_BYTES)[:-3]),
        ]:  # fmt: skip
            r = c.post("/v2/models/iris/infer", content=body, headers={"content-encoding": enc})
            fails.check_httpx(f"content-encoding {enc} {body[:20]!r}", r, ok_or_client_error)
        r = c.post("/v2/models/iris/infer", content=b"x" * 70_000)
        assert r.status_code == 413 and "error" in r.json()
    fails.assert_none()
    replica_still_serves(replica_port)


def _binary(inputs: list[dict[str, Any]], tail: bytes, **extra: Any) -> tuple[bytes, int]:
    head = json.dumps({"inputs": inputs, **extra}).encode()
    return head + tail, len(head)


def test_replica_binary_extension_that_lies(replica_port: int) -> None:
    fails = Failures()
    floats = struct.pack("<4f", 1, 2, 3, 4)
    good = [
        {"name": "x", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": 16}}
    ]
    cases: list[tuple[str, bytes, str]] = []
    body, n = _binary(good, floats)
    for header in [str(n), "0", "-1", "abc", "99999999999999999999", str(n + 1), str(n - 1),
                   str(len(body)), str(len(body) + 1), "1e3", "+5", "0x10", "", "5 5"]:  # fmt: skip
        cases.append((f"header-length {header!r}", body, header))
    for size in [0, 15, 17, -1, 1.5, "16", None, True, 2**70, [16]]:
        inputs = copy.deepcopy(good)
        inputs[0]["parameters"]["binary_data_size"] = size
        body, n = _binary(inputs, floats)
        cases.append((f"binary_data_size {size!r}", body, str(n)))
    for dt, shape, tail in [
        ("BYTES", [1], b"\x01\x00\x00\x00a"), ("BYTES", [1], b"\x05\x00\x00\x00a"),
        ("BYTES", [1], b"\x01\x00"), ("BYTES", [2], b"\x01\x00\x00\x00a"),
        ("BYTES", [1], b"\xff\xff\xff\xffa"), ("BYTES", [1], b"\x02\x00\x00\x00\xff\xfe"),
        ("BYTES", [0], b""), ("BYTES", [2, 2], b"\x00\x00\x00\x00" * 4), ("BOOL", [2], b"\x00\x02"),
        ("FP32", [1], b"abc"), ("FP16", [1], b"ab"), ("FP32", [2**40], b"abcd"), ("UINT8", [0], b""),
        ("INT64", [1], b"\xff" * 8), ("FP64", [1], struct.pack("<d", float("nan"))),
    ]:  # fmt: skip
        inputs = [
            {
                "name": "x",
                "shape": shape,
                "datatype": dt,
                "parameters": {"binary_data_size": len(tail)},
            }
        ]
        for extra in ({}, {"parameters": {"binary_data_output": True}}):
            body, n = _binary(inputs, tail, **extra)
            cases.append((f"{dt} {shape} {tail[:12]!r} {extra}", body, str(n)))
    body, n = _binary(good, floats + b"extra")
    cases.append(("unclaimed tail", body, str(n)))
    body, n = _binary(good, floats)
    cases.append(("binary header on JSON", V2_OK_BYTES, str(len(V2_OK_BYTES))))
    with httpx.Client(base_url=f"http://127.0.0.1:{replica_port}", timeout=10) as c:
        for model in ("iris", "echo"):
            for case, body, header in cases:
                headers = {"content-type": "application/octet-stream"}
                if header:
                    headers["inference-header-content-length"] = header
                r = c.post(f"/v2/models/{model}/infer", content=body, headers=headers)
                if r.status_code == 200:
                    continue  # a valid request (binary answers are not JSON)
                fails.check_httpx(f"{model} {case}", r)
    fails.assert_none()
    replica_still_serves(replica_port)


# Raw requests for both uvicorn and the router: (name, bytes, allowed statuses).
GOOD_INFER = request("POST", "/v2/models/iris/infer", V2_OK_BYTES)
_L = str(len(V2_OK_BYTES)).encode()
_P = b"POST /v2/models/iris/infer HTTP/1.1\r\nhost: x\r\n"
RAW_CASES: list[tuple[str, bytes, Allowed]] = [
    ("bad request line", b"GARBAGE\r\n\r\n", client_error),
    ("lowercase method", b"get /v2/health/live HTTP/1.1\r\nhost: x\r\n\r\n", client_error),
    ("unknown method", b"BREW /v2/health/live HTTP/1.1\r\nhost: x\r\n\r\n", client_error),
    ("HTTP/9.9", b"GET /v2/health/live HTTP/9.9\r\nhost: x\r\n\r\n", client_error),
    ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", client_error),
    ("TLS hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40, client_error),
    ("HTTP/1.0", b"GET /v2/health/live HTTP/1.0\r\n\r\n", ok_or_client_error),
    ("HTTP/1.0 POST", _P.replace(b"1.1", b"1.0") + b"content-length: " + _L + b"\r\n\r\n" + V2_OK_BYTES, ok_or_client_error),
    ("absolute-form", b"GET http://h/v2/health/live HTTP/1.1\r\nhost: x\r\n\r\n", ok_or_client_error),
    ("absolute-form POST", GOOD_INFER.replace(b"POST /", b"POST http://h/"), ok_or_client_error),
    ("authority-form", b"CONNECT 127.0.0.1:1 HTTP/1.1\r\nhost: x\r\n\r\n", client_error),
    ("asterisk", b"OPTIONS * HTTP/1.1\r\nhost: x\r\n\r\n", client_error),
    ("no leading slash", b"GET v2/health/live HTTP/1.1\r\nhost: x\r\n\r\n", client_error),
    ("utf-8 path", "GET /v2/models/é/ready HTTP/1.1\r\nhost: x\r\n\r\n".encode(), client_error),
    ("latin-1 path", b"GET /v2/models/\xe9/ready HTTP/1.1\r\nhost: x\r\n\r\n", client_error),
    ("%ff %00 %zz", b"GET /v2/models/%ff%00%zz/ready HTTP/1.1\r\nhost: x\r\n\r\n", client_error),
    ("dot-dot", b"GET /v2/models/../../etc/passwd HTTP/1.1\r\nhost: x\r\n\r\n", client_error),
    ("%2e%2e", b"GET /v2/models/%2e%2e/%2e%2e/metrics HTTP/1.1\r\nhost: x\r\n\r\n", client_error),
    ("dot-dot after name", b"GET /v2/models/iris/../../../metrics HTTP/1.1\r\nhost: x\r\n\r\n", client_error),
    ("NUL in target", b"GET /v2/health\x00/live HTTP/1.1\r\nhost: x\r\n\r\n", client_error),
    ("tab in target", b"GET /v2/health\t/live HTTP/1.1\r\nhost: x\r\n\r\n", client_error),
    ("query junk", b"GET /v2/health/live?%ff%00&&==;; HTTP/1.1\r\nhost: x\r\n\r\n", ok_or_client_error),
    ("long target", b"GET /v2/models/" + b"a" * 100_000 + b"/ready HTTP/1.1\r\nhost: x\r\n\r\n", client_error),
    ("huge header", b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 200_000 + b"\r\n\r\n", client_error),
    ("many headers", b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\n" + b"".join(b"x-h%d: v\r\n" % i for i in range(20_000)) + b"\r\n", client_error),
    ("header without colon", b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\nbroken\r\n\r\n", client_error),
    ("space in header name", b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\nbad name: v\r\n\r\n", client_error),
    ("obsolete line folding", b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\nx-a: a\r\n b\r\n\r\n", client_error),
    ("NUL in header", b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\nx-a: a\x00b\r\n\r\n", client_error),
    ("non-ASCII header", b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\nx-a: \xe9\xff\r\n\r\n", ok_or_client_error),
    ("non-ASCII content-type", _P + b"content-type: \xe9\r\ncontent-length: " + _L + b"\r\n\r\n" + V2_OK_BYTES, client_error),
    ("non-ASCII content-encoding", _P + b"content-encoding: \xff\r\ncontent-length: 3\r\n\r\nabc", client_error),
    ("non-ASCII binary header", _P + b"inference-header-content-length: \xd9\xa3\r\ncontent-length: " + _L + b"\r\n\r\n" + V2_OK_BYTES, client_error),
    ("huge binary header", _P + b"inference-header-content-length: " + b"9" * 5000 + b"\r\ncontent-length: " + _L + b"\r\n\r\n" + V2_OK_BYTES, client_error),
    ("no host", b"GET /v2/health/live HTTP/1.1\r\n\r\n", ok_or_client_error),
    ("negative content-length", _P + b"content-length: -1\r\n\r\n" + V2_OK_BYTES, client_error),
    ("non-numeric content-length", _P + b"content-length: abc\r\n\r\n" + V2_OK_BYTES, client_error),
    ("huge content-length", _P + b"content-length: " + b"9" * 30 + b"\r\n\r\n" + V2_OK_BYTES, client_error),
    ("content-length over the limit", _P + b"content-length: 100000000\r\n\r\n" + V2_OK_BYTES, client_error),
    ("two different content-lengths", _P + b"content-length: 5\r\ncontent-length: " + _L + b"\r\n\r\n" + V2_OK_BYTES, client_error),
    ("content-length list", _P + b"content-length: " + _L + b", " + _L + b"\r\n\r\n" + V2_OK_BYTES, client_error),
    ("content-length +", _P + b"content-length: +" + _L + b"\r\n\r\n" + V2_OK_BYTES, client_error),
    ("content-length with whitespace", _P + b"content-length: \t" + _L + b" \t\r\n\r\n" + V2_OK_BYTES, ok_or_client_error),
    ("content-length and chunked", _P + b"content-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n", client_error),
    ("chunked", _P + b"transfer-encoding: chunked\r\n\r\n%x\r\n" % len(V2_OK_BYTES) + V2_OK_BYTES + b"\r\n0\r\n\r\n", ok_or_client_error),
    ("chunk extension and trailer", _P + b"transfer-encoding: chunked\r\n\r\n%x;a=b\r\n" % len(V2_OK_BYTES) + V2_OK_BYTES + b"\r\n0\r\nx-t: 1\r\n\r\n", ok_or_client_error),
    ("bad chunk size", _P + b"transfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", client_error),
    ("huge chunk size", _P + b"transfer-encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc\r\n0\r\n\r\n", client_error),
    ("transfer-encoding gzip", _P + b"transfer-encoding: gzip\r\n\r\n" + V2_OK_BYTES, client_error),
    ("chunked on HTTP/1.0", _P.replace(b"1.1", b"1.0") + b"transfer-encoding: chunked\r\n\r\n0\r\n\r\n", client_error),
    ("upgrade: websocket", b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n", ok_or_client_error),
    ("upgrade: h2c with a body", _P + b"connection: upgrade\r\nupgrade: h2c\r\ncontent-length: " + _L + b"\r\n\r\n" + V2_OK_BYTES, ok_or_client_error),
    ("bare LF", b"GET /v2/health/live HTTP/1.1\nhost: x\n\n", client_error),
    ("bare CR", b"GET /v2/health/live HTTP/1.1\rhost: x\r\r", client_error),
    ("expect: 100-continue", _P + b"expect: 100-continue\r\ncontent-length: " + _L + b"\r\n\r\n" + V2_OK_BYTES, ok_or_client_error),
    ("expect: something else", _P + b"expect: 200-ok\r\ncontent-length: " + _L + b"\r\n\r\n" + V2_OK_BYTES, ok_or_client_error),
    ("leading CRLF", b"\r\nGET /v2/health/live HTTP/1.1\r\nhost: x\r\n\r\n", ok_or_client_error),
    ("non-ASCII bearer", b"GET /v2/models/iris HTTP/1.1\r\nhost: x\r\nauthorization: Bearer \xff\r\n\r\n", ok_or_client_error),
]  # fmt: skip


def run_raw_table(port: int, cases: list[tuple[str, bytes, Allowed]], fails: Failures) -> None:
    for name, data, allowed in cases:
        answers = raw(port, data)
        fails.check(name, answers[0] if answers else None, allowed)


def test_replica_raw_socket(replica_port: int) -> None:
    fails = Failures()
    run_raw_table(replica_port, RAW_CASES, fails)
    # Three pipelined requests: three answers, in order.
    answers = raw(replica_port, GOOD_INFER * 3, answers=3)
    assert [a.status for a in answers] == [200, 200, 200]
    # An endless header line is cut off with a 431, not buffered (it used to be).
    fails.check("streamed header", _stream_header(replica_port))
    fails.assert_none()
    replica_still_serves(replica_port)


def _stream_header(port: int, megabytes: int = 8) -> Answer | None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\nx-big: ")
        with contextlib.suppress(OSError):
            for _ in range(megabytes):
                s.sendall(b"a" * (1 << 20))
        with s.makefile("rb") as f, contextlib.suppress(ConnectionResetError):
            return _read_answer(f, False)
    return None


def test_replica_seeded_random_mutations(replica_port: int) -> None:
    rng = random.Random(20240611)
    fails = Failures()
    v1 = {"instances": [[5.1, 3.5, 1.4, 0.2], [6.2, 3.4, 5.4, 2.3]]}
    v2 = {
        "id": "r1",
        "inputs": [
            {"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]},
            {"name": "y", "shape": [2, 2], "datatype": "FP64", "data": [[1, 2], [3, 4]]},
        ],
        "outputs": [{"name": "output-0", "parameters": {"binary_data": False}}],
        "parameters": {"a": 1},
    }
    with httpx.Client(base_url=f"http://127.0.0.1:{replica_port}", timeout=10) as c:
        for _ in range(150):
            body = json.dumps(mutate(v2, rng)).encode()
            for model in ("iris", "echo"):
                r = c.post(f"/v2/models/{model}/infer", content=body)
                fails.check_httpx(f"V2 {model} {body[:200]!r}", r, ok_or_client_error)
            body = json.dumps(mutate(v1, rng)).encode()
            r = c.post("/v1/models/iris:predict", content=body)
            fails.check_httpx(f"V1 iris {body[:200]!r}", r, ok_or_client_error)
            body = byte_mutate(V2_OK_BYTES, rng)
            r = c.post("/v2/models/iris/infer", content=body)
            fails.check_httpx(f"V2 bytes {body[:200]!r}", r, ok_or_client_error)
    fails.assert_none()
    replica_still_serves(replica_port)


# --- the router in front of a real replica process ---------------------------------------


def _sklearn_isvc(name: str, model_dir: Path) -> str:
    model = {
        "modelFormat": {"name": "sklearn"},
        "protocolVersion": "v2",
        "storageUri": str(model_dir),
    }
    return json.dumps(
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": name},
            "spec": {"predictor": {"model": model}},
        }
    )


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RouterThread, Any]]:
    model_dir = tmp_path_factory.mktemp("fuzz-model") / "iris"
    model_dir.mkdir()
    joblib.dump(LogisticRegression(max_iter=500).fit(X_TRAIN, Y_TRAIN), model_dir / "model.joblib")
    port = free_port()
    cmd = [
        sys.executable, "-m", "serving.replica", "--isvc-json", _sklearn_isvc("iris", model_dir),
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        "--max-body-bytes", str(1 << 20),
    ]  # fmt: skip
    with running(cmd, cwd=REPO) as proc:
        wait_http_ok(f"http://127.0.0.1:{port}/v2/health/ready", timeout=60, proc=proc)
        router = Router(token="s3cret", max_body_bytes=1 << 16)
        router.add(RoutedService("iris", pool("iris", "default", port)))
        with RouterThread(router) as rt:
            yield rt, proc


AUTH = {"authorization": "Bearer s3cret"}


def with_auth(data: bytes) -> bytes:
    """``data`` with the router's bearer token after its request line (if it has one)."""
    line, sep, rest = data.partition(b"\r\n")
    if not sep or b" HTTP/1." not in line:
        return data
    return line + b"\r\nauthorization: Bearer s3cret" + sep + rest


def router_still_serves(rt: RouterThread, proc: Any) -> None:
    r = httpx.post(f"{rt.url}/v2/models/iris/infer", json=V2_OK, headers=AUTH, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["x-hyperflow-revision"] == "default"
    assert proc.poll() is None, "the replica died"


def test_router_raw_socket(routed: tuple[RouterThread, Any]) -> None:
    rt, proc = routed
    fails = Failures()
    run_raw_table(rt.port, [(n, with_auth(d), a) for n, d, a in RAW_CASES], fails)
    run_raw_table(rt.port, RAW_CASES[:12], fails)  # without the token: 401s and 400s
    fails.check("streamed header", _stream_header(rt.port))
    fails.assert_none()
    router_still_serves(rt, proc)


def test_router_connection_edge_cases(routed: tuple[RouterThread, Any]) -> None:
    rt, proc = routed
    good = with_auth(GOOD_INFER)
    # Pipelining, then a malformed request: the earlier ones are answered first.
    answers = raw(rt.port, good * 3 + b"GARBAGE\r\n\r\n", answers=4)
    assert [a.status for a in answers] == [200, 200, 200, 400]
    # A client that half-closes after its request still gets the answer.
    [answer] = raw(rt.port, good, shut=True)
    assert answer.status == 200
    [answer] = raw(rt.port, good * 2, shut=True, answers=2)[-1:]
    assert answer.status == 200
    # A truncated body, then EOF: a 400 that says so (as a replica answers), nothing breaks.
    [answer] = raw(rt.port, good[:-10], shut=True)
    assert answer.status == 400 and b"incomplete request" in answer.body
    # An upgrade request gets exactly one answer, and a body is never forwarded without it.
    upgrade = with_auth(
        b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: h2c\r\n\r\n"
    )
    answers = raw(rt.port, upgrade + good, answers=2)
    assert [a.status for a in answers] == [200] and answers[0].headers[b"connection"] == b"close"
    body_upgrade = good.replace(b"host: fuzz", b"host: fuzz\r\nconnection: upgrade\r\nupgrade: h2c")
    answers = raw(rt.port, body_upgrade, answers=2)
    assert [a.status for a in answers] == [400]
    # HEAD: the head only.
    [answer] = raw(rt.port, with_auth(request("HEAD", "/v2/health/live")), head_only=True)
    assert answer.status == 200
    router_still_serves(rt, proc)


def test_router_forwards_malformed_bodies_to_4xx(routed: tuple[RouterThread, Any]) -> None:
    rt, proc = routed
    fails = Failures()
    with httpx.Client(base_url=rt.url, timeout=10, headers=AUTH) as c:
        for body in V2_BODIES[:40]:
            if len(body) > 1 << 16:
                continue
            r = c.post("/v2/models/iris/infer", content=body)
            fails.check_httpx(f"V2 {body[:120]!r}", r, ok_or_client_error)
        for body in V1_BODIES:
            if len(body) > 1 << 16:
                continue
            r = c.post("/v1/models/iris:predict", content=body)
            fails.check_httpx(f"V1 {body[:120]!r}", r, ok_or_client_error)
        for path in [
            "/v2/models/nope/infer", "/v2/models/%2e%2e/infer", "/v2/models/%C3%A9/ready",
            "/v2/models/" + "a" * 3000 + "/ready", "/v1/models/iris/x:predict", "/v1/models/:predict",
            "/v2/models//infer", "/v2/models/iris%2f..%2f..%2fmetrics", "/v2/nothing", "/v3",
            "/v2/models/iris/infer?%ff=%00", "/v1/models/iris:predict/../../x",
        ]:  # fmt: skip
            for method in ("GET", "POST", "DELETE", "OPTIONS"):
                r = c.request(method, path, content=b"{}" if method == "POST" else None)
                fails.check_httpx(f"{method} {path[:80]}", r, ok_or_client_error)
        r = c.post("/v2/models/iris/infer", content=b"x" * 70_000)
        assert r.status_code == 413 and "error" in r.json()
    for auth in ["Bearer", "Basic s3cret", "bearer s3cret x", "Bearer s3cre", "s3cret"]:
        r = httpx.post(
            f"{rt.url}/v2/models/iris/infer", json=V2_OK, headers={"authorization": auth}
        )
        fails.check_httpx(f"auth {auth!r}", r)
    fails.assert_none()
    router_still_serves(rt, proc)


# --- the suggestion service ------------------------------------------------------------

EXP = f"{PREFIX}/experiments/ns/exp"


@pytest.fixture(scope="module")
def suggestion_url() -> Iterator[str]:
    port = free_port()
    config = server_config(suggestion_app(max_body=1 << 16), "127.0.0.1", port)
    with uvicorn_thread(config):
        url = f"http://127.0.0.1:{port}"
        wait_http_ok(f"{url}{PREFIX}/healthz", timeout=20)
        yield url


def test_suggestion_service_bodies(suggestion_url: str) -> None:
    fails = Failures()
    exp = make_experiment("random").to_dict()
    with httpx.Client(base_url=suggestion_url, timeout=10) as c:
        assert c.post(f"{EXP}/restore", json={"experiment": exp}).status_code == 200
        r = c.post(f"{EXP}/suggest", json={"count": 2, "known": 0, "told": 0})
        assert r.status_code == 200, r.text
        sugg = r.json()["suggestions"]
        pending = [{**s, "phase": "Running"} for s in sugg]
        restore = {"experiment": exp, "trials": pending}

        def post(path: str, body: bytes, headers: dict[str, str] | None = None) -> None:
            assert c.post(f"{EXP}/restore", json=restore).status_code == 200
            r = c.post(path, content=body, headers=headers or {"content-type": "application/json"})
            fails.check_httpx(f"{path} {body[:150]!r}", r, ok_or_client_error)

        name = sugg[0]["trialName"]
        known = {"known": 2, "told": 0}
        for body in [
            b"", b"null", b"1", b"[]", b"{}", b"{", b"[" * 100_000, b'{"count": NaN}', b"\xff\xfe",
            b'{"count": 1e3, "known": 2, "told": 0}', b'{"count": true, "known": 2, "told": 0}',
            b'{"count": null, "known": 2, "told": 0}', b'{"count": 1, "known": 1e999, "told": 0}',
            b'{"count": 1, "known": 1' + b"0" * 30 + b', "told": 0}', b'{"count": 9223372036854775807, "known": 2, "told": 0}',
            b'{"count": 0, "known": "2", "told": 0}', b'{"count": 0, "known": 2, "told": 0, "told": 1}',
        ]:  # fmt: skip
            post(f"{EXP}/suggest", body)
        results: list[Any] = [
            None, 1, [], {}, {"trialName": name}, {"trialName": name, "phase": None},
            {"trialName": name, "phase": "Succeeded", "objectiveValue": "x"},
            {"trialName": name, "phase": "Succeeded", "objectiveValue": 1, "assignments": 5},
            {"trialName": name, "phase": "Exploded", "objectiveValue": 1},
            {"trialName": "", "phase": "Succeeded", "objectiveValue": 1},
            {"trialName": "new", "phase": "Succeeded", "objectiveValue": 1, "assignments": {}},
            {"trialName": "new", "phase": "Succeeded", "objectiveValue": 1, "assignments": {"x": "abc"}},
            {"trialName": "new", "phase": "Running", "assignments": sugg[1]["assignments"]},
            {"trialName": "new", "phase": "Failed", "assignments": {**sugg[1]["assignments"], "x": 1e308}},
        ]  # fmt: skip
        for intermediate in [5, [5], [[1]], [["a", 1]], [[1e308, 1]], [[-5, 1]], [[1, "nan"]],
                             [[1, 1e308], [1, 2]], {"a": 1}, "ab", [[None, 1]], [{"a": 1}]]:  # fmt: skip
            results.append(
                {"trialName": name, "phase": "Succeeded", "objectiveValue": 1,
                 "intermediate": intermediate}
            )  # fmt: skip
        for result in results:
            post(f"{EXP}/report", json.dumps({"result": result, **known}).encode())
            # The same trial restored as history goes through the same checks.
            trials = [result] if isinstance(result, dict) else result
            body = json.dumps({"experiment": exp, "trials": trials}).encode()
            r = c.post(f"{EXP}/restore", content=body)
            fails.check_httpx(f"restore {body[-200:]!r}", r, ok_or_client_error)
        for fields in [
            {"trialName": name, "step": 1, "value": 1e308}, {"trialName": name, "step": 1.5, "value": 1},
            {"trialName": name, "step": 2**63, "value": 1}, {"trialName": name, "step": -1, "value": 1},
            {"trialName": name, "step": 3, "value": 10**30}, {"trialName": name, "step": 3, "value": "1"},
            {"trialName": 5, "step": 1, "value": 1}, {"trialName": "nope", "step": 1, "value": 1},
            {"trialName": name, "step": True, "value": 1}, {"trialName": name, "value": 1},
        ]:  # fmt: skip
            post(f"{EXP}/intermediate", json.dumps({**fields, **known}).encode())
        for experiment in [
            None, 1, [], {}, {"metadata": None}, {**exp, "spec": None},
            {**exp, "spec": {**exp["spec"], "maxTrialCount": -1}},
            {**exp, "spec": {**exp["spec"], "maxTrialCount": 10**30}},
            {**exp, "spec": {**exp["spec"], "parameters": []}},
            {**exp, "spec": {**exp["spec"], "parameters": 5}},
            {**exp, "spec": {**exp["spec"], "algorithm": {"algorithmName": "nope"}}},
            {**exp, "spec": {**exp["spec"], "objective": None}},
            {**exp, "metadata": {**exp["metadata"], "name": "other"}},
        ]:  # fmt: skip
            r = c.post(f"{EXP}/restore", json={"experiment": experiment})
            fails.check_httpx(f"restore experiment {str(experiment)[:150]}", r, ok_or_client_error)
        r = c.post(f"{EXP}/restore", json={"experiment": exp, "trials": 5})
        fails.check_httpx("restore trials 5", r)
        for ns, nm in [
            ("..", ".."),
            ("%2e%2e", "x"),
            ("a" * 3000, "b"),
            ("é", "ü"),
            ("ns", "e%00"),
        ]:
            r = c.post(f"{PREFIX}/experiments/{ns}/{nm}/restore", json={"experiment": exp})
            fails.check_httpx(f"restore at {ns[:20]}/{nm}", r)
            fails.check_httpx(
                f"delete {ns[:20]}/{nm}",
                c.delete(f"{PREFIX}/experiments/{ns}/{nm}"),
                ok_or_client_error,
            )
        for method in ["GET", "PUT", "PATCH", "OPTIONS", "DELETE"]:
            fails.check_httpx(f"{method} suggest", c.request(method, f"{EXP}/suggest"))
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
        ]:
            post(f"{EXP}/suggest", b'{"count": 0, "known": 2, "told": 0}', {"content-type": ct})
        r = c.post(f"{EXP}/restore", content=b"x" * 70_000)
        assert r.status_code == 413 and "error" in r.json()
        r = c.post(f"{EXP}/suggest", json={"count": 2**62, "known": 2, "told": 0})
        assert r.status_code == 400 and "count" in r.json()["error"]
        rng = random.Random(7)
        valid = {"result": {**sugg[0], "phase": "Succeeded", "objectiveValue": 0.5,
                            "intermediate": [[1, 0.7], [2, 0.6]]}, **known}  # fmt: skip
        for _ in range(60):
            post(f"{EXP}/report", json.dumps(mutate(valid, rng)).encode())
        assert c.get(f"{PREFIX}/healthz").json() == {"status": "ok"}
    fails.assert_none()


def test_suggestion_service_raw_socket(suggestion_url: str) -> None:
    port = int(suggestion_url.rsplit(":", 1)[1])
    fails = Failures()
    health = f"{PREFIX}/healthz".encode()
    cases = [(n, d.replace(b"/v2/health/live", health), a) for n, d, a in RAW_CASES]
    run_raw_table(port, cases, fails)
    fails.check("streamed header", _stream_header(port))
    fails.assert_none()
    assert httpx.get(f"{suggestion_url}{PREFIX}/healthz").status_code == 200


# --- the push receiver -------------------------------------------------------------------


@pytest.fixture
def push() -> Iterator[tuple[PushReceiver, int, str]]:
    received: list[Any] = []
    receiver = PushReceiver(lambda trial, obs, key: received.append(obs) is None, max_body=1 << 16)
    url = receiver.start()
    token = receiver.register("t1")
    try:
        yield receiver, int(url.rsplit(":", 1)[1]), token
    finally:
        receiver.stop()


def test_push_receiver(push: tuple[PushReceiver, int, str]) -> None:
    receiver, port, token = push
    receiver.register("é/..", "tok2")
    fails = Failures()
    path = "/v1/trials/t1/observations"

    def post(body: bytes, target: str = path, **headers: str) -> bytes:
        h = {"authorization": f"Bearer {token}", "content-type": "application/json", **headers}
        return request("POST", target, body, {k.replace("_", "-"): v for k, v in h.items()})

    def obs(**kw: Any) -> bytes:
        return json.dumps({"observations": [{"name": "loss", "value": 1.0, **kw}]}).encode()

    good = post(obs())
    big = b"1" + b"0" * 400
    cases: list[tuple[str, bytes, Allowed]] = [
        ("deep", post(b"[" * 30_000 + b"]" * 30_000), client_error),
        ("deep inside", post(b'{"observations": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"), client_error),
        ("int value too big for a float", post(b'{"observations": [{"name": "loss", "value": ' + big + b"}]}"), client_error),
        ("int timestamp too big", post(b'{"observations": [{"name": "loss", "value": 1, "timestamp": ' + big + b"}]}"), client_error),
        ("5000 digits", post(b'{"observations": [{"name": "loss", "value": 1' + b"0" * 5000 + b"}]}"), client_error),
        ("step past int64", post(obs(step=2**70)), client_error),
        ("lone surrogate name", post(obs().replace(b'"loss"', b'"\\ud800"')), client_error),
        ("NaN", post(b'{"observations": [{"name": "loss", "value": NaN}]}'), client_error),
        ("Infinity", post(b'{"observations": [{"name": "loss", "value": Infinity}]}'), client_error),
        ("1e999", post(b'{"observations": [{"name": "loss", "value": 1e999}]}'), client_error),
        ("invalid UTF-8", post(b'{"observations": [{"name": "\xff", "value": 1}]}'), client_error),
        ("value as string", post(obs(value="1")), client_error),
        ("value true", post(obs(value=True)), client_error),
        ("step 1.5", post(obs(step=1.5)), client_error),
        ("timestamp string", post(obs(timestamp="now")), client_error),
        ("empty name", post(obs(name="")), client_error),
        ("observations null", post(b'{"observations": null}'), client_error),
        ("observation 5", post(b'{"observations": [5]}'), client_error),
        ("duplicate key", post(b'{"observations": [], "observations": 5}'), client_error),
        ("empty body", post(b""), client_error),
        ("null", post(b"null"), client_error),
        ("truncated JSON", post(obs()[:-5]), client_error),
        ("no content-length", good.replace(b"content-length", b"x-length"), client_error),
        ("chunked", request("POST", path, b"", {"authorization": f"Bearer {token}", "transfer-encoding": "chunked"})[:-2] + b"\r\n5\r\nhello\r\n0\r\n\r\n", client_error),
        ("content-length -1", good.replace(b"content-length: ", b"content-length: -"), client_error),
        ("content-length huge", good.replace(b"content-length: ", b"content-length: 999999999999"), client_error),
        ("content-length superscript", good.replace(b"content-length: ", b"content-length: \xb2"), client_error),
        ("over the limit", post(b" " * 70_000), client_error),
        ("bad idempotency key", post(obs(), idempotency_key="a b"), client_error),
        ("long idempotency key", post(obs(), idempotency_key="a" * 65), client_error),
        ("non-ASCII idempotency key", good.replace(b"content-type", b"idempotency-key: \xff\r\ncontent-type"), client_error),
        ("no token", request("POST", path, obs()), client_error),
        ("wrong token", post(obs(), authorization="Bearer nope"), client_error),
        ("non-ASCII token", good.replace(b"Bearer ", b"Bearer \xff"), client_error),
        ("unknown trial", post(obs(), "/v1/trials/nope/observations"), client_error),
        ("odd trial name", post(obs(), "/v1/trials/%C3%A9%2F%2E%2E/observations", authorization="Bearer tok2"), ok_or_client_error),
        ("bad percent-encoding", post(obs(), "/v1/trials/%ff%zz/observations"), client_error),
        ("other path", post(obs(), "/v1/trials/t1/../../observations"), client_error),
        ("query", post(obs(), path + "?x=%ff&&"), ok_or_client_error),
        ("long target", post(obs(), "/v1/trials/" + "a" * 70_000 + "/observations"), client_error),
        ("huge header", post(obs(), x_big="a" * 70_000), client_error),
        ("many headers", post(obs(), **{f"x_{i}": "v" for i in range(200)}), client_error),
        ("absolute-form", post(obs(), "http://x" + path), client_error),
        ("GET", request("GET", path), client_error),
        ("PUT", request("PUT", path, obs()), client_error),
        ("DELETE", request("DELETE", path), client_error),
        ("OPTIONS", request("OPTIONS", path), client_error),
        ("BREW", request("BREW", path), client_error),
        ("bad request line", b"GARBAGE\r\n\r\n", client_error),
        ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", client_error),
        ("HTTP/9.9", good.replace(b"HTTP/1.1", b"HTTP/9.9"), client_error),
        ("HTTP/1.0", good.replace(b"HTTP/1.1", b"HTTP/1.0"), ok_or_client_error),
        ("expect: 100-continue", post(obs(), expect="100-continue"), ok_or_client_error),
        ("text/plain", post(obs(), content_type="text/plain"), ok_or_client_error),
    ]  # fmt: skip
    run_raw_table(port, cases, fails)
    [head] = raw(port, request("HEAD", path), head_only=True)
    assert head.status == 405
    fails.assert_none()
    assert raw(port, good)[0].status == 200  # still serving
