"""InferenceService routes and deploy-best: each a few lines over the handlers.

The namespace (and the caller's right to it) is checked before a body is read: a token of
another namespace learns nothing from how its body would have been judged.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from hyperflow.api import bodies
from hyperflow.api.deps import CallerDep, PlaneDep
from hyperflow.api.experiments import OBJECT_BODY, DryRun
from hyperflow.api.resources import NS, json_response, read_routes

router = APIRouter(tags=["inferenceservices"])

_DEPLOY_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["service"],
                    "properties": {
                        "service": {"type": "string"},
                        "modelFormat": {"type": "string"},
                        "modelName": {"type": "string"},
                        "canaryTrafficPercent": {"type": "integer", "minimum": 0, "maximum": 100},
                    },
                }
            }
        },
    }
}


@router.post(f"{NS}/inferenceservices", status_code=201, openapi_extra=OBJECT_BODY)
async def create_inferenceservice(
    namespace: str, request: Request, caller: CallerDep, plane: PlaneDep, dry_run: DryRun = None
) -> Response:
    """Create a KServe InferenceService (YAML or JSON): 201, 409 if the name exists.
    ``dryRun=All``: every check, nothing stored or started (200 with the object)."""
    caller.authorize(namespace)
    created = await bodies.with_body(
        request, plane.inferenceservices.create, caller, namespace, dry_run=dry_run is not None
    )
    return json_response(created, 200 if dry_run else 201)


read_routes(
    router,
    plural="inferenceservices",
    kind="InferenceService",
    handlers=lambda plane: plane.inferenceservices,
    route_name="inferenceservice",
    everywhere="Inference services of every namespace the token may see (all for an admin).",
    deleting="Delete: routing stops at once, replicas are drained and stopped (200 with the "
    "last object).",
)


@router.put(f"{NS}/inferenceservices/{{name}}", openapi_extra=OBJECT_BODY)
async def replace_inferenceservice(
    namespace: str, name: str, request: Request, caller: CallerDep, plane: PlaneDep
) -> Response:
    """Replace the spec: a new revision (``canaryTrafficPercent`` splits the traffic with
    the previous one), or only a new split."""
    caller.authorize(namespace)
    body = bodies.decode(await request.body(), request.headers.get("content-type"))
    replaced = await run_in_threadpool(
        plane.inferenceservices.replace, caller, namespace, name, body
    )
    return json_response(replaced)


@router.post(f"{NS}/experiments/{{name}}/deploy-best", openapi_extra=_DEPLOY_BODY)
async def deploy_best(
    namespace: str, name: str, request: Request, caller: CallerDep, plane: PlaneDep
) -> Response:
    """Register the best trial's model in the MLflow Model Registry (a new version of the
    model named after the experiment, or ``modelName``) and serve it from
    ``models:/MODEL/VERSION`` by the InferenceService ``service``: created (201) or
    replaced (200, a new revision)."""
    caller.authorize(namespace)
    body = bodies.decode(await request.body(), "application/json", yaml_ok=False)
    result, created = await run_in_threadpool(
        plane.deploy.deploy_best, caller, namespace, name, body
    )
    return json_response(result, 201 if created else 200)
