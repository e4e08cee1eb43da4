"""The router: routing, auth and proxying for every InferenceService behind one port.

Routes ``/v1/models/{name}[:predict|:explain]`` and ``/v2/models/{name}/...`` by model
name (services of the default namespace), and ``/serving/{namespace}/{name}/...`` (KServe's
path-based ingress template, every namespace; the prefix is stripped before forwarding)
to the least-busy ready replica of the chosen revision (canary split per service),
forwards the body byte for byte (binary-extension headers included) over pooled
keep-alive connections and tags the response with ``x-hyperflow-revision``. It answers
``/v1/models``, ``/v2``, ``/v2/health/live|ready`` and ``/metrics`` itself.

Errors are JSON ``{"error": ...}``: 401 (token), 404 (unknown model or path), 413 (body
over the limit), 503 (no replica in time, replica failed to load, replica broke off).

A replica that refuses the connection (it died, and the deployer has not noticed yet)
is taken out of rotation and the request held until a replica is ready, within the
activator's hold timeout: nothing was sent, so this retry is always safe. A replica that
breaks off after the request was sent is retried once on another ready replica, if any.

:meth:`Router.handle` is the transport-free core (request in, response out). Two
transports use it: :mod:`serving.router.http` (an httptools protocol, what ``serve run``
binds: one write per response) and this class's ASGI ``__call__`` (mountable anywhere,
used in-process).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from serving.protocol.v2 import EXTENSIONS
from serving.router.metrics import RouterMetrics
from serving.router.pool import DEFAULT_NAMESPACE, Endpoint, RevisionPool, Unavailable
from serving.router.service import RoutedService
from serving.router.upstream import HOP_BY_HOP, ConnectError, Response, UpstreamError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

JSON = [(b"content-type", b"application/json")]
# Health probes, and KServe's V1 liveness (``GET /``, what its client's is_server_live asks).
OPEN_PATHS = frozenset({"/", "/v2/health/live", "/v2/health/ready"})
# KServe's ``pathTemplate`` (``/serving/{{ .Namespace }}/{{ .Name }}``): every service of
# every namespace, unambiguously; the plain paths serve the default namespace's services.
PATH_PREFIX = "/serving/"


def target_namespace(path: str) -> str | None:
    """The namespace of the service a data-plane ``path`` addresses: ``NS`` for
    ``/serving/NS/...``, the default namespace for the plain ``/v1/models...`` and
    ``/v2/models/...``; None for the router's own paths (health, metadata, metrics)."""
    if path.startswith(PATH_PREFIX):
        return path[len(PATH_PREFIX) :].split("/", 1)[0]
    if path.startswith(("/v1/models", "/v2/models/")):
        return DEFAULT_NAMESPACE
    return None


def prefixed_url(base: str, namespace: str, name: str) -> str:
    """Where ``/v1/...`` and ``/v2/...`` of a service are reached, under ``base``
    (``http://host:port``): the plain paths in the default namespace, else the prefix."""
    if namespace == DEFAULT_NAMESPACE:
        return base
    return f"{base}{PATH_PREFIX}{namespace}/{name}"


def _header(headers: Headers, name: bytes) -> bytes | None:
    for k, v in headers:
        if k == name:
            return v
    return None


class HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> Response:
        return Response(self.status, list(JSON), orjson.dumps({"error": self.message}))


def json_response(status: int, payload: object) -> Response:
    return Response(status, list(JSON), orjson.dumps(payload))


