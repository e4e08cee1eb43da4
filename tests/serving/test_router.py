"""The router on a real port in front of real upstream processes on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from serving.router import RevisionPool, RoutedService, Router, target_namespace
from serving.router.server import router_server
from tests.util import free_port, running, wait_http_ok, wait_until

UPSTREAM = Path(__file__).with_name("test_router_upstream.py")


@contextlib.contextmanager
def upstream(
    name: str, revision: str = "default", env: dict[str, str] | None = None
) -> Iterator[int]:
    port = free_port()
    isvc = json.dumps({"metadata": {"name": name}})
    args = [sys.executable, str(UPSTREAM), "--isvc-json", isvc, "--revision", revision]
    with running([*args, "--port", str(port)], env=env) as proc:
        wait_http_ok(f"http://127.0.0.1:{port}/v2/health/live", proc=proc)
        yield port


class RouterThread:
    """The router's server on its own loop in a thread (tests drive it over HTTP)."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.server = router_server(router, "127.0.0.1", 0)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def call(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the router's loop (pools are not thread-safe)."""
        self.loop.call_soon_threadsafe(fn)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> RouterThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def pool(name: str, revision: str, *ports: int, **kw: object) -> RevisionPool:
    p = RevisionPool(name, revision, **kw)  # type: ignore[arg-type]
    p.set_endpoints([("127.0.0.1", port) for port in ports])
    return p


@pytest.fixture(scope="module")
def echo_ports() -> Iterator[tuple[int, int, int]]:
    slow = {"UPSTREAM_SLEEP": "0.05"}
    with (
        upstream("echo") as a,
        upstream("echo") as b,
        upstream("echo", "canary") as c,
        upstream("slow", env=slow) as s1,
        upstream("slow", env=slow) as s2,
    ):
        yield a, b, c, s1, s2  # type: ignore[misc]


def test_routes_v1_v2_by_name_and_answers_locally(echo_ports: tuple[int, ...]) -> None:
    a, b, _, _, _ = echo_ports
    router = Router()
    router.add(RoutedService("echo", pool("echo", "default", a, b)))
    with RouterThread(router) as rt, httpx.Client(base_url=rt.url) as c:
        r = c.post("/v2/models/echo/infer?x=1", content=b'{"inputs": []}')
        assert r.status_code == 200, r.text
        assert r.headers["x-hyperflow-revision"] == "default"
        assert r.headers["x-upstream"] == "1"
        assert r.json()["path"] == "/v2/models/echo/infer" and r.json()["query"] == "x=1"
        r = c.post("/v1/models/echo:predict", json={"instances": [[1, 2]]})
        assert r.status_code == 200 and r.json()["path"] == "/v1/models/echo:predict"
        assert c.get("/v1/models/echo").json()["method"] == "GET"
        r = c.post("/v2/models/nope/infer", content=b"{}")
        assert r.status_code == 404 and "nope" in r.json()["error"]
        assert c.get("/v1/models/nope").status_code == 404
        assert c.get("/elsewhere").json() == {"error": "no route for /elsewhere"}
        assert c.get("/v1/models").json() == {"models": ["echo"]}
        assert c.get("/v2/health/live").json() == {"live": True}
        assert c.get("/v2/health/ready").json() == {"ready": True}
        # Binary tensor bodies pass through (next test): advertised as the replicas do.
        assert c.get("/v2").json()["extensions"] == ["binary_tensor_data"]
        metrics = c.get("/metrics").text
        assert (
            'hyperflow_router_requests_total{code="200",namespace="default",revision="default",service="echo"}'
            in metrics
        )
        assert (
            'hyperflow_router_ready_replicas{namespace="default",revision="default",service="echo"} 2.0'
            in metrics
        )
        assert "hyperflow_router_request_duration_seconds_bucket" in metrics
        # What the router answers itself is GET (and HEAD) only, as the protocol has it.
        for path in ("/v2", "/v2/health/ready", "/v1/models", "/metrics", "/"):
            r = c.request("DELETE", path)
            assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD", (path, r.text)
        assert c.post("/elsewhere").status_code == 404  # no route is no route, whatever the method


def test_namespaces_kserve_path_template_and_plain_paths(echo_ports: tuple[int, ...]) -> None:
    """``/serving/NS/NAME/...`` reaches NAME of namespace NS (the prefix is stripped); the
    plain paths reach the default namespace's services only."""
    a, _, c_port, _, _ = echo_ports
    router = Router()
    router.add(RoutedService("echo", pool("echo", "default", a)))  # the default namespace
    router.add(RoutedService("echo", pool("echo", "canary", c_port, namespace="team-a")), "team-a")
    with RouterThread(router) as rt, httpx.Client(base_url=rt.url) as c:
        r = c.post("/serving/team-a/echo/v2/models/echo/infer?x=1", content=b"{}")
        assert r.status_code == 200, r.text
        assert (r.json()["path"], r.json()["query"]) == ("/v2/models/echo/infer", "x=1")
        assert r.headers["x-hyperflow-revision"] == "canary"
        r = c.post("/serving/default/echo/v1/models/echo:predict", json={"instances": [[1]]})
        assert r.headers["x-hyperflow-revision"] == "default"
        assert r.json()["path"] == "/v1/models/echo:predict"
        assert c.post("/v2/models/echo/infer", content=b"{}").headers["x-hyperflow-revision"] == (
            "default"
        )
        for path in (
            "/serving/team-b/echo/v2/models/echo/infer",
            "/serving/team-a/nope/v2/models/nope/infer",
            "/serving/team-a/echo",
            "/serving/team-a/%65cho/v2/models/echo/infer",
        ):
            r = c.post(path, content=b"{}")
            assert r.status_code == 404 and "error" in r.json(), path
        assert c.get("/v1/models").json() == {"models": ["echo"]}
        metrics = c.get("/metrics").text
        assert (
            'hyperflow_router_ready_replicas{namespace="team-a",revision="canary",service="echo"} 1.0'
            in metrics
        )
        removed = router.remove("echo", "team-a")
        assert removed is not None and router.remove("echo", "team-a") is None
        assert c.post("/serving/team-a/echo/v2/models/echo/infer", content=b"{}").status_code == 404
        assert c.post("/v2/models/echo/infer", content=b"{}").status_code == 200
    assert target_namespace("/serving/team-a/echo/v2/models/echo/infer") == "team-a"
    assert target_namespace("/v2/models/echo/infer") == "default"
    assert target_namespace("/v1/models") == "default"
    assert target_namespace("/v2/health/ready") is None and target_namespace("/metrics") is None


