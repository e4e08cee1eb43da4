"""Plain ASGI middleware: request body limits (413), API latency metrics, and the JSON 500
of an unexpected error."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from prometheus_client import Histogram

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


log = logging.getLogger(__name__)


class _TooLarge(Exception):
    pass


async def _json(send: Send, status: int, body: dict[str, Any], *, close: bool = True) -> None:
    """Answer ``body``; ``close``: and end the connection (a body left unread)."""
    data = orjson.dumps(body)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(data)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class _Watched:
    """``send``, noting whether the response has started (nothing can be sent after)."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


class BodyLimit:
    """A request body over ``limit(path)`` bytes is answered 413 (by its Content-Length
    before any of it is read, or as soon as a streamed body passes the limit)."""

    def __init__(self, app: ASGIApp, limit: Callable[[str], int]) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope["path"])
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    await _json(send, 400, {"error": "bad Content-Length"})
                    return
                if length > limit:
                    await _json(send, 413, {"error": f"request body over {limit} bytes"})
                    return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        watched = _Watched(send)
        try:
            await self.app(scope, limited_receive, watched)
        except _TooLarge:
            if not watched.started:
                await _json(send, 413, {"error": f"request body over {limit} bytes"})


class RequestMetrics:
    """Observes each request's latency (until its response starts) by method, route
    template (``/apis/v1/namespaces/{namespace}/experiments``, never the raw path: the
    label set stays bounded) and status code."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        observed = False

        async def timed_send(message: Message) -> None:
            nonlocal observed
            if message["type"] == "http.response.start" and not observed:
                observed = True
                route = scope.get("route")
                template = getattr(route, "path", None) or "unmatched"
                self.histogram.labels(scope["method"], template, str(message["status"])).observe(
                    time.perf_counter() - start
                )
            await send(message)

        await self.app(scope, receive, timed_send)


class InternalErrors:
    """An exception out of a route is answered ``{"error": "internal server error: T"}``
    (500) and logged here, and the connection stays usable. Not an exception handler for
    ``Exception``: Starlette's ServerErrorMiddleware sends that handler's answer and then
    raises again, so uvicorn logs "Exception in ASGI application" and drops the
    keep-alive connection the client goes on to use. Once the answer has started there
    is nothing to send: the exception goes on (the connection cannot be reused)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        watched = _Watched(send)
        try:
            await self.app(scope, receive, watched)
        except _TooLarge:  # BodyLimit's, outside this one: its 413
            raise
        except Exception as exc:
            if watched.started:
                raise
            log.exception("internal error on %s %s", scope["method"], scope["path"])
            error = {"error": f"internal server error: {type(exc).__name__}"}
            await _json(send, 500, error, close=False)
