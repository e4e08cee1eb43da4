"""What every resource kind's routes share: paths, paging, JSON bodies, and the read routes.

:func:`read_routes` adds the four routes each kind has in the same shape (list in a
namespace, list across the namespaces the caller may see, get, delete), each a call of
the kind's handlers, so that a kind's module only writes what is its own (create, patch,
logs, ...).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, Protocol

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response

from hyperflow.api.deps import CallerDep, PlaneDep
from hyperflow.handlers.paging import Page

NS = "/apis/v1/namespaces/{namespace}"

Limit = Annotated[int | None, Query(ge=0, description="page size (default 100, at most 5000)")]
Continue = Annotated[str | None, Query(alias="continue", description="token of the next page")]


def dumps(body: Any) -> bytes:
    """JSON with orjson; the standard library's when orjson cannot (an integer beyond 64
    bits, which bodies.decode now refuses but an older row may hold): JSON has no range,
    and every integer a row holds was written by ``json.dumps``, so this one always can.
    One such row must not make every list it is in an error."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(body: Any, status: int = 200) -> Response:
    """JSON with orjson: for a 10,000-trial experiment FastAPI's own encoding of the
    returned dict would cost more than reading it from the store."""
    return Response(dumps(body), status_code=status, media_type="application/json")


def list_body(kind: str, page: Page) -> Response:
    return json_response(
        {
            "apiVersion": "v1",
            "kind": f"{kind}List",
            "metadata": {"continue": page.next, "resourceVersion": str(page.resource_version)},
            "items": page.items,
        }
    )


class ReadHandlers(Protocol):
    """The handlers' side of the read routes (``list`` also takes the kind's filter, by
    its query parameter's name, when it has one)."""

    def list(self, caller: Any, namespace: str | None, **query: Any) -> Page: ...

    def get(self, caller: Any, namespace: str, name: str) -> dict[str, Any]: ...

    def delete(self, caller: Any, namespace: str, name: str) -> dict[str, Any]: ...


def read_routes(
    router: APIRouter,
    *,
    plural: str,
    kind: str,
    handlers: Callable[[Any], ReadHandlers],
    route_name: str,
    everywhere: str,
    selector: tuple[str, str] | None = None,
    deleting: str | None = None,
) -> None:
    """Add ``GET {NS}/{plural}``, ``GET /apis/v1/{plural}``, ``GET {NS}/{plural}/{name}``
    and ``DELETE {NS}/{plural}/{name}`` to ``router``.

    ``handlers(plane)``: the kind's handlers; ``route_name``: the singular in the routes'
    (OpenAPI operations') names, e.g. ``experiment`` gives ``list_experiments``,
    ``list_all_experiments``, ``get_experiment``, ``delete_experiment``; ``everywhere``:
    what the cross-namespace list says it returns; ``selector``: the list's filter (query
    parameter name, description), passed to ``handlers.list`` under that name;
    ``deleting``: what the delete route says it does.
    """
    field, about = selector if selector is not None else ("", "")

    def list_in(
        namespace: str | None,
        caller: CallerDep,
        plane: PlaneDep,
        value: str | None = Query(None, alias=field or "_", description=about),
        limit: Limit = None,
        continue_: Continue = None,
    ) -> Response:
        query = {field: value} if field else {}
        page = handlers(plane).list(caller, namespace, limit=limit, continue_=continue_, **query)
        return list_body(kind, page)

    # Every namespace: the same route without the path's namespace.
    list_all = _without(list_in, "namespace", None)
    if not field:  # no filter: no query parameter for one
        list_in, list_all = _without(list_in, "value", None), _without(list_all, "value", None)

    def get(namespace: str, name: str, caller: CallerDep, plane: PlaneDep) -> Response:
        return json_response(handlers(plane).get(caller, namespace, name))

    def delete(namespace: str, name: str, caller: CallerDep, plane: PlaneDep) -> Response:
        return json_response(handlers(plane).delete(caller, namespace, name))

    one, many = f"{NS}/{plural}/{{name}}", f"{route_name}s"
    for path, endpoint, method, operation, text in (
        (f"{NS}/{plural}", list_in, "GET", f"list_{many}", None),
        (f"/apis/v1/{plural}", list_all, "GET", f"list_all_{many}", everywhere),
        (one, get, "GET", f"get_{route_name}", None),
        (one, delete, "DELETE", f"delete_{route_name}", deleting),
    ):
        router.add_api_route(path, endpoint, methods=[method], name=operation, description=text)


def _without(route: Callable[..., Response], parameter: str, value: Any) -> Callable[..., Response]:
    """``route`` with ``parameter`` always ``value``: not one of the route's parameters
    (FastAPI reads them from the signature)."""
    import functools
    import inspect

    signature = inspect.signature(route)
    kept = [p for p in signature.parameters.values() if p.name != parameter]

    @functools.wraps(route)
    def without(**kwargs: Any) -> Response:
        return route(**kwargs, **{parameter: value})

    without.__signature__ = signature.replace(parameters=kept)  # type: ignore[attr-defined]
    return without
