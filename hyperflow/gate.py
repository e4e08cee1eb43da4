"""Bearer tokens in front of the serving router: :class:`TokenGate` on a non-loopback
bind, :func:`router_authorizer` inside the router's own server on loopback (there, once
tokens exist, other local users are kept out; without tokens every request passes, as
the API lets them).

The router knows one static token at most; the control plane's tokens live in the store
and are scoped to namespaces. A data-plane request carries a token of the namespace of
the service it calls: ``/serving/NS/NAME/...`` is namespace NS, the plain
``/v1/models/NAME`` and ``/v2/models/NAME`` paths are the default namespace's (see
:func:`serving.router.target_namespace`). The health probes stay open; the router's
own answers (``/v2``, ``/metrics``) need a valid token of any namespace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from hyperflow.handlers.auth import Tokens, parse_bearer
from hyperflow.handlers.errors import HandlerError
from serving.router import target_namespace
from serving.router.app import HTTPError

OPEN = frozenset({"/", "/v2/health/live", "/v2/health/ready"})


def check_request(tokens: Tokens, path: str, authorization: bytes | None) -> None:
    """A data-plane request to ``path`` with this ``Authorization`` header: HandlerError
    (401 without a valid token, 403 for another namespace's service) unless it may."""
    caller = tokens.authenticate(
        parse_bearer(authorization.decode("latin-1") if authorization is not None else None)
    )
    namespace = target_namespace(path)
    if namespace is not None:
        caller.check(namespace)


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
                    auth = value
            try:
                check_request(self.tokens, scope["path"], auth)
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


def router_authorizer(tokens: Tokens) -> Callable[[str, bytes | None], None]:
    """The router's ``authorize`` hook: what :class:`TokenGate` checks, as an HTTPError."""

    def authorize(path: str, authorization: bytes | None) -> None:
        try:
            check_request(tokens, path, authorization or None)  # empty: none given
        except HandlerError as exc:
            raise HTTPError(exc.status, exc.message) from None

    return authorize
