"""Read models for plotting (the web UI's data): experiment summaries, the trial table as
columns (incremental with ``after``), intermediate values, importances and a contour grid.
Each route a few lines over :class:`~hyperflow.handlers.analysis.AnalysisHandlers`."""

from __future__ import annotations

import gzip
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from hyperflow.api.deps import CallerDep, PlaneDep
from hyperflow.handlers.deploy import model_format_of
from hyperflow.handlers.experiments import storage_uris

router = APIRouter(tags=["analysis"])
EXP = "/apis/v1/namespaces/{namespace}/experiments/{name}"

After = Annotated[
    int,
    Query(
        ge=-1,
        le=2**62,
        description="only trials numbered above this (the previous answer's finishedThrough)",
    ),
]
Metric = Annotated[str | None, Query(description="a metric name (default: the objective's)")]
# Below this the answer goes as it is: compressing costs more than it saves.
_GZIP_FROM = 4096


def _encoded(request: Request, body: Any) -> tuple[bytes, dict[str, str]]:
    data = orjson.dumps(body)
    headers = {"vary": "accept-encoding"}
    if len(data) >= _GZIP_FROM and "gzip" in request.headers.get("accept-encoding", ""):
        data = gzip.compress(data, compresslevel=4)
        headers["content-encoding"] = "gzip"
    return data, headers


def compressed_json(request: Request, body: Any) -> Response:
    """JSON, gzipped when the client accepts it and it is big (a 10,000-trial table is
    megabytes as text, a few hundred kilobytes compressed)."""
    data, headers = _encoded(request, body)
    return Response(data, media_type="application/json", headers=headers)


@router.get("/apis/v1/experimentsummaries")
def all_summaries(
    request: Request, caller: CallerDep, plane: PlaneDep, phase: str | None = None
) -> Response:
    """One row per experiment of every namespace the token may see: phase, reason,
    algorithm, trial counts by phase, budget, best objective value, times."""
    return compressed_json(request, plane.analysis.summaries(caller, None, phase=phase))


@router.get("/apis/v1/namespaces/{namespace}/experimentsummaries")
def namespace_summaries(
    namespace: str, request: Request, caller: CallerDep, plane: PlaneDep, phase: str | None = None
) -> Response:
    return compressed_json(request, plane.analysis.summaries(caller, namespace, phase=phase))


@router.get(f"{EXP}/trialtable")
def trial_table(
    namespace: str,
    name: str,
    request: Request,
    caller: CallerDep,
    plane: PlaneDep,
    after: After = -1,
) -> Response:
    """The trials as columns (number, name, phase, reason, parameters, metrics, times);
    ``after=finishedThrough`` of the previous answer returns only what may have changed."""
    # Kept as sent while nothing changes (a 10,000-trial table is ~5 MB of JSON, 0.85 MB
    # gzipped: the gzip costs more than reading it); the namespace is checked first.
    caller.authorize(namespace)
    gzipped = "gzip" in request.headers.get("accept-encoding", "")
    body, headers = plane.analysis.sent.get(
        (namespace, name, after, gzipped),
        plane.analysis.stamp(),
        lambda: _encoded(request, plane.analysis.trial_table(caller, namespace, name, after=after)),
    )
    return Response(body, media_type="application/json", headers=headers)


@router.get(f"{EXP}/intermediatevalues")
def intermediate_values(
    namespace: str,
    name: str,
    request: Request,
    caller: CallerDep,
    plane: PlaneDep,
    metric: Metric = None,
    after: After = -1,
) -> Response:
    """Every reported value of a metric by trial and step (flat columns)."""
    return compressed_json(
        request,
        plane.analysis.intermediate_values(caller, namespace, name, metric=metric, after=after),
    )


@router.get(f"{EXP}/importances")
def importances(
    namespace: str,
    name: str,
    request: Request,
    caller: CallerDep,
    plane: PlaneDep,
    evaluator: Annotated[
        str | None, Query(description="fanova (default), mdi or ped-anova")
    ] = None,
    metric: Metric = None,
) -> Response:
    """Parameter importances by one of optuna's evaluators over the succeeded trials."""
    return compressed_json(
        request,
        plane.analysis.importance(caller, namespace, name, evaluator=evaluator, metric=metric),
    )


@router.get(f"{EXP}/contour")
def contour(
    namespace: str,
    name: str,
    request: Request,
    caller: CallerDep,
    plane: PlaneDep,
    x: Annotated[str | None, Query(max_length=253, description="a parameter")] = None,
    y: Annotated[str | None, Query(max_length=253, description="another parameter")] = None,
    metric: Metric = None,
) -> Response:
    """A metric interpolated over two parameters on a grid (optuna's contour plot)."""
    return compressed_json(
        request, plane.analysis.contour(caller, namespace, name, x=x, y=y, metric=metric)
    )


@router.get(f"{EXP}/trials/{{trial}}/artifacts")
def trial_artifacts(
    namespace: str, name: str, trial: str, request: Request, caller: CallerDep, plane: PlaneDep
) -> Response:
    """The trial's MLflow run id and ``runs:/`` storage URIs of what it saved (a model to
    deploy), as ``best`` gives them for the best trial, and the serving runtime its files
    call for (``modelFormat``, as ``deploy-best`` finds it; null: cannot tell)."""
    saved = plane.experiments.trial_saved(caller, namespace, name, trial)
    preferred = saved.preferred
    found = model_format_of(saved.folder / preferred) if saved.folder and preferred else None
    return compressed_json(request, {**storage_uris(saved), "modelFormat": found})
