"""The router's HTTP/1.1 front end: an asyncio protocol on httptools, no ASGI layer.

Why not uvicorn here: profiling the router hop showed most of its CPU in per-message
ASGI plumbing and in two socket writes per response (head, then body). This protocol
parses with httptools, hands the request to :meth:`Router.handle` and writes the whole
response with one ``write``. Keep-alive, ``Expect: 100-continue``, pipelined requests
(answered in order), ``Connection: close`` and the body limit (413) are handled here;
anything unparsable gets a 400 and the connection is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from http import HTTPStatus
from urllib.parse import unquote

import httptools
import orjson

from serving.router.app import Router
from serving.router.upstream import Response

log = logging.getLogger("serving.router")

_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}


def _head(status: int) -> bytes:
    return b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))


class _Request:
    __slots__ = ("body", "headers", "keep_alive", "method", "url")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.method = ""
        self.keep_alive = True


class RouterProtocol(asyncio.Protocol):
    """One client connection. Requests are answered one at a time, in order."""

    def __init__(self, router: Router, connections: set[RouterProtocol]) -> None:
        self.router = router
        self.connections = connections
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.current: _Request | None = None
        self.size = 0
        self.queue: deque[_Request] = deque()
        self.busy = False
        self.closing = False
        self.rejected = False
        self.reject_message = ""
        self.task: asyncio.Task[None] | None = None

    # --- asyncio.Protocol ------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        self.closing = True
        self.queue.clear()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, "protocol upgrades are not supported")
        except httptools.HttpParserError as exc:
            self._fail(400, f"malformed HTTP request: {exc}")

    # --- httptools callbacks -----------------------------------------------------------
    def on_message_begin(self) -> None:
        self.current = _Request()
        self.size = 0

    def on_url(self, url: bytes) -> None:
        assert self.current is not None
        self.current.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.current is not None
        self.current.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        req = self.current
        assert req is not None and self.transport is not None
        req.method = self.parser.get_method().decode()
        req.keep_alive = self.parser.should_keep_alive()
        limit = self.router.max_body_bytes
        expect = any(k == b"expect" and v.lower() == b"100-continue" for k, v in req.headers)
        for k, v in req.headers:
            if k == b"content-length":
                if not v.isdigit():
                    raise httptools.HttpParserError("invalid content-length")
                if int(v) > limit:
                    self._reject_body(f"request body over {limit} bytes")
                    if expect:  # the client waits for us before sending the body
                        self._answer_413()
                    return
        if expect:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        req = self.current
        if req is None or self.closing:
            return
        self.size += len(body)
        if self.rejected:
            # Drain a bounded amount so the 413 can be delivered; past that, cut it off.
            if self.size > 2 * self.router.max_body_bytes + (1 << 20):
                self._answer_413()
            return
        if self.size > self.router.max_body_bytes:
            self._reject_body(f"request body over {self.router.max_body_bytes} bytes")
            return
        req.body.append(body)

    def on_message_complete(self) -> None:
        req = self.current
        self.current = None
        if self.rejected:
            # The over-limit body has been read and dropped: answer now, then close.
            # (Answering before the body is in makes clients reuse or reset the socket.)
            self._answer_413()
            return
        if req is None or self.closing:
            return
        self.queue.append(req)
        if not self.busy:
            self.busy = True
            self.task = asyncio.get_running_loop().create_task(self._serve())

    # --- serving ---------------------------------------------------------------------
    async def _serve(self) -> None:
        try:
            while self.queue and not self.closing:
                req = self.queue.popleft()
                parsed = httptools.parse_url(req.url)
                path = parsed.path.decode("latin-1")
                if "%" in path:
                    path = unquote(path)
                body = req.body[0] if len(req.body) == 1 else b"".join(req.body)
                try:
                    resp = await self.router.handle(req.method, path, req.url, req.headers, body)
                except Exception as exc:  # a bug, not a client error: JSON, never a traceback
                    log.exception("router failed on %s %s", req.method, path)
                    payload = orjson.dumps({"error": f"internal error: {type(exc).__name__}"})
                    resp = Response(500, [(b"content-type", b"application/json")], payload)
                self._write(resp, req.keep_alive, req.method == "HEAD")
                if not req.keep_alive:
                    return
        finally:
            self.busy = False

    def _write(self, resp: Response, keep_alive: bool, head_only: bool) -> None:
        t = self.transport
        if t is None or t.is_closing():
            return
        parts = [_head(resp.status)]
        for k, v in resp.headers:
            parts += (k, b": ", v, b"\r\n")
        parts.append(b"content-length: %d\r\n" % len(resp.body))
        if not keep_alive:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        if not head_only:
            parts.append(resp.body)
        t.write(b"".join(parts))
        if not keep_alive:
            t.close()

    def _reject_body(self, message: str) -> None:
        """Drop this request's body as it arrives; answer 413 once it has been read."""
        self.rejected = True
        self.reject_message = message
        self.queue.clear()
        if self.current is not None:
            self.current.body.clear()

    def _answer_413(self) -> None:
        self.closing = True
        if self.busy:  # an earlier pipelined request is still being answered
            if self.transport is not None:
                self.transport.close()
            return
        headers = [(b"content-type", b"application/json")]
        body = orjson.dumps({"error": self.reject_message})
        self._write(Response(413, headers, body), keep_alive=False, head_only=False)

    def _fail(self, status: int, message: str) -> None:
        """Answer an unrecoverable request error and close (the stream is out of sync)."""
        self.closing = True
        self.queue.clear()
        body = orjson.dumps({"error": message})
        resp = Response(status, [(b"content-type", b"application/json")], body)
        if not self.busy:
            self._write(resp, keep_alive=False, head_only=False)
        elif self.transport is not None:
            self.transport.close()


class RouterServer:
    """Binds the router; ``close()`` stops accepting and drops open connections."""

    def __init__(self, router: Router, host: str = "127.0.0.1", port: int = 8080) -> None:
        self.router = router
        self.host = host
        self.port = port
        self.connections: set[RouterProtocol] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: RouterProtocol(self.router, self.connections),
            self.host,
            self.port,
            backlog=4096,
        )
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]

    async def close(self, grace: float = 5.0) -> None:
        if self._server is None:
            return
        self._server.close()
        # Let requests in progress finish (bounded), then close what is left.
        deadline = loop_time() + grace
        while any(c.busy for c in self.connections) and loop_time() < deadline:
            await asyncio.sleep(0.02)
        for c in list(self.connections):
            if c.transport is not None:
                c.transport.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 1.0)
        self.router.close()


def loop_time() -> float:
    return asyncio.get_running_loop().time()
