"""The model server's HTTP transport: a raw ASGI callable over a :class:`DataPlane`.

No framework: routing is a split of the path, and each response is two ASGI messages.
This keeps the per-request overhead to a few microseconds, which matters next to a
~50 µs sklearn predict. Every :class:`ServingError` becomes its status with a
``{"error": ...}`` body; any other exception is logged and answered as a JSON 500.

Endpoints: V2 ``/v2``, ``/v2/health/{live,ready}``,
``/v2/models/{name}[/versions/{v}][/ready|/infer]``; V1 ``/v1/models``,
``/v1/models/{name}``, ``/v1/models/{name}:predict``; ``/metrics``; ``/`` (alive).
On ASGI lifespan startup the models not yet ready load in a background thread, so the
server is live at once and ready when loading ends.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from typing import Any

import orjson

from serving.dataplane.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from serving.dataplane.plane import DataPlane
from serving.protocol.errors import (
    MethodNotAllowed,
    NotFound,
    NotSupported,
    ServingError,
    Unauthorized,
)
from serving.server.body import (
    ClientDisconnected,
    check_json_content_type,
    decode_content,
    parse_header_length,
    read_body,
)

log = logging.getLogger("serving.server")

_perf = time.perf_counter
_JSON = b"application/json"
_OPEN_PATHS = frozenset({"/v2/health/live", "/v2/health/ready"})
_OCTET = b"application/octet-stream"


def _headers_of(scope: dict[str, Any]) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


async def _send(
    send: Any,
    status: int,
    body: bytes,
    content_type: bytes = _JSON,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _error_body(err: ServingError) -> bytes:
    return orjson.dumps(err.body())


class ModelServerApp:
    """ASGI application serving one :class:`DataPlane` (see module docstring)."""

    def __init__(
        self,
        plane: DataPlane,
        *,
        max_body_bytes: int,
        load_on_startup: bool = True,
        token: str | None = None,
    ) -> None:
        self.plane = plane
        self.token = token.encode() if token else None
        self.max_body_bytes = max_body_bytes
        self.load_on_startup = load_on_startup
        self._loader: threading.Thread | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    # -- lifespan ------------------------------------------------------------------------

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                if self.load_on_startup:
                    self.start_loading()
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                self.plane.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def start_loading(self) -> None:
        """Load models in a daemon thread so /v2/health/live answers meanwhile."""
        if self._loader is None:
            self._loader = threading.Thread(
                target=self.plane.load_all, name="model-loader", daemon=True
            )
            self._loader.start()

    # -- http ----------------------------------------------------------------------------

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        method: str = scope["method"]
        parts = scope["path"].strip("/").split("/")
        try:
            if self.token is not None and scope["path"] not in _OPEN_PATHS:
                self._check_token(scope)
            if method == "POST":
                await self._post(parts, scope, receive, send)
            elif method in ("GET", "HEAD"):
                status, body, ctype = self._get(parts)
                await _send(send, status, body, ctype)
            else:
                if not _is_get_route(parts) and not _is_post_route(parts):
                    raise NotFound("no such endpoint")
                allow = "GET, HEAD" if _is_get_route(parts) else "POST"
                raise MethodNotAllowed(f"method {method} not allowed on {scope['path']}", allow)
        except ServingError as e:
            extra = [(b"allow", e.allow.encode())] if isinstance(e, MethodNotAllowed) else None
            await _send(send, e.status, _error_body(e), extra=extra)
        except ClientDisconnected:
            return
        except Exception as e:
            log.exception("unhandled error on %s %s", method, scope["path"])
            await _send(send, 500, orjson.dumps({"error": f"internal error: {type(e).__name__}"}))

    def _check_token(self, scope: dict[str, Any]) -> None:
        assert self.token is not None
        for k, v in scope["headers"]:
            if k == b"authorization":
                scheme, _, cred = v.partition(b" ")
                if scheme.lower() == b"bearer" and hmac.compare_digest(cred.strip(), self.token):
                    return
                break
        raise Unauthorized("missing or invalid bearer token")

    def _get(self, parts: list[str]) -> tuple[int, bytes, bytes]:
        """GET routes; returns (status, body, content type)."""
        plane = self.plane
        n = len(parts)
        if parts[0] == "v2":
            if n == 1:
                return 200, orjson.dumps(plane.server_metadata()), _JSON
            if parts[1] == "health" and n == 3:
                if parts[2] == "live":
                    return 200, orjson.dumps(plane.live()), _JSON
                if parts[2] == "ready":
                    return 200, orjson.dumps(plane.ready()), _JSON
            if parts[1] == "models" and n >= 3:
                name, version, rest = _model_path(parts)
                if rest == "":
                    return 200, orjson.dumps(plane.model_metadata(name, version)), _JSON
                if rest == "ready":
                    return 200, orjson.dumps(plane.model_ready(name, version)), _JSON
                if rest == "infer":
                    raise MethodNotAllowed("infer takes POST", "POST")
        elif parts[0] == "v1" and n >= 2 and parts[1] == "models":
            if n == 2:
                return 200, orjson.dumps(plane.v1_list_models()), _JSON
            if n == 3:
                if ":" in parts[2]:
                    raise MethodNotAllowed(":predict takes POST", "POST")
                return 200, orjson.dumps(plane.v1_model_status(parts[2])), _JSON
        elif parts[0] == "metrics" and n == 1:
            return 200, plane.metrics.render(), METRICS_CONTENT_TYPE.encode()
        elif parts[0] == "" and n == 1:
            return 200, b'{"status":"alive"}', _JSON
        raise NotFound("no such endpoint")

    async def _post(self, parts: list[str], scope: dict[str, Any], receive: Any, send: Any) -> None:
        n = len(parts)
        if parts[0] == "v2" and n >= 4 and parts[1] == "models":
            name, version, rest = _model_path(parts)
            if rest == "infer":
                await self._infer_v2(name, version, scope, receive, send)
                return
        elif parts[0] == "v1" and n == 3 and parts[1] == "models" and ":" in parts[2]:
            name, verb = parts[2].rsplit(":", 1)
            if verb == "predict":
                await self._predict_v1(name, scope, receive, send)
                return
            if verb == "explain":
                self.plane.entry(name, need_ready=False)  # an unknown model is a 404
                raise NotSupported(f"model {name!r} has no explainer (only predictors are served)")
        if not _is_get_route(parts):
            raise NotFound("no such endpoint")
        raise MethodNotAllowed("this endpoint takes GET", "GET, HEAD")

    async def _read(self, scope: dict[str, Any], receive: Any) -> tuple[bytes, dict[str, str]]:
        headers = _headers_of(scope)
        raw_len = headers.get("content-length")
        content_length = (
            int(raw_len) if raw_len and raw_len.isascii() and raw_len.isdigit() else None
        )
        body = await read_body(receive, self.max_body_bytes, content_length)
        encoding = headers.get("content-encoding")
        if encoding:
            body = decode_content(body, encoding.strip().lower(), self.max_body_bytes)
        return body, headers

    async def _infer_v2(
        self, name: str, version: str | None, scope: dict[str, Any], receive: Any, send: Any
    ) -> None:
        with _Observed(self.plane, name, "v2"):
            body, headers = await self._read(scope, receive)
            header_length = parse_header_length(headers.get("inference-header-content-length"))
            check_json_content_type(headers.get("content-type"), header_length is not None)
            out, json_len = await self.plane.infer_v2(name, version, body, header_length, headers)
            if json_len is None:
                await _send(send, 200, out)
            else:
                extra = [(b"inference-header-content-length", str(json_len).encode())]
                await _send(send, 200, out, _OCTET, extra)

    async def _predict_v1(self, name: str, scope: dict[str, Any], receive: Any, send: Any) -> None:
        with _Observed(self.plane, name, "v1"):
            body, headers = await self._read(scope, receive)
            check_json_content_type(headers.get("content-type"), False, v1=True)
            out = await self.plane.predict_v1(name, body, headers)
            await _send(send, 200, out)


class _Observed:
    """In-flight gauge and request count/latency around one predict or infer request.

    The status recorded is 200, the :class:`ServingError`'s status, or 500 for anything
    else; exceptions propagate unchanged. A plain class, not a generator context manager:
    it is on every request's path.
    """

    __slots__ = ("_inflight", "_label", "_metrics", "_protocol", "_t0")

    def __init__(self, plane: DataPlane, name: str, protocol: str) -> None:
        self._metrics = plane.metrics
        self._label = name if name in plane._entries else "_unknown"
        self._protocol = protocol
        self._inflight = self._metrics.inflight_child(self._label)
        self._t0 = 0.0

    def __enter__(self) -> _Observed:
        self._inflight.inc()
        self._t0 = _perf()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            status = 200
        elif isinstance(exc, ServingError):
            status = exc.status
        else:
            status = 500
        self._inflight.dec()
        self._metrics.observe_request(self._label, self._protocol, status, _perf() - self._t0)


def _model_path(parts: list[str]) -> tuple[str, str | None, str]:
    """``v2/models/{name}[/versions/{v}][/{rest}]`` -> (name, version, rest)."""
    name = parts[2]
    tail = parts[3:]
    version = None
    if len(tail) >= 2 and tail[0] == "versions":
        version, tail = tail[1], tail[2:]
    if len(tail) > 1:
        raise NotFound("no such endpoint")
    return name, version, tail[0] if tail else ""


def _is_post_route(parts: list[str]) -> bool:
    if parts[0] == "v2" and len(parts) >= 4 and parts[1] == "models":
        try:
            return _model_path(parts)[2] == "infer"
        except NotFound:
            return False
    return parts[0] == "v1" and len(parts) == 3 and parts[1] == "models" and ":" in parts[2]


def _is_get_route(parts: list[str]) -> bool:
    n = len(parts)
    if parts[0] == "v2":
        if n == 1 or (n == 3 and parts[1] == "health" and parts[2] in ("live", "ready")):
            return True
        if n >= 3 and parts[1] == "models":
            try:
                return _model_path(parts)[2] in ("", "ready")
            except NotFound:
                return False
        return False
    if parts[0] == "v1":
        return n in (2, 3) and parts[1] == "models" and (n == 2 or ":" not in parts[2])
    return n == 1 and parts[0] in ("metrics", "")
