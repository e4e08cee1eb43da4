"""Pipeline run routes: each a few lines over PipelineRunHandlers."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from hyperflow.api import bodies
from hyperflow.api.deps import CallerDep, PlaneDep
from hyperflow.api.resources import NS, json_response, read_routes

router = APIRouter(tags=["pipelineruns"])

_RUN_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["spec"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string", "enum": ["PipelineRun"]},
                        "metadata": {
                            "type": "object",
                            "properties": {
                                "name": {"type": "string"},
                                "generateName": {"type": "string"},
                            },
                        },
                        "spec": {
                            "type": "object",
                            "required": ["pipelineSpec"],
                            "properties": {
                                "pipelineSpec": {"type": "object"},
                                "runtimeConfig": {
                                    "type": "object",
                                    "properties": {"parameters": {"type": "object"}},
                                },
                                "parallelism": {"type": "integer", "minimum": 1},
                                "cache": {"type": "boolean"},
                            },
                        },
                    },
                }
            },
            "application/yaml": {"schema": {"type": "string"}},
        },
    }
}


@router.post(f"{NS}/pipelineruns", status_code=201, openapi_extra=_RUN_BODY)
async def create_pipeline_run(
    namespace: str, request: Request, caller: CallerDep, plane: PlaneDep
) -> Response:
    caller.authorize(namespace)
    body = bodies.decode(await request.body(), request.headers.get("content-type"))
    created = await run_in_threadpool(plane.pipeline_runs.create, caller, namespace, body)
    return json_response(created, 201)


read_routes(
    router,
    plural="pipelineruns",
    kind="PipelineRun",
    handlers=lambda plane: plane.pipeline_runs,
    route_name="pipeline_run",
    everywhere="Pipeline runs of every namespace the token may see (all for an admin).",
    selector=("state", "PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED"),
)


@router.get(
    f"{NS}/pipelineruns/{{name}}/log",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
def pipeline_run_log(
    namespace: str,
    name: str,
    caller: CallerDep,
    plane: PlaneDep,
    task: str | None = Query(None, description="a task's name or path (default: every task)"),
) -> Response:
    text = plane.pipeline_runs.logs(caller, namespace, name, task)
    return Response(text, media_type="text/plain; charset=utf-8")
