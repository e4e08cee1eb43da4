"""Client errors are 4xx, through a real replica process and the router on loopback.

What the request got wrong is a 400 naming the input (a V2 shape past numpy's dimension
limit, BYTES data for a numeric model), as for a short body whose client half-closed;
the custom example serves V1 (``instances`` or ``inputs``) and V2 as kserve.Model does;
the router answers KServe's V1 liveness ``GET /``.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import joblib
import pytest
from sklearn.linear_model import LogisticRegression

from serving.router import RoutedService, Router
from serving.spec import load_inference_services
from tests.serving.test_dataplane_support import X_TRAIN, Y_TRAIN
from tests.serving.test_router import RouterThread, pool
from tests.util import REPO, free_port, running, wait_http_ok

EXAMPLES = REPO / "examples" / "serving"


def _replica(isvc: dict[str, Any], base_dir: Path) -> list[str]:
    return [
        sys.executable, "-m", "serving.replica", "--isvc-json", json.dumps(isvc),
        "--base-dir", str(base_dir), "--log-level", "warning",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    """Two real replica processes (sklearn, the custom example) behind one router."""
    model_dir = tmp_path_factory.mktemp("client-errors") / "iris"
    model_dir.mkdir()
    joblib.dump(LogisticRegression(max_iter=500).fit(X_TRAIN, Y_TRAIN), model_dir / "m.joblib")
    sklearn_isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "iris"},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "."}}},
    }
    (custom,) = load_inference_services(EXAMPLES / "custom.yaml")
    iris_port, rules_port = free_port(), free_port()
    with (
        running([*_replica(sklearn_isvc, model_dir), "--port", str(iris_port)], cwd=REPO) as a,
        running([*_replica(custom.to_dict(), EXAMPLES), "--port", str(rules_port)], cwd=REPO) as b,
    ):
        wait_http_ok(f"http://127.0.0.1:{iris_port}/v2/health/ready", timeout=60, proc=a)
        wait_http_ok(f"http://127.0.0.1:{rules_port}/v2/health/ready", timeout=60, proc=b)
        router = Router(token="s3cret")
        router.add(RoutedService("iris", pool("iris", "default", iris_port)))
        router.add(RoutedService("iris-rules", pool("iris-rules", "default", rules_port)))
        with RouterThread(router) as rt:
            yield {"router": rt.port, "iris": iris_port, "rules": rules_port}


AUTH = {"authorization": "Bearer s3cret"}


def _both(stack: dict[str, int], replica: str) -> list[httpx.Client]:
    """A client of the replica itself and one of the router."""
    return [
        httpx.Client(base_url=f"http://127.0.0.1:{stack[replica]}", timeout=30),
        httpx.Client(base_url=f"http://127.0.0.1:{stack['router']}", headers=AUTH, timeout=30),
    ]


def test_request_faults_are_400s_naming_the_input(stack: dict[str, int]) -> None:
    too_deep = {"name": "x", "shape": [1] * 65, "datatype": "FP64", "data": [1.0]}
    strings = {"name": "x", "shape": [1, 4], "datatype": "BYTES", "data": ["a", "b", "c", "d"]}
    for client in _both(stack, "iris"):
        with client:
            r = client.post("/v2/models/iris/infer", json={"inputs": [too_deep]})
            assert r.status_code == 400, r.text
            assert r.json()["error"].startswith("input 'x': shape has 65 dimensions")
            r = client.post("/v2/models/iris/infer", json={"inputs": [strings]})
            assert r.status_code == 400, r.text
            assert "input 'x'" in r.json()["error"] and "BYTES" in r.json()["error"]
            # Well-formed numeric input still predicts.
            ok = {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [6.2, 3.4, 5.4, 2.3]}
            assert client.post("/v2/models/iris/infer", json={"inputs": [ok]}).status_code == 200


def test_custom_example_serves_v1_and_v2(stack: dict[str, int]) -> None:
    rows = [[5.1, 3.5, 1.4, 0.2], [6.0, 3.4, 4.5, 1.6], [6.7, 3.0, 5.2, 2.3]]
    flat = [v for row in rows for v in row]
    for client in _both(stack, "rules"):
        with client:
            tensor = {"name": "input-0", "shape": [3, 4], "datatype": "FP64", "data": flat}
            r = client.post("/v2/models/iris-rules/infer", json={"id": "7", "inputs": [tensor]})
            assert r.status_code == 200, r.text
            out = r.json()
            assert out["id"] == "7"
            assert out["outputs"] == [
                {"name": "output-0", "shape": [3], "datatype": "INT64", "data": [0, 1, 2]}
            ]
            for key in ("instances", "inputs"):
                r = client.post("/v1/models/iris-rules:predict", json={key: rows})
                assert r.status_code == 200, r.text
                assert r.json() == {"predictions": [0, 1, 2]}
            # What the request got wrong stays a 400 in a custom model too.
            r = client.post("/v1/models/iris-rules:predict", json={"instances": [[1, 2], [3]]})
            assert r.status_code == 400 and '"instances"' in r.json()["error"]


def test_router_answers_kserve_v1_liveness(stack: dict[str, int]) -> None:
    # kserve's InferenceRESTClient.is_server_live (V1): GET {base}/ -> {"status": "alive"}.
    for port in (stack["router"], stack["iris"]):
        r = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)  # no token: a probe
        assert r.status_code == 200 and r.json()["status"].lower() == "alive"


def _half_closed(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def test_short_body_then_half_close_is_answered_400(stack: dict[str, int]) -> None:
    body = b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]}'
    head = (
        b"POST /v2/models/iris/infer HTTP/1.1\r\nhost: x\r\nauthorization: Bearer s3cret\r\n"
        b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)
    )
    answers = {}
    for who in ("iris", "router"):
        raw = _half_closed(stack[who], head + body[:20])
        status_line, _, rest = raw.partition(b"\r\n")
        assert status_line.startswith(b"HTTP/1.1 400"), (who, raw)
        answers[who] = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert answers["iris"] == answers["router"]
    assert answers["iris"]["error"] == (
        "incomplete request: the client closed its side of the connection after 20 of the "
        f"{len(body)} body bytes its Content-Length announced"
    )
    # Both still serve.
    for client in _both(stack, "iris"):
        with client:
            assert client.get("/v2/health/ready").status_code == 200