def test_body_and_binary_headers_pass_through_unchanged(echo_ports: tuple[int, ...]) -> None:
    a = echo_ports[0]
    router = Router(max_body_bytes=1 << 20)
    router.add(RoutedService("echo", pool("echo", "default", a)))
    body = bytes(range(256)) * 1000
    with RouterThread(router) as rt, httpx.Client(base_url=rt.url) as c:
        r = c.post(
            "/v2/models/echo/infer",
            content=body,
            headers={
                "inference-header-content-length": "17",
                "content-type": "application/octet-stream",
            },
        )
        out = r.json()
        assert out["body_len"] == len(body)
        assert out["body_sha"] == hashlib.sha256(body).hexdigest()
        assert out["binary_header"] == "17"
        # Chunked upload (no content-length) is re-framed, not altered.
        r = c.post("/v2/models/echo/infer", content=iter([body[:1000], body[1000:]]))
        assert r.json()["body_sha"] == hashlib.sha256(body).hexdigest()
        big = b"x" * ((1 << 20) + 1)
        r = c.post("/v2/models/echo/infer", content=big)
        assert r.status_code == 413 and "error" in r.json()
        # The router closes after a 413: it must say so, or the client reuses a dead socket.
        assert r.headers["connection"] == "close"
        r = c.post("/v2/models/echo/infer", content=iter([big[:10], big[10:]]))
        assert r.status_code == 413 and r.headers["connection"] == "close"
        assert c.get("/v2/health/live").status_code == 200  # a fresh connection


