"""The control plane's FastAPI app: routers, one error-to-status map, ASGI middleware.

Each router is a few lines per route over a handler object of the :class:`ControlPlane`;
a new resource (inference services, pipeline runs) is one more router here.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException

from hyperflow.api import analysis, console, events, experiments, inferenceservices, pipelineruns
from hyperflow.api.deps import CallerDep, PlaneDep
from hyperflow.api.middleware import BodyLimit, InternalErrors, RequestMetrics
from hyperflow.handlers.errors import HandlerError
from hyperflow.plane import ControlPlane
from hyperflow.ui import routes as ui
from tuner.metrics.push import MAX_BODY as PUSH_MAX_BODY


def _error(status: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=status)


async def _handler_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HandlerError)
    return _error(exc.status, exc.body())


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    malformed = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if malformed is not None:
        # A body FastAPI parses itself (the UI's login): malformed JSON is the 400 every
        # other body gets (bodies.decode), not a field at "0".
        reason = (malformed.get("ctx") or {}).get("error") or malformed.get("msg", "")
        return _error(400, {"error": f"invalid JSON: {reason}"})
    details = [
        {
            "path": ".".join(str(p) for p in e.get("loc", ()) if p != "body"),
            "message": str(e.get("msg", "")),
        }
        for e in errors
    ]
    if errors and all(e.get("loc", ("",))[0] in ("query", "path", "header") for e in errors):
        # A bad query is the request's fault, not a field of an object: 400, naming it.
        first = errors[0]
        where = " ".join(str(p) for p in first.get("loc", ()))
        message = f"invalid {where}: {first.get('msg', '')}; got {first.get('input')!r}"
        return _error(400, {"error": message, "details": details})
    return _error(422, {"error": "invalid request", "details": details})


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such endpoint: {request.method} {request.url.path}"
    return _error(exc.status_code, {"error": message})


system = APIRouter(tags=["system"])


@system.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@system.get("/readyz")
def readyz(plane: PlaneDep) -> Response:
    if plane.ready():
        return _error(200, {"status": "ready"})
    return _error(503, {"error": "not ready: resuming experiments and inference services"})


@system.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(plane: PlaneDep, caller: CallerDep) -> Response:
    return Response(generate_latest(plane.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def create_app(plane: ControlPlane) -> FastAPI:
    app = FastAPI(
        title="hyperflow control plane",
        version="0.1.0",
        description="Katib Experiments and KServe InferenceServices as managed resources "
        "under /apis/v1/namespaces/{namespace}/...",
        redoc_url=None,
        exception_handlers={
            HandlerError: _handler_error,
            RequestValidationError: _validation_error,
            HTTPException: _http_error,
        },
    )
    app.state.plane = plane
    app.include_router(system)
    app.include_router(experiments.router)
    app.include_router(inferenceservices.router)
    app.include_router(events.router)
    app.include_router(pipelineruns.router)
    app.include_router(analysis.router)
    app.include_router(console.router)
    app.include_router(ui.router)
    max_body = plane.settings.max_body_bytes

    def limit(path: str) -> int:
        return PUSH_MAX_BODY if path.endswith("/observations") else max_body

    # Innermost: a 500 it answers is timed and counted as one.
    app.add_middleware(InternalErrors)
    app.add_middleware(RequestMetrics, histogram=plane.metrics.api_seconds)
    app.add_middleware(BodyLimit, limit=limit)
    return app
