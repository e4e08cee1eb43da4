"""A lean HTTP/1.1 client for router -> replica hops, with pooled keep-alive connections.

Why not httpx: the router hop is on the benchmark's hot path, and an asyncio
``Protocol`` with httptools' C parser costs a fraction of a general-purpose client per
request. The contract is narrow on purpose: one request at a time per connection, the
request body already read (the router enforces its size limit first), the response
body buffered (inference responses are small) and returned with its headers unchanged.
"""

from __future__ import annotations

import asyncio
from collections import deque

import httptools

# Headers that describe one hop, not the message (RFC 9110 section 7.6.1), plus the ones
# the client recomputes.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
        b"host",
        # The router has the whole body already; a replica's interim 100 would only confuse.
        b"expect",
    }
)

Headers = list[tuple[bytes, bytes]]


class UpstreamError(Exception):
    """The replica could not be reached or broke the connection mid-response."""


class ConnectError(UpstreamError):
    """No connection to the replica could be made: nothing of the request was sent, so
    retrying it elsewhere (or later) is always safe."""


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: Headers, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class _Connection(asyncio.Protocol):
    """One keep-alive connection; feeds bytes to httptools and resolves one future."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.received_any = False
        self._parser = httptools.HttpResponseParser(self)
        self._future: asyncio.Future[Response] | None = None
        self._headers: Headers = []
        self._body: list[bytes] = []
        self._head = False  # the request in flight is a HEAD: its response has no body

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received_any = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"bad response from replica: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(UpstreamError(f"replica closed the connection: {exc or 'EOF'}"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_headers_complete(self) -> None:
        if not self._head or self._parser.get_status_code() < 200:
            return
        # A HEAD response has no body, whatever its content-length says, but the parser
        # does not know the request's method and would wait for one: the response is
        # complete here, and the connection (its parser mid-message) is not reused.
        fut = self._future
        self._future = None
        self.close()
        if fut is not None and not fut.done():
            fut.set_result(Response(self._parser.get_status_code(), self._headers, b""))

    def on_message_complete(self) -> None:
        if self._parser.get_status_code() < 200:
            # An interim (1xx) response: the final one follows on the same connection.
            self._headers = []
            self._body = []
            return
        fut = self._future
        self._future = None
        if not self._parser.should_keep_alive():
            self.close()
        if fut is not None and not fut.done():
            body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
            fut.set_result(Response(self._parser.get_status_code(), self._headers, body))

    def _fail(self, exc: Exception) -> None:
        fut = self._future
        self._future = None
        if fut is not None and not fut.done():
            fut.set_exception(exc)

    def send(self, data: bytes, *, head: bool = False) -> asyncio.Future[Response]:
        assert self.transport is not None
        self._head = head
        self._headers = []
        self._body = []
        self.received_any = False
        fut: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._future = fut
        self.transport.write(data)
        return fut

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class UpstreamPool:
    """Keep-alive connections to one replica (``host:port``); unbounded, idle ones reused.

    ``authorization``: the value of the ``authorization`` header every request carries to
    the replica, in place of any the caller passes (the replica's own token; see
    :func:`serving.local.replica.replica_authorization`)."""

    def __init__(
        self, host: str, port: int, max_idle: int = 256, authorization: bytes | None = None
    ) -> None:
        self.host = host
        self.port = port
        self._host_header = f"{host}:{port}".encode()
        self._authorization = authorization
        self._idle: deque[_Connection] = deque()
        self._max_idle = max_idle

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, proto = await loop.create_connection(_Connection, self.host, self.port)
        except OSError as exc:
            raise ConnectError(f"cannot connect to replica {self.host}:{self.port}: {exc}") from exc
        return proto

    async def request(
        self,
        method: str,
        target: bytes,
        headers: Headers,
        body: bytes,
        timeout: float,
    ) -> Response:
        """Send one request; retry once on a fresh connection if a reused one was stale."""
        head = [method.encode(), b" ", target, b" HTTP/1.1\r\nhost: ", self._host_header]
        own = self._authorization
        if own is not None:
            head += (b"\r\nauthorization: ", own)
        for name, value in headers:
            if name not in HOP_BY_HOP and (own is None or name != b"authorization"):
                head += (b"\r\n", name, b": ", value)
        head += (b"\r\ncontent-length: ", str(len(body)).encode(), b"\r\n\r\n")
        data = b"".join(head) + body

        for attempt in (0, 1):
            conn: _Connection | None = None
            while self._idle:
                candidate = self._idle.pop()
                if not candidate.closed:
                    conn = candidate
                    break
            reused = conn is not None
            if conn is None:
                conn = await self._connect()
            fut = conn.send(data, head=method == "HEAD")
            try:
                resp = await asyncio.wait_for(fut, timeout)
            except UpstreamError:
                conn.close()
                # A keep-alive connection the replica closed while idle: nothing of this
                # request was processed, so one retry on a new connection is safe.
                if reused and attempt == 0 and not conn.received_any:
                    continue
                raise
            except (TimeoutError, asyncio.CancelledError):
                conn.close()
                raise
            if not conn.closed and len(self._idle) < self._max_idle:
                self._idle.append(conn)
            return resp
        raise UpstreamError("unreachable")  # pragma: no cover - loop always returns/raises

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