def test_canary_split_is_within_five_percent_over_2000_requests(
    echo_ports: tuple[int, ...],
) -> None:
    a, b, canary, _, _ = echo_ports
    router = Router()
    router.add(
        RoutedService(
            "echo", pool("echo", "default", a, b), pool("echo", "canary", canary), canary_percent=10
        )
    )
    served: Counter[str] = Counter()
    upstream_says: Counter[str] = Counter()

    async def drive() -> None:
        # In-process transport to the router (one loop, no thread hand-offs), real
        # sockets from the router to the replicas: fast, and the split is what is tested.
        transport = httpx.ASGITransport(app=router)
        async with httpx.AsyncClient(transport=transport, base_url="http://router") as c:
            sem = asyncio.Semaphore(16)

            async def one() -> None:
                async with sem:
                    r = await c.post("/v2/models/echo/infer", content=b"{}")
                assert r.status_code == 200
                served[r.headers["x-hyperflow-revision"]] += 1
                upstream_says[r.json()["revision"]] += 1

            await asyncio.gather(*(one() for _ in range(2000)))
        router.close()

    asyncio.run(drive())
    assert served == upstream_says
    assert abs(served["canary"] / 2000 - 0.10) <= 0.05
    assert served["canary"] == 200  # the accumulator is exact per 100 requests


def test_least_in_flight_spreads_concurrent_requests(echo_ports: tuple[int, ...]) -> None:
    s1, s2 = echo_ports[3], echo_ports[4]
    router = Router()
    router.add(RoutedService("slow", pool("slow", "default", s1, s2)))
    ports: Counter[int] = Counter()

    async def drive() -> None:
        async with httpx.AsyncClient(base_url=rt.url) as c:
            rs = await asyncio.gather(
                *(c.post("/v2/models/slow/infer", content=b"{}") for _ in range(20))
            )
        for r in rs:
            ports[r.json()["port"]] += 1

    with RouterThread(router) as rt:
        asyncio.run(drive())
    assert set(ports) == {s1, s2}
    assert abs(ports[s1] - ports[s2]) <= 4


def test_token_required_and_stripped(echo_ports: tuple[int, ...]) -> None:
    a = echo_ports[0]
    router = Router(token="s3cret")
    router.add(RoutedService("echo", pool("echo", "default", a)))
    with RouterThread(router) as rt, httpx.Client(base_url=rt.url) as c:
        assert c.get("/v2/health/live").status_code == 200  # probes stay open
        r = c.post("/v2/models/echo/infer", content=b"{}")
        assert r.status_code == 401 and "token" in r.json()["error"]
        bad = {"authorization": "Bearer nope"}
        assert c.post("/v2/models/echo/infer", content=b"{}", headers=bad).status_code == 401
        good = {"authorization": "Bearer s3cret"}
        r = c.post("/v2/models/echo/infer", content=b"{}", headers=good)
        assert r.status_code == 200 and r.json()["has_auth"] is False
        assert c.get("/metrics").status_code == 401
    with pytest.raises(ValueError, match="token"):
        router_server(Router(), "0.0.0.0", free_port())


