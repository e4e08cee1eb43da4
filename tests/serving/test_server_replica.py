"""The replica process: stays up and not ready with the reason when the model can't load;
exits cleanly on SIGTERM; an invalid spec exits 2 before binding."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.serving.test_triton_client import replica_cmd, sklearn_isvc
from tests.util import REPO, free_port, running, wait_http_ok


def test_load_failure_keeps_replica_live_not_ready(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = replica_cmd(sklearn_isvc("broken", empty), port)
    with running(cmd, cwd=REPO, stderr=subprocess.PIPE) as proc:
        wait_http_ok(f"{base}/v2/health/live", timeout=60, proc=proc)

        def failed() -> bool:
            r = httpx.get(f"{base}/v2/models/broken/ready")
            return r.status_code == 503 and "failed to load" in r.json()["error"]

        from tests.util import wait_until

        wait_until(failed, timeout=30)
        r = httpx.get(f"{base}/v2/health/ready")
        assert r.status_code == 503 and r.json()["ready"] is False
        assert "broken" in r.json()["error"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert b"failed to load" in proc.stderr.read()  # type: ignore[union-attr]


def test_invalid_spec_exits_2() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "serving.replica",
            "--isvc-json",
            '{"kind": "InferenceService"}',
            "--port",
            "1",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "invalid InferenceService" in proc.stderr


def test_malformed_http_is_a_json_400_from_the_replica(tmp_path: Path) -> None:
    """What uvicorn answers itself (unparsable requests) is JSON too; a WebSocket upgrade
    is not attempted (plain HTTP, answered by the app)."""
    import json
    import socket

    empty = tmp_path / "empty"
    empty.mkdir()
    port = free_port()
    with running(replica_cmd(sklearn_isvc("m", empty), port), cwd=REPO) as proc:
        wait_http_ok(f"http://127.0.0.1:{port}/v2/health/live", timeout=60, proc=proc)
        upgrade = (
            b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\n"
            b"upgrade: websocket\r\nsec-websocket-version: 13\r\n\r\n"
        )
        cases = {
            b"NOT HTTP AT ALL\r\n\r\n": 400,
            b"POST /v2/models/m/infer HTTP/1.1\r\nhost: x\r\ncontent-length: x\r\n\r\n": 400,
            upgrade: 200,
        }
        for request, status in cases.items():
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(request)
                data = b""
                while b"\r\n\r\n" not in data or not data.endswith(b"}"):
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 %d" % status), (request[:40], data[:300])
            assert b"content-type: application/json" in head.lower(), data[:300]
            assert json.loads(body), data[:300]


REPLICA = [sys.executable, "-m", "serving.replica"]


def test_non_loopback_replica_needs_a_token() -> None:
    proc = subprocess.run(
        [*REPLICA, "--isvc-json", "{}", "--host", "0.0.0.0", "--port", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HYPERFLOW_REPLICA_TOKEN": ""},
    )
    assert proc.returncode == 2
    assert "requires a token" in proc.stderr


def test_replica_token_is_required_except_on_health_probes() -> None:
    from serving.server import create_app
    from tests.serving.test_dataplane_support import SklearnModel, loaded, run

    app = create_app(loaded(SklearnModel("iris")), token="s3cret")
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]}

    async def go(c: httpx.AsyncClient) -> list[int]:
        ok = {"authorization": "Bearer s3cret"}
        return [
            (await c.get("/v2/health/live")).status_code,
            (await c.get("/v2/health/ready")).status_code,
            (await c.get("/v2/models/iris")).status_code,
            (await c.post("/v2/models/iris/infer", json=body)).status_code,
            (
                await c.post("/v2/models/iris/infer", json=body, headers={"authorization": "x"})
            ).status_code,
            (await c.post("/v2/models/iris/infer", json=body, headers=ok)).status_code,
            (await c.get("/metrics", headers=ok)).status_code,
        ]

    assert run(go, app) == [200, 200, 401, 401, 401, 200, 200]