class Router:
    """Routes by model name. ``token`` (if set) is required as ``Authorization: Bearer``.

    ``services``: what the plain paths route to (the default namespace's services);
    ``namespaced``: every service by (namespace, name), for the ``/serving/`` prefix."""

    def __init__(
        self,
        *,
        token: str | None = None,
        authorize: Callable[[str, bytes | None], None] | None = None,
        max_body_bytes: int = 64 * 1024 * 1024,
        upstream_timeout: float = 60.0,
    ) -> None:
        self.services: dict[str, RoutedService] = {}
        self.namespaced: dict[tuple[str, str], RoutedService] = {}
        self.token = token.encode() if token else None
        # ``authorize(path, Authorization header or None)``, for every path but the open
        # ones: raises HTTPError (401, 403) to refuse (the control plane's scoped tokens).
        self.authorize = authorize
        self.max_body_bytes = max_body_bytes
        self.upstream_timeout = upstream_timeout
        self.metrics = RouterMetrics(self.pools)

    def add(self, service: RoutedService, namespace: str = DEFAULT_NAMESPACE) -> None:
        """Route ``service`` (replacing one of the same name and namespace)."""
        self.namespaced[(namespace, service.name)] = service
        if namespace == DEFAULT_NAMESPACE:
            self.services[service.name] = service

    def remove(self, name: str, namespace: str = DEFAULT_NAMESPACE) -> RoutedService | None:
        """Stop routing to a service; requests for it are 404 from now on."""
        service = self.namespaced.pop((namespace, name), None)
        if namespace == DEFAULT_NAMESPACE:
            self.services.pop(name, None)
        return service

    def all_services(self) -> list[RoutedService]:
        return list(
            {id(s): s for s in [*self.services.values(), *self.namespaced.values()]}.values()
        )

    def pools(self) -> Iterator[RevisionPool]:
        for svc in self.all_services():
            yield from svc.revisions

    def ready(self) -> bool:
        return all(
            svc.default.endpoints or (svc.default.desired == 0 and not svc.default.failure)
            for svc in self.all_services()
        )

    def close(self) -> None:
        for pool in self.pools():
            pool.close()

    # --- the core ----------------------------------------------------------------------
    async def handle(
        self, method: str, path: str, target: bytes, headers: Headers, body: bytes
    ) -> Response:
        """Answer one request. ``target`` is the raw path + query to forward; ``headers``
        have lower-case names. Never raises for a client or replica problem."""
        try:
            if self.token is not None and path not in OPEN_PATHS:
                self._check_token(headers)
            if self.authorize is not None and path not in OPEN_PATHS:
                self.authorize(path, _header(headers, b"authorization"))
            if path.startswith(PATH_PREFIX):
                found, target = self._prefixed(path, target)
                return await self._proxy(found, method, target, headers, body)
            if path.startswith("/v2/models/"):
                name = path[11:].split("/", 1)[0]
            elif path.startswith("/v1/models/"):
                name = path[11:].split(":", 1)[0]
                if "/" in name:
                    raise HTTPError(404, f"no route for {path}")
            else:
                return self._local(method, path)
            svc = self.services.get(name)
            if svc is None:
                raise HTTPError(404, f"model {name!r} not found")
            return await self._proxy(svc, method, target, headers, body)
        except HTTPError as exc:
            return exc.response()

    def _prefixed(self, path: str, target: bytes) -> tuple[RoutedService, bytes]:
        """``/serving/NS/NAME/REST``: the service and ``/REST`` (the target to forward)."""
        parts = path.split("/", 4)
        if len(parts) < 5:
            raise HTTPError(404, f"no route for {path}: use {PATH_PREFIX}NAMESPACE/NAME/v2/...")
        namespace, name = parts[2], parts[3]
        svc = self.namespaced.get((namespace, name))
        raw = target.split(b"/", 4)
        if svc is None or len(raw) < 5 or raw[2:4] != [namespace.encode(), name.encode()]:
            raise HTTPError(404, f"inference service {name!r} not found in namespace {namespace!r}")
        return svc, b"/" + raw[4]

    def _check_token(self, headers: Headers) -> None:
        assert self.token is not None
        for k, v in headers:
            if k == b"authorization":
                scheme, _, cred = v.partition(b" ")
                if scheme.lower() == b"bearer" and hmac.compare_digest(cred.strip(), self.token):
                    return
                break
        raise HTTPError(401, "missing or invalid bearer token")

    def _local(self, method: str, path: str) -> Response:
        response = self._answer(path)
        if method not in ("GET", "HEAD"):  # what the router answers itself takes GET only
            body = orjson.dumps({"error": f"{path} takes GET, not {method}"})
            return Response(405, [*JSON, (b"allow", b"GET, HEAD")], body)
        return response

    def _answer(self, path: str) -> Response:
        if path == "/":
            return json_response(200, {"status": "alive"})  # as KServe's model server
        if path == "/v2/health/live":
            return json_response(200, {"live": True})
        if path == "/v2/health/ready":
            ready = self.ready()
            return json_response(200 if ready else 503, {"ready": ready})
        if path in ("/v1/models", "/v1/models/"):
            return json_response(200, {"models": sorted(self.services)})
        if path in ("/v2", "/v2/"):
            # Binary tensor bodies and their headers are forwarded unchanged, so the
            # router offers what its replicas offer.
            meta = {"name": "hyperflow-router", "version": "0.1.0", "extensions": EXTENSIONS}
            return json_response(200, meta)
        if path == "/metrics":
            body = generate_latest(self.metrics.registry)
            return Response(200, [(b"content-type", CONTENT_TYPE_LATEST.encode())], body)
        raise HTTPError(404, f"no route for {path}")

    async def _proxy(
        self, svc: RoutedService, method: str, target: bytes, headers: Headers, body: bytes
    ) -> Response:
        start = time.perf_counter()
        pool = svc.choose()
        status = 503
        pool.begin()
        try:
            try:
                ep = await pool.acquire()
            except Unavailable as exc:
                raise HTTPError(503, str(exc)) from None
            resp = await self._forward(pool, ep, method, target, headers, body)
            status = resp.status
            out = [(k, v) for k, v in resp.headers if k not in HOP_BY_HOP]
            out.append((b"x-hyperflow-revision", pool.revision.encode()))
            resp.headers = out
            return resp
        finally:
            pool.end()
            self.metrics.observe(
                pool.namespace, svc.name, pool.revision, status, time.perf_counter() - start
            )

    async def _forward(
        self,
        pool: RevisionPool,
        ep: Endpoint,
        method: str,
        target: bytes,
        headers: Headers,
        body: bytes,
    ) -> Response:
        fwd = [(k, v) for k, v in headers if k != b"authorization"]
        timeout = pool.request_timeout or self.upstream_timeout
        retried = False
        deadline: float | None = None
        while True:
            cur = ep
            pool.enter(cur)
            try:
                return await cur.upstream.request(method, target, fwd, body, timeout)
            except ConnectError as exc:
                # Dead before the deployer noticed: out of rotation, and the request
                # waits for a ready replica as at a cold start (nothing was sent).
                pool.mark_unreachable(cur)
                refused = str(exc)
            except UpstreamError as exc:
                # Broke off after the request was sent: once on another ready replica.
                others = [e for e in pool.endpoints if e is not cur]
                if not retried and others:
                    retried = True
                    ep = min(others, key=lambda e: e.in_flight)
                    continue
                raise HTTPError(503, f"{pool.service}/{pool.revision}: {exc}") from None
            except TimeoutError:
                raise HTTPError(
                    503, f"{pool.service}: replica did not answer in {timeout:g}s"
                ) from None
            finally:
                pool.leave(cur)
            if deadline is None:
                deadline = pool.deadline()
            try:
                ep = await pool.acquire(deadline)
            except Unavailable as exc:
                raise HTTPError(503, f"{exc}; last replica tried: {refused}") from None

    # --- ASGI transport --------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            try:
                body = await self._read_body(scope, receive)
            except HTTPError as exc:
                resp = exc.response()
            else:
                target: bytes = scope.get("raw_path") or scope["path"].encode()
                if scope["query_string"]:
                    target = target + b"?" + scope["query_string"]
                resp = await self.handle(
                    scope["method"], scope["path"], target, scope["headers"], body
                )
            headers = [*resp.headers, (b"content-length", str(len(resp.body)).encode())]
            await send({"type": "http.response.start", "status": resp.status, "headers": headers})
            await send({"type": "http.response.body", "body": resp.body})
        elif kind == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    self.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.max_body_bytes
        for k, v in scope["headers"]:
            if k == b"content-length":
                try:
                    declared = int(v)
                except ValueError:
                    raise HTTPError(400, "invalid content-length") from None
                if declared > limit:
                    raise HTTPError(413, f"request body over {limit} bytes")
                break
        parts: list[bytes] = []
        size = 0
        more = True
        while more:
            msg = await receive()
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise HTTPError(413, f"request body over {limit} bytes")
            parts.append(chunk)
            more = msg.get("more_body", False)
        return parts[0] if len(parts) == 1 else b"".join(parts)