def test_activator_holds_until_a_replica_is_ready_and_times_out_otherwise(
    echo_ports: tuple[int, ...],
) -> None:
    a = echo_ports[0]
    pokes: list[str] = []
    cold = RevisionPool("echo", "default", on_cold=lambda p: pokes.append(p.service))
    never = RevisionPool("gone", "default", hold_timeout=0.3)
    router = Router()
    router.add(RoutedService("echo", cold))
    router.add(RoutedService("gone", never))

    async def drive() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=rt.url, timeout=10) as c:
            tasks = [
                asyncio.create_task(c.post("/v2/models/echo/infer", content=b"{}"))
                for _ in range(20)
            ]
            # Every request reached the router and is held there (not a fixed sleep: on a
            # loaded machine they may not have arrived yet, and would never be held).
            deadline = time.monotonic() + 30
            while cold.held < 20:
                assert time.monotonic() < deadline, f"{cold.held} of 20 requests held"
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
            assert not any(t.done() for t in tasks)  # held, not failed
            rt.call(lambda: cold.set_endpoints([("127.0.0.1", a)]))
            return list(await asyncio.gather(*tasks))

    with RouterThread(router) as rt:
        rs = asyncio.run(drive())
        assert [r.status_code for r in rs] == [200] * 20
        assert pokes
        r = httpx.post(f"{rt.url}/v2/models/gone/infer", content=b"{}")
        assert r.status_code == 503 and "no ready replica" in r.json()["error"]
        rt.call(lambda: never.set_status(starting=0, desired=1, failure="load failed: boom"))
        wait_until(lambda: never.failure is not None, timeout=5)
        r = httpx.get(f"{rt.url}/v2/models/gone/ready")
        assert r.status_code == 503 and r.json() == {"error": "load failed: boom"}


def test_dead_replica_is_skipped(echo_ports: tuple[int, ...]) -> None:
    a = echo_ports[0]
    router = Router()
    dead_port = free_port()  # nothing listens there
    router.add(RoutedService("echo", pool("echo", "default", dead_port, a)))
    with RouterThread(router) as rt, httpx.Client(base_url=rt.url) as c:
        for _ in range(6):
            r = c.post("/v2/models/echo/infer", content=b"{}")
            assert r.status_code == 200 and r.json()["port"] == a


def test_asgi_transport_serves_the_same_router(echo_ports: tuple[int, ...]) -> None:
    a = echo_ports[0]
    router = Router(max_body_bytes=100)

    async def main() -> None:
        router.add(RoutedService("echo", pool("echo", "default", a)))
        transport = httpx.ASGITransport(app=router)
        async with httpx.AsyncClient(transport=transport, base_url="http://router") as c:
            r = await c.post("/v2/models/echo/infer?q=1", content=b"{}")
            assert r.status_code == 200 and r.headers["x-hyperflow-revision"] == "default"
            assert r.json()["query"] == "q=1"
            assert (await c.post("/v2/models/echo/infer", content=b"x" * 101)).status_code == 413
            assert (await c.get("/v2/models/nope/ready")).status_code == 404
            assert (await c.get("/v1/models")).json() == {"models": ["echo"]}
        router.close()

    asyncio.run(main())


def test_http_front_end_edge_cases(echo_ports: tuple[int, ...]) -> None:
    """Pipelining, Expect: 100-continue, Connection: close and garbage, on a raw socket."""
    import socket

    a = echo_ports[0]
    router = Router()
    router.add(RoutedService("echo", pool("echo", "default", a)))
    with RouterThread(router) as rt:
        req = b"POST /v2/models/echo/infer HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}"
        with socket.create_connection(("127.0.0.1", rt.port), timeout=10) as s:
            s.sendall(req * 3)  # pipelined: three answers, in order
            data = b""
            while data.count(b"HTTP/1.1 200") < 3:
                chunk = s.recv(65536)
                assert chunk
                data += chunk
        with socket.create_connection(("127.0.0.1", rt.port), timeout=10) as s:
            s.sendall(
                b"POST /v2/models/echo/infer HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n"
                b"expect: 100-continue\r\nconnection: close\r\n\r\n"
            )
            assert s.recv(100).startswith(b"HTTP/1.1 100 Continue")
            s.sendall(b"{}")
            data = b""
            while chunk := s.recv(65536):  # the server closes after the answer
                data += chunk
            assert data.startswith(b"HTTP/1.1 200 OK") and b"connection: close" in data
        with socket.create_connection(("127.0.0.1", rt.port), timeout=10) as s:
            s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            assert data.startswith(b"HTTP/1.1 400") and b'"error"' in data


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):  # until the router closes the connection
        data += chunk
    return data


