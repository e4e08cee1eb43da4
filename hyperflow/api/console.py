"""The web UI's inference-service routes: request metrics over time and "try it"; each a
few lines over :class:`~hyperflow.handlers.console.ServiceConsole` (404 on a server
without inference services)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from hyperflow.api import bodies
from hyperflow.api.analysis import compressed_json
from hyperflow.api.deps import COOKIE, CallerDep, PlaneDep, bearer

router = APIRouter(tags=["inference services (UI)"])
ISVC = "/apis/v1/namespaces/{namespace}/inferenceservices/{name}"


@router.get(f"{ISVC}/requestmetrics")
def request_metrics(
    namespace: str, name: str, request: Request, caller: CallerDep, plane: PlaneDep
) -> Response:
    """Request rate, error rate, latency p50/p99 and replicas over the last hour, sampled
    from the serving router every 5 seconds."""
    return compressed_json(request, plane.console.metrics(caller, namespace, name))


@router.get(f"{ISVC}/try")
async def try_example(
    namespace: str, name: str, request: Request, caller: CallerDep, plane: PlaneDep
) -> Response:
    """A request to start "try it" with, shaped as the model's V2 metadata states its
    inputs (``{"protocol", "body"}``)."""
    token = bearer(request.headers.get("authorization")) or request.cookies.get(COOKIE)
    answer = await run_in_threadpool(plane.console.try_example, caller, namespace, name, token)
    return compressed_json(request, answer)


@router.post(
    f"{ISVC}/try",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def try_it(
    namespace: str, name: str, request: Request, caller: CallerDep, plane: PlaneDep
) -> Response:
    """Send one V2 inference request (V1 predict for a v1 service) through the router and
    answer what it said (status, body, seconds)."""
    caller.authorize(namespace)
    body = bodies.decode(await request.body(), "application/json", yaml_ok=False)
    token = bearer(request.headers.get("authorization")) or request.cookies.get(COOKIE)
    answer = await run_in_threadpool(
        plane.console.try_request, caller, namespace, name, body, token
    )
    return compressed_json(request, answer)
