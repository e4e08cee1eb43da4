"""uvicorn set up for a model server: its own error answers are JSON as well.

uvicorn answers an unparsable request itself, with a ``text/plain`` 400; every other
error of the model server is ``{"error": ...}`` JSON, so :class:`JSONErrorsProtocol`
answers those the same way. It also bounds the request head (target + headers), which
uvicorn's httptools protocol would otherwise buffer without limit, and answers a client
that half-closes before its body is complete with a 400 (as the router does) instead of
nothing. WebSocket upgrades are off (``ws="none"``): the V1/V2 protocols are plain HTTP,
and an ``Upgrade`` header is then ignored, not negotiated.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from serving.server.body import incomplete_body

MAX_HEAD_BYTES = 64 * 1024  # request target + headers, as the router; past it a 414 or 431
HEAD_FEED_LIMIT = 2 * MAX_HEAD_BYTES  # fed to the parser before the head must be complete


class _HeadTooLarge(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class JSONErrorsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol; the 400 for a malformed request is JSON, and a request
    target or header block over :data:`MAX_HEAD_BYTES` is a JSON 414 or 431 (httptools
    itself buffers headers without any limit)."""

    _head_size = 0  # target + header bytes the parser reported for this request
    _head_error: _HeadTooLarge | None = None
    _in_head = True  # between requests or in one's head
    _head_fed = 0  # bytes of the current head fed to the parser
    _heads_done = 0
    _body_received = 0  # body bytes of the current request

    def data_received(self, data: bytes) -> None:
        # httptools buffers a header line whole before calling on_header, so an endless
        # header line would grow without bound: while in a request head, feed the parser
        # at most the rest of HEAD_FEED_LIMIT at a time (the router does the same).
        while data and not self.transport.is_closing():
            if not self._in_head:
                super().data_received(data)
                return
            budget = HEAD_FEED_LIMIT - self._head_fed
            piece, data = data[:budget], data[budget:]
            heads_done = self._heads_done
            super().data_received(piece)
            if self._heads_done != heads_done:
                self._head_fed = 0
            else:
                self._head_fed += len(piece)
                if self._head_fed >= HEAD_FEED_LIMIT and self._in_head:
                    self._head_error = _HeadTooLarge(
                        431, f"request target and headers over {MAX_HEAD_BYTES} bytes"
                    )
                    self.send_400_response("")
                    return

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_size = 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._heads_done += 1
        self._body_received = 0
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._body_received += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_head, self._head_fed = True, 0
        super().on_message_complete()

    def eof_received(self) -> None:
        """The client ended its side. Mid-body, the request can never complete: say so
        (a JSON 400, as the router) rather than closing without an answer."""
        cycle = self.cycle
        if not self._in_head and cycle is not None and not cycle.response_started:
            # The head of the request in progress (uvicorn resets it per request).
            length = next((v for k, v in self.headers if k == b"content-length"), None)
            declared = int(length) if length is not None and length.isdigit() else None
            self._write_error(400, incomplete_body(self._body_received, declared))

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        if self._head_size > MAX_HEAD_BYTES:
            self._head_error = _HeadTooLarge(414, f"request target over {MAX_HEAD_BYTES} bytes")
            raise self._head_error  # httptools turns it into an HttpParserError: answered below
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        if self._head_size > MAX_HEAD_BYTES:
            self._head_error = _HeadTooLarge(
                431, f"request target and headers over {MAX_HEAD_BYTES} bytes"
            )
            raise self._head_error
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        status, message = 400, f"malformed HTTP request: {msg}"
        if self._head_error is not None:
            status, message = self._head_error.status, self._head_error.message
        self._write_error(status, message)

    def _write_error(self, status: int, message: str) -> None:
        """Answer ``{"error": message}`` with ``connection: close``, then close."""
        body = orjson.dumps({"error": message})
        content = [b"HTTP/1.1 %d %s\r\n" % (status, HTTPStatus(status).phrase.encode())]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: %d\r\n" % len(body),
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()


def uvicorn_config(app: Any, host: str, port: int, **kw: Any) -> uvicorn.Config:
    """A uvicorn Config on uvloop with :class:`JSONErrorsProtocol`, no WebSockets;
    ``kw`` go to ``uvicorn.Config`` (and override these defaults)."""
    options: dict[str, Any] = {"loop": "uvloop", "http": JSONErrorsProtocol, "ws": "none"}
    options.update(kw)
    return uvicorn.Config(app, host=host, port=port, **options)
