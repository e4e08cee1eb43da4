"""Bearer tokens in front of the serving router on a non-loopback bind.

The router knows one static token at most; the control plane's tokens live in the store
and are scoped to namespaces. A data-plane request carries a token of the namespace of
the service it calls: ``/serving/NS/NAME/...`` is namespace NS, the plain
``/v1/models/NAME`` and ``/v2/models/NAME`` paths are the default namespace's (see
:func:`serving.router.target_namespace`). The health probes stay open; the router's
own answers (``/v2``, ``/metrics``) need a valid token of any namespace.
"""

from __future__ import annotations

from typing import Any

import orjson

from hyperflow.handlers.auth import Tokens, parse_bearer
from hyperflow.handlers.errors import HandlerError
from serving.router import target_namespace

OPEN = frozenset({"/", "/v2/health/live", "/v2/health/ready"})


class TokenGate:
    """ASGI middleware: 401 without a valid token, 403 for another namespace's service."""

    def __init__(self, app: Any, tokens: Tokens) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] not in OPEN:
            auth = None
            for name, value in scope["headers"]:
                if name == b"authorization":
                    auth = value.decode("latin-1")
            try:
                caller = self.tokens.authenticate(parse_bearer(auth))
                namespace = target_namespace(scope["path"])
                if namespace is not None:
                    caller.check(namespace)
            except HandlerError as exc:
                body = orjson.dumps(exc.body())
                await send(
                    {
                        "type": "http.response.start",
                        "status": exc.status,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
