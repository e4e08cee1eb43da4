"""Experiment, trial, best, log and push routes: each a few lines over ExperimentHandlers."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from hyperflow.api import bodies
from hyperflow.api.deps import CallerDep, PlaneDep, bearer
from hyperflow.api.resources import NS, Continue, Limit, json_response, list_body, read_routes
from hyperflow.handlers.errors import BadRequest

router = APIRouter(tags=["experiments"])
_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")

OBJECT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/yaml": {"schema": {"type": "string"}},
        },
    }
}
_PATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/merge-patch+json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "properties": {
                                "maxTrialCount": {"type": ["integer", "null"]},
                                "parallelTrialCount": {"type": "integer"},
                                "maxFailedTrialCount": {"type": ["integer", "null"]},
                            },
                        }
                    },
                }
            },
            "application/json": {"schema": {"type": "object"}},
        },
    }
}
_PUSH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["observations"],
                    "properties": {
                        "observations": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["name", "value"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "value": {"type": "number"},
                                    "step": {"type": ["integer", "null"]},
                                    "timestamp": {"type": ["number", "null"]},
                                },
                            },
                        }
                    },
                }
            }
        },
    }
}

DryRun = Annotated[
    Literal["All"] | None,
    Query(alias="dryRun", description="All: validate only (Kubernetes' dry run), store nothing"),
]


@router.post(f"{NS}/experiments", status_code=201, openapi_extra=OBJECT_BODY)
async def create_experiment(
    namespace: str, request: Request, caller: CallerDep, plane: PlaneDep, dry_run: DryRun = None
) -> Response:
    caller.authorize(namespace)
    created = await bodies.with_body(
        request, plane.experiments.create, caller, namespace, dry_run=dry_run is not None
    )
    return json_response(created, 200 if dry_run else 201)


@router.put(f"{NS}/experiments/{{name}}", openapi_extra=OBJECT_BODY)
async def replace_experiment(
    namespace: str, name: str, request: Request, caller: CallerDep, plane: PlaneDep
) -> Response:
    """The whole Experiment again (``kubectl apply``): only spec.maxTrialCount,
    spec.parallelTrialCount and spec.maxFailedTrialCount may differ from the stored one
    (applied as the PATCH applies them); any other change is a 422 naming the field."""
    caller.authorize(namespace)
    replaced = await bodies.with_body(request, plane.experiments.replace, caller, namespace, name)
    return json_response(replaced)


read_routes(
    router,
    plural="experiments",
    kind="Experiment",
    handlers=lambda plane: plane.experiments,
    route_name="experiment",
    everywhere="Experiments of every namespace the token may see (all for an admin).",
    selector=("phase", "Created, Running, Restarting, Succeeded, Failed"),
)


@router.patch(f"{NS}/experiments/{{name}}", openapi_extra=_PATCH_BODY)
async def patch_experiment(
    namespace: str, name: str, request: Request, caller: CallerDep, plane: PlaneDep
) -> Response:
    caller.authorize(namespace)
    patch = bodies.decode(await request.body(), request.headers.get("content-type"), yaml_ok=False)
    patched = await run_in_threadpool(plane.experiments.patch, caller, namespace, name, patch)
    return json_response(patched)


@router.get(f"{NS}/experiments/{{name}}/best")
def best(namespace: str, name: str, caller: CallerDep, plane: PlaneDep) -> Response:
    return json_response(plane.experiments.best(caller, namespace, name))


@router.get(f"{NS}/experiments/{{name}}/trials")
def list_trials(
    namespace: str,
    name: str,
    caller: CallerDep,
    plane: PlaneDep,
    phase: str | None = None,
    sort: str | None = Query(None, description="objective or creation (default)"),
    order: str | None = Query(None, description="asc or desc (objective: best first)"),
    limit: Limit = None,
    continue_: Continue = None,
) -> Response:
    page = plane.experiments.list_trials(
        caller,
        namespace,
        name,
        phase=phase,
        sort=sort,
        order=order,
        limit=limit,
        continue_=continue_,
    )
    return list_body("Trial", page)


@router.get(f"{NS}/experiments/{{name}}/trials/{{trial}}")
def get_trial(
    namespace: str, name: str, trial: str, caller: CallerDep, plane: PlaneDep
) -> Response:
    return json_response(plane.experiments.get_trial(caller, namespace, name, trial))


@router.get(
    f"{NS}/experiments/{{name}}/trials/{{trial}}/log",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
def trial_log(
    namespace: str,
    name: str,
    trial: str,
    caller: CallerDep,
    plane: PlaneDep,
    follow: bool = False,
) -> Response:
    log = plane.experiments.trial_log(caller, namespace, name, trial)
    if follow:

        async def followed() -> AsyncIterator[bytes]:
            async for chunk in log.follow():
                if not await asyncio.to_thread(plane.tokens.still_valid, caller):
                    return  # the token was revoked while it followed
                yield chunk

        return StreamingResponse(followed(), media_type="text/plain; charset=utf-8")
    return Response(log.read(), media_type="text/plain; charset=utf-8")


@router.post(f"{NS}/experiments/{{name}}/trials/{{trial}}/observations", openapi_extra=_PUSH_BODY)
async def push_observations(
    namespace: str,
    name: str,
    trial: str,
    request: Request,
    plane: PlaneDep,
    authorization: Annotated[str | None, Header()] = None,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> Response:
    """A trial's ``report()``: the trial's push token as bearer token; each
    ``Idempotency-Key`` is stored once (a retry answers ``duplicate: true``)."""
    if idempotency_key is not None and not _KEY.fullmatch(idempotency_key):
        raise BadRequest("Idempotency-Key: 1-64 of A-Z a-z 0-9 - _")
    checked = await run_in_threadpool(
        plane.experiments.push_trial, namespace, name, trial, bearer(authorization)
    )
    payload = bodies.decode(await request.body(), "application/json", yaml_ok=False)
    accepted = await run_in_threadpool(
        plane.experiments.push, namespace, name, checked, payload, idempotency_key
    )
    return json_response(accepted)