def test_silent_clients_lose_their_connection(
    echo_ports: tuple[int, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    from serving.router import http as front_end

    monkeypatch.setattr(front_end, "IDLE_TIMEOUT", 0.5)
    slow = echo_ports[3]  # answers after 50 ms
    router = Router()
    router.add(RoutedService("slow", pool("slow", "default", slow)))
    infer = b"POST /v2/models/slow/infer HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}"
    with RouterThread(router) as rt:
        # A request head that never ends: a 408 with a JSON error, then the close.
        with socket.create_connection(("127.0.0.1", rt.port), timeout=10) as s:
            s.sendall(b"POST /v2/models/slow/infer HTTP/1.1\r\nhost: x\r\n")
            data = _read_all(s)
        assert data.startswith(b"HTTP/1.1 408") and b"no data from the client" in data, data
        # A body that stops short: the same.
        with socket.create_connection(("127.0.0.1", rt.port), timeout=10) as s:
            s.sendall(infer[:-1])
            assert _read_all(s).startswith(b"HTTP/1.1 408")
        # Answered, then left open and quiet: closed without a word.
        with socket.create_connection(("127.0.0.1", rt.port), timeout=10) as s:
            s.sendall(infer)
            data = _read_all(s)
        assert data.startswith(b"HTTP/1.1 200") and data.count(b"HTTP/1.1") == 1, data
        # Activity keeps a connection: requests 0.1 s apart (well under the timeout), for
        # longer than the timeout in all, on one connection are all answered.
        with socket.create_connection(("127.0.0.1", rt.port), timeout=10) as s:
            for _ in range(6):
                s.sendall(infer)
                assert s.recv(65536).startswith(b"HTTP/1.1 200")
                time.sleep(0.1)
    # An answer that takes longer than the timeout is not cut short: nothing of the
    # client's is missing, the router is the one waiting.
    with upstream("slow", env={"UPSTREAM_SLEEP": "1.0"}) as slower:
        router = Router()
        router.add(RoutedService("slow", pool("slow", "default", slower)))
        with RouterThread(router) as rt, httpx.Client(base_url=rt.url, timeout=30) as c:
            r = c.post("/v2/models/slow/infer", content=b"{}")
            assert r.status_code == 200, r.text


def test_replica_timeout_is_a_503(echo_ports: tuple[int, ...]) -> None:
    s1 = echo_ports[3]  # sleeps 50 ms per inference
    router = Router()
    router.add(RoutedService("slow", pool("slow", "default", s1, request_timeout=0.01)))
    with RouterThread(router) as rt, httpx.Client(base_url=rt.url) as c:
        r = c.post("/v2/models/slow/infer", content=b"{}")
        assert r.status_code == 503 and "did not answer in 0.01s" in r.json()["error"]
        assert c.get("/v2/models/slow/ready").status_code == 200  # the pool still works


def test_container_concurrency_is_a_hard_per_replica_limit(echo_ports: tuple[int, ...]) -> None:
    s1 = echo_ports[3]  # sleeps 50 ms per inference
    limited = pool("slow", "default", s1, capacity=1)
    router = Router()
    router.add(RoutedService("slow", limited))
    peak = 0

    async def drive() -> float:
        nonlocal peak
        transport = httpx.ASGITransport(app=router)
        async with httpx.AsyncClient(transport=transport, base_url="http://r") as c:
            t0 = time.perf_counter()
            tasks = [
                asyncio.create_task(c.post("/v2/models/slow/infer", content=b"{}"))
                for _ in range(6)
            ]
            while not all(t.done() for t in tasks):
                peak = max(peak, limited.endpoints[0].in_flight)
                await asyncio.sleep(0.005)
            assert [t.result().status_code for t in tasks] == [200] * 6
            elapsed = time.perf_counter() - t0
        router.close()
        return elapsed

    elapsed = asyncio.run(drive())
    assert peak == 1
    assert elapsed >= 6 * 0.05  # one at a time on the single replica


def test_expect_continue_over_the_limit_is_answered_without_the_body(
    echo_ports: tuple[int, ...],
) -> None:
    import socket

    router = Router(max_body_bytes=10)
    router.add(RoutedService("echo", pool("echo", "default", echo_ports[0])))
    with (
        RouterThread(router) as rt,
        socket.create_connection(("127.0.0.1", rt.port), timeout=10) as s,
    ):
        s.sendall(
            b"POST /v2/models/echo/infer HTTP/1.1\r\nhost: x\r\ncontent-length: 11\r\n"
            b"expect: 100-continue\r\n\r\n"
        )
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        assert data.startswith(b"HTTP/1.1 413") and b"over 10 bytes" in data


def _read_to_eof(s: socket.socket) -> bytes:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


def test_over_limit_body_is_answered_413_while_the_client_is_still_sending() -> None:
    """The 413 is sent before the close, and the close never cuts off a client that is
    still sending (which resets the connection and can destroy the answer)."""
    router = Router(max_body_bytes=1024)
    size = 4 << 20  # well past anything the router buffers
    heads = {
        "content-length": b"content-length: %d\r\n" % size,
        "expect": b"content-length: %d\r\nexpect: 100-continue\r\n" % size,
        "chunked": b"transfer-encoding: chunked\r\n",
    }
    with RouterThread(router) as rt:
        for kind, head in heads.items():
            with socket.create_connection(("127.0.0.1", rt.port), timeout=10) as s:
                s.sendall(b"POST /v2/models/echo/infer HTTP/1.1\r\nhost: x\r\n" + head + b"\r\n")
                piece = b"x" * 65536
                if kind == "chunked":
                    piece = b"10000\r\n" + piece + b"\r\n"
                for _ in range(size // 65536):  # a client that sends it all, then reads
                    s.sendall(piece)
                if kind == "chunked":
                    s.sendall(b"0\r\n\r\n")
                data = _read_to_eof(s)
            head_part, _, body = data.partition(b"\r\n\r\n")
            assert head_part.startswith(b"HTTP/1.1 413"), (kind, data[:200])
            assert b"connection: close" in head_part, kind  # never reused by the client
            assert json.loads(body) == {"error": "request body over 1024 bytes"}, kind


def test_errors_after_pipelined_requests_answer_those_first() -> None:
    router = Router(max_body_bytes=1024)
    live = b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\n\r\n"
    big = b"POST /v2/models/m/infer HTTP/1.1\r\nhost: x\r\ncontent-length: 2000\r\n\r\n"
    with RouterThread(router) as rt:
        for tail, status in ((big + b"x" * 2000, b"413"), (b"NOT HTTP AT ALL\r\n\r\n", b"400")):
            with socket.create_connection(("127.0.0.1", rt.port), timeout=10) as s:
                s.sendall(live * 2 + tail)
                data = _read_to_eof(s)
            statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", data)
            assert statuses == [b"200", b"200", status], data
            assert data.endswith(b"}") and b'"error"' in data.rsplit(b"\r\n\r\n", 1)[1]


def test_unparsable_target_and_oversized_head_are_json_4xx() -> None:
    """A target httptools cannot parse, or a request line/headers past the head limit, get
    a JSON 4xx (they used to kill the connection's task and leave the client hanging)."""
    router = Router()
    cases = {
        b"GET http://[::1 HTTP/1.1\r\nhost: x\r\n\r\n": b"400",
        b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nhost: x\r\n\r\n": b"414",
        b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\nx: " + b"a" * 70_000 + b"\r\n\r\n": b"431",
    }
    with RouterThread(router) as rt:
        for request, status in cases.items():
            with socket.create_connection(("127.0.0.1", rt.port), timeout=5) as s:
                s.sendall(request + b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\n\r\n")
                data = b""
                while data.count(b"HTTP/1.1") < (2 if status == b"400" else 1):
                    chunk = s.recv(65536)
                    assert chunk, (status, data)
                    data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 " + status), data[:200]
            assert b'"error"' in body
            if status == b"400":  # the stream is intact: the next request is answered
                assert data.rstrip().endswith(b'{"live":true}'), data
