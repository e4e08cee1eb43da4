"""The router's HTTP/1.1 front end: an asyncio protocol on httptools, no ASGI layer.

Why not uvicorn here: profiling the router hop showed most of its CPU in per-message
ASGI plumbing and in two socket writes per response (head, then body). This protocol
parses with httptools, hands the request to :meth:`Router.handle` and writes the whole
response with one ``write``. Keep-alive, ``Expect: 100-continue``, pipelined requests
(answered in order), ``Connection: close`` and the body limit (413) are handled here;
anything unparsable gets a 400. Protocol upgrades (``Upgrade``, ``CONNECT``) are not made:
the request is answered as an HTTP/1.1 one (a 400 if it has a body), then the connection
closes.

A client that sends nothing for ``IDLE_TIMEOUT`` seconds while nothing of its is being
answered loses the connection: quietly between requests (a keep-alive connection left
open), with a 408 in the middle of a request (a slow or stalled sender cannot hold a
connection and its buffers forever).

A 413 or 400 ends the connection, and it is always *answered* first: after the answers to
any earlier pipelined requests, as soon as the problem is known (with
``connection: close``), and the connection is then closed *lingering*: our side is
half-closed and whatever the client still sends (the rest of an over-size body) is read
and dropped until the client closes or goes quiet. Closing a socket with unread input
makes the kernel send a reset, which can destroy the answer before the client reads it.
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
from serving.server.body import incomplete_body

log = logging.getLogger("serving.router")

_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}
_JSON = [(b"content-type", b"application/json")]

MAX_HEAD_BYTES = 64 * 1024  # request target + headers; past it a 414 or 431
# Bytes of one head fed to the parser before it must be complete (the backstop for header
# lines httptools buffers whole; < 3x this is ever held, as a new head may start mid-piece).
HEAD_FEED_LIMIT = 2 * MAX_HEAD_BYTES
LINGER_IDLE = 2.0  # a lingering connection closes once the client is quiet this long
LINGER_MAX = 10.0  # ... and in any case this long after the error answer
IDLE_TIMEOUT = 60.0  # no bytes from the client this long, nothing in flight: close (408)


def _head(status: int) -> bytes:
    return b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))


class _Request:
    __slots__ = ("body", "error", "headers", "keep_alive", "method", "url")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.method = ""
        self.keep_alive = True
        self.error: Response | None = None  # set: answer this, then close (lingering)


class RouterProtocol(asyncio.Protocol):
    """One client connection. Requests are answered one at a time, in order."""

    def __init__(self, router: Router, connections: set[RouterProtocol]) -> None:
        self.router = router
        self.connections = connections
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.current: _Request | None = None
        self.size = 0
        self.head_size = 0
        self.in_head = True  # between requests or in one's head: see data_received
        self.head_fed = 0  # bytes of the current head fed to the parser (approximately)
        self.heads_done = 0
        self.queue: deque[_Request] = deque()
        self.busy = False
        self.closing = False  # no further requests are read (an error, or the peer left)
        self.lost = False
        self.lingering = False
        self.eof = False  # the client half-closed: close once the queue is answered
        self.linger_handle: asyncio.TimerHandle | None = None
        self.linger_start = 0.0
        self.last_data = 0.0
        self.task: asyncio.Task[None] | None = None
        self.idle_handle: asyncio.TimerHandle | None = None

    # --- asyncio.Protocol ------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.connections.add(self)
        loop = asyncio.get_running_loop()
        self.last_data = loop.time()
        self.idle_handle = loop.call_later(IDLE_TIMEOUT, self._idle_check)

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        self.closing = True
        self.lost = True
        self.queue.clear()
        if self.linger_handle is not None:
            self.linger_handle.cancel()
        if self.idle_handle is not None:
            self.idle_handle.cancel()

    def data_received(self, data: bytes) -> None:
        self.last_data = asyncio.get_running_loop().time()
        if self.closing:
            return  # after an error answer: the rest of the client's request is dropped
        # httptools buffers a header line whole before calling on_header (where the head
        # limit is checked), so an endless header line would grow without bound. While in
        # a request head the parser is therefore fed at most the rest of HEAD_FEED_LIMIT
        # at a time; a head not complete by then is a 431.
        while data and not self.closing:
            if not self.in_head:
                self._feed(data)
                return
            budget = HEAD_FEED_LIMIT - self.head_fed
            piece, data = data[:budget], data[budget:]
            heads_done = self.heads_done
            self._feed(piece)
            if self.heads_done != heads_done:
                self.head_fed = 0  # a head ended in this piece: the budget starts over
            else:
                self.head_fed += len(piece)
                if self.head_fed >= HEAD_FEED_LIMIT and self.in_head:
                    self._reject(431, f"request target and headers over {MAX_HEAD_BYTES} bytes")

    def _feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._upgrade_requested()
        except httptools.HttpParserError as exc:
            self._reject(400, f"malformed HTTP request: {exc}")

    def eof_received(self) -> bool | None:
        """The client is done sending (it may still read). Requests already received are
        answered first: returning None would close the transport before they are. A
        request whose body was cut short by the EOF can never complete: it is answered
        with a 400 (after the earlier ones), as the replicas do."""
        if self.current is not None and not self.in_head and not self.closing:
            declared = next(
                (v.strip(b" \t") for k, v in self.current.headers if k == b"content-length"),
                None,
            )
            self._reject(400, incomplete_body(self.size, int(declared) if declared else None))
        if self.busy or self.queue:
            self.eof = True
            return True  # keep the write side open; _serve closes when the queue is done
        return None

    # --- httptools callbacks -----------------------------------------------------------
    def on_message_begin(self) -> None:
        self.current = _Request()
        self.size = 0
        self.head_size = 0

    def on_url(self, url: bytes) -> None:
        if self.current is None or self.closing:
            return
        self.head_size += len(url)
        if self.head_size > MAX_HEAD_BYTES:
            self._reject(414, f"request target over {MAX_HEAD_BYTES} bytes")
            return
        self.current.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.current is None or self.closing:
            return
        self.head_size += len(name) + len(value) + 4
        if self.head_size > MAX_HEAD_BYTES:
            self._reject(431, f"request target and headers over {MAX_HEAD_BYTES} bytes")
            return
        self.current.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.heads_done += 1
        req = self.current
        if req is None or self.transport is None or self.closing:
            return
        req.method = self.parser.get_method().decode()
        req.keep_alive = self.parser.should_keep_alive()
        limit = self.router.max_body_bytes
        expect = any(k == b"expect" and v.lower() == b"100-continue" for k, v in req.headers)
        for k, v in req.headers:
            if k == b"content-length":
                v = v.strip(b" \t")  # llhttp keeps trailing whitespace in the value
                if not v.isdigit():
                    self._reject(400, "invalid content-length")
                    return
                if int(v) > limit:
                    # Answered now (no 100 Continue); any body that follows is dropped.
                    self._reject(413, f"request body over {limit} bytes")
                    return
        if expect:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        req = self.current
        if req is None or self.closing:
            return
        self.size += len(body)
        if self.size > self.router.max_body_bytes:
            self._reject(413, f"request body over {self.router.max_body_bytes} bytes")
            return
        req.body.append(body)

    def on_message_complete(self) -> None:
        self.in_head, self.head_fed = True, 0
        req = self.current
        self.current = None
        if req is None or self.closing:
            return
        self._enqueue(req)

    def _enqueue(self, req: _Request) -> None:
        self.queue.append(req)
        if not self.busy:
            self.busy = True
            self.task = asyncio.get_running_loop().create_task(self._serve())

    # --- serving ---------------------------------------------------------------------
    async def _serve(self) -> None:
        try:
            while self.queue and not self.lost:
                req = self.queue.popleft()
                if req.error is not None:  # everything before it has been answered
                    self._write(req.error, keep_alive=False, head_only=False)
                    return
                try:
                    path = httptools.parse_url(req.url).path.decode("latin-1")
                except httptools.HttpParserInvalidURLError:
                    # The message itself was well framed: answer it, keep the connection.
                    err = orjson.dumps({"error": "invalid request target"})
                    self._write(
                        Response(400, list(_JSON), err), req.keep_alive, req.method == "HEAD"
                    )
                    if not req.keep_alive:
                        return
                    continue
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
            t = self.transport
            if self.eof and not self.queue and t is not None and not t.is_closing():
                t.close()

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
            if self.closing:  # an error answer: the client may still be sending
                self._linger()
            else:
                t.close()

    def _reject(self, status: int, message: str) -> None:
        """Stop reading requests; answer ``status`` after the requests before this one."""
        if self.closing:
            return
        self.closing = True
        self.current = None
        err = _Request()
        err.error = Response(status, list(_JSON), orjson.dumps({"error": message}))
        self._enqueue(err)

    def _upgrade_requested(self) -> None:
        """llhttp stops after a request asking to switch protocols (``Upgrade`` with
        ``Connection: upgrade``, or ``CONNECT``): whatever follows its head is not HTTP/1.1
        any more. No upgrade is made: that request (the last queued: the serving task has
        not run since it completed) is answered as usual, and the connection then closed.
        llhttp does not read the body of such a request, so one announcing a body gets a 400
        instead of being forwarded without it."""
        if self.closing:
            return
        if not self.queue:
            self._reject(400, "protocol upgrades are not supported")
            return
        self.closing = True
        self.current = None
        req = self.queue[-1]
        req.keep_alive = False
        if any(
            k == b"transfer-encoding" or (k == b"content-length" and v.strip(b" \t") != b"0")
            for k, v in req.headers
        ):
            message = b'{"error":"protocol upgrades are not supported"}'
            req.error = Response(400, list(_JSON), message)

    def _idle_check(self) -> None:
        """Close a connection whose client has been silent ``IDLE_TIMEOUT`` seconds while
        nothing of it was being answered (answers in flight are bounded upstream)."""
        self.idle_handle = None
        if self.lost or self.lingering:
            return
        loop = asyncio.get_running_loop()
        deadline = self.last_data + IDLE_TIMEOUT
        if self.busy or self.queue or loop.time() < deadline:
            wake = max(deadline, loop.time() + IDLE_TIMEOUT / 4)
            self.idle_handle = loop.call_at(wake, self._idle_check)
            return
        t = self.transport
        if t is None or t.is_closing():
            return
        if self.current is not None or not self.in_head or self.head_fed:
            # In the middle of a request: say why before closing.
            self._reject(408, f"no data from the client for {IDLE_TIMEOUT:g} s")
            return
        t.close()

    def _linger(self) -> None:
        """Half-close; drop what the client still sends; close when it is done or quiet."""
        t = self.transport
        if t is None or t.is_closing():
            return
        self.lingering = True
        if t.can_write_eof():
            t.write_eof()
        loop = asyncio.get_running_loop()
        self.linger_start = self.last_data = loop.time()
        self.linger_handle = loop.call_later(LINGER_IDLE, self._linger_check)

    def _linger_check(self) -> None:
        t = self.transport
        if t is None or t.is_closing():
            return
        now = asyncio.get_running_loop().time()
        idle_until = self.last_data + LINGER_IDLE
        if now >= idle_until or now >= self.linger_start + LINGER_MAX:
            if t.get_write_buffer_size():  # the client does not even read: give up
                t.abort()
            else:
                t.close()
            return
        wake = min(idle_until, self.linger_start + LINGER_MAX)
        self.linger_handle = asyncio.get_running_loop().call_at(wake, self._linger_check)


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
