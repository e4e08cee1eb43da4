"""The suggestion service over HTTP: a FastAPI app around an InProcessSuggestionClient.

Endpoints (JSON, under ``/api/v1/suggestion``)::

    GET    /healthz                                         {"status": "ok"}
    GET    /algorithms                                      Katib names and their settings
    POST   /experiments/{namespace}/{name}/restore          {"experiment", "trials"} -> counts
    POST   /experiments/{namespace}/{name}/suggest          {"count", "known", "told"}
    POST   /experiments/{namespace}/{name}/report           {"result", "known", "told"}
    POST   /experiments/{namespace}/{name}/intermediate     {"trialName", "step", "value", ...}
    DELETE /experiments/{namespace}/{name}                  forget the experiment

The service is stateful per experiment. Every call but ``restore`` carries the caller's
``known`` (trials asked or restored) and ``told`` (trials reported) counts; when the service
holds no state for the experiment (it restarted) or its counts differ, it answers 409 and
the client re-sends the history through ``restore``. ``count`` is at most
:data:`MAX_SUGGEST_COUNT`. Errors are ``{"error": ...}`` with a
4xx status. Requests need ``Authorization: Bearer <token>`` when a token is set (healthz
excepted); bodies over ``max_body`` bytes are refused with 413, and bodies not sent as
``application/json`` with 415 (a ``text/plain`` POST is one a web page may send to
loopback without asking first).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from tuner.spec.models import Experiment
from tuner.suggestion.algorithms import ALGORITHMS
from tuner.suggestion.base import (
    InvalidRequest,
    StateMismatch,
    SuggestionError,
    UnknownExperiment,
)
from tuner.suggestion.inprocess import InProcessSuggestionClient
from tuner.suggestion.wire import PREFIX, result_from_json, suggestion_to_json

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY = 16 * 1024 * 1024  # a restore of tens of thousands of trials fits
# One suggest call asks the algorithm ``count`` times while holding the experiment's lock;
# the controller asks for at most parallelTrialCount. Unbounded, {"count": 2**63} would pin
# a worker thread and grow memory until the process dies.
MAX_SUGGEST_COUNT = 10_000


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


async def _send_error(send: Send, status: int, message: str) -> None:
    body = orjson.dumps({"error": message})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class GuardMiddleware:
    """Pure ASGI: bearer-token check and request body limit, before any routing."""

    def __init__(self, app: ASGIApp, token: str | None, max_body: int) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode() if token else None
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if self.expected is not None and scope["path"] != f"{PREFIX}/healthz":
            given = headers.get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                await _send_error(send, 401, "missing or wrong bearer token")
                return
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await _send_error(send, 413, f"request body over {self.max_body} bytes")
            return
        # Chunked bodies have no length: read them here, up to the limit, then replay.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await _send_error(send, 413, f"request body over {self.max_body} bytes")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class UnsupportedMediaType(InvalidRequest):
    status = 415


async def _body(request: Request) -> dict[str, Any]:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise UnsupportedMediaType(f"the body must be application/json, not {media or 'untyped'}")
    raw = await request.body()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest("the body must be JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be a JSON object")
    return data


def _int(data: dict[str, Any], name: str, minimum: int = 0) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidRequest(f"{name!r} must be an integer >= {minimum}")
    return value


def create_app(token: str | None = None, max_body: int = DEFAULT_MAX_BODY) -> FastAPI:
    """The suggestion service app (one InProcessSuggestionClient holds every experiment)."""
    client = InProcessSuggestionClient()
    app = FastAPI(title="hyperflow suggestion service", docs_url=None, redoc_url=None)
    app.state.client = client

    @app.exception_handler(SuggestionError)
    async def suggestion_error(request: Request, exc: SuggestionError) -> Response:
        body: dict[str, Any] = {"error": str(exc)}
        if isinstance(exc, UnknownExperiment | StateMismatch):
            body["reason"] = "restore"
        return _json(body, exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _json({"error": str(exc.detail)}, exc.status_code)

    def checked(namespace: str, name: str, data: dict[str, Any]) -> Experiment:
        """The experiment's stored spec, after checking the caller's counts agree."""
        known, told = _int(data, "known"), _int(data, "told")
        state = client.state(namespace, name)
        counts = client.counts(namespace, name)
        if state is None or counts is None:
            raise UnknownExperiment(
                f"experiment {namespace}/{name} is not known to this suggestion service; "
                "restore it first"
            )
        if counts != (known, told):
            raise StateMismatch(
                f"experiment {namespace}/{name}: the service knows {counts[0]} trials and was "
                f"told {counts[1]}; the caller says {known} and {told}; restore it"
            )
        return state.experiment

    def counts_body(namespace: str, name: str) -> dict[str, int]:
        counts = client.counts(namespace, name) or (0, 0)
        return {"known": counts[0], "told": counts[1]}

    @app.get(f"{PREFIX}/healthz")
    def healthz() -> Response:
        return _json({"status": "ok"})

    @app.get(f"{PREFIX}/algorithms")
    def algorithms() -> Response:
        return _json(
            {
                name: {
                    "sampler": cls.sampler_name,
                    "supported": cls.supported,
                    "settings": [s.name for s in cls.settings],
                }
                for name, cls in sorted(ALGORITHMS.items())
            }
        )

    @app.post(f"{PREFIX}/experiments/{{namespace}}/{{name}}/restore")
    async def restore(namespace: str, name: str, request: Request) -> Response:
        data = await _body(request)
        try:
            experiment = Experiment.model_validate(data.get("experiment"))
        except ValidationError as exc:
            return _json(
                {
                    "error": "invalid experiment",
                    "detail": exc.errors(include_url=False, include_context=False),
                },
                422,
            )
        if (experiment.metadata.namespace, experiment.metadata.name) != (namespace, name):
            raise InvalidRequest("the experiment's namespace/name differ from the URL")
        trials = data.get("trials", [])
        if not isinstance(trials, list):
            raise InvalidRequest("'trials' must be a list")
        results = [result_from_json(t) for t in trials]
        await run_in_threadpool(client.restore, experiment, results)
        return _json(counts_body(namespace, name))

    @app.post(f"{PREFIX}/experiments/{{namespace}}/{{name}}/suggest")
    async def suggest(namespace: str, name: str, request: Request) -> Response:
        data = await _body(request)
        count = _int(data, "count")
        if count > MAX_SUGGEST_COUNT:
            raise InvalidRequest(f"'count' must be <= {MAX_SUGGEST_COUNT}")
        experiment = checked(namespace, name, data)
        # Off the event loop: a GP or CMA-ES ask can take a while.
        suggestions = await run_in_threadpool(client.suggest, experiment, count)
        return _json(
            {
                "suggestions": [suggestion_to_json(s) for s in suggestions],
                **counts_body(namespace, name),
            }
        )

    @app.post(f"{PREFIX}/experiments/{{namespace}}/{{name}}/report")
    async def report(namespace: str, name: str, request: Request) -> Response:
        data = await _body(request)
        experiment = checked(namespace, name, data)
        client.report(experiment, result_from_json(data.get("result")))
        return _json(counts_body(namespace, name))

    @app.post(f"{PREFIX}/experiments/{{namespace}}/{{name}}/intermediate")
    async def intermediate(namespace: str, name: str, request: Request) -> Response:
        data = await _body(request)
        experiment = checked(namespace, name, data)
        trial_name, step, value = data.get("trialName"), data.get("step"), data.get("value")
        if not isinstance(trial_name, str):
            raise InvalidRequest("'trialName' must be a string")
        step = _int(data, "step")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequest("'value' must be a number")
        prune = client.report_intermediate(experiment, trial_name, step, float(value))
        return _json({"prune": prune})

    @app.delete(f"{PREFIX}/experiments/{{namespace}}/{{name}}")
    def close(namespace: str, name: str) -> Response:
        client.close(namespace, name)
        return _json({"closed": f"{namespace}/{name}"})

    app.add_middleware(GuardMiddleware, token=token, max_body=max_body)
    return app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(host: str, port: int, token: str | None) -> None:
    """Run the service with uvicorn until interrupted.

    Binding to anything but loopback without a token is refused (exit with a message):
    the service would otherwise hand out and accept trial data from anyone on the network.
    """
    if not is_loopback(host) and not token:
        raise SystemExit(
            f"error: refusing to bind the suggestion service to {host} without a token; "
            "pass --token (or set HYPERFLOW_API_TOKEN), or bind 127.0.0.1"
        )
    import uvicorn

    shown = f"[{host}]" if ":" in host else host

    class Announcing(uvicorn.Server):
        """uvicorn logs at warning level here: one line once it listens (not when the
        port is taken: that is uvicorn's error, and it exits 1)."""

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                print(f"hyperflow suggestion service on http://{shown}:{port}", flush=True)

        async def shutdown(self, sockets: Any = None) -> None:
            await super().shutdown(sockets=sockets)
            # Before uvicorn re-raises the signal that stopped it (the exit status says it).
            print("hyperflow suggestion service: stopped", flush=True)

    Announcing(server_config(create_app(token=token), host, port)).run()


def server_config(app: Any, host: str, port: int) -> Any:
    """The uvicorn config ``serve`` runs ``app`` with: the model server's (its protocol
    answers unparsable requests with JSON 400s and bounds request heads, which stock
    uvicorn buffers without limit)."""
    from serving.server.http import uvicorn_config

    return uvicorn_config(app, host, port, log_level="warning", access_log=False)
