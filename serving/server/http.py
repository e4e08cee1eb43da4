"""uvicorn set up for a model server: its own error answers are JSON as well.

uvicorn answers an unparsable request itself, with a ``text/plain`` 400; every other
error of the model server is ``{"error": ...}`` JSON, so :class:`JSONErrorsProtocol`
answers those the same way. WebSocket upgrades are off (``ws="none"``): the V1/V2
protocols are plain HTTP, and an ``Upgrade`` header is then ignored, not negotiated.
"""

from __future__ import annotations

from typing import Any

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class JSONErrorsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol; the 400 for a malformed request is JSON."""

    def send_400_response(self, msg: str) -> None:
        body = orjson.dumps({"error": f"malformed HTTP request: {msg}"})
        content = [b"HTTP/1.1 400 Bad Request\r\n"]
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
