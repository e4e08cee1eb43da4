"""Server-sent events per namespace, per object, or everywhere the token may see."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from hyperflow.api.deps import CallerDep, PlaneDep
from hyperflow.api.resources import dumps
from hyperflow.handlers.auth import Caller
from hyperflow.handlers.errors import BadRequest
from hyperflow.handlers.events import Event

router = APIRouter(tags=["events"])

_OBJECT = "experiments/NAME (the experiment and its trials), inferenceservices/NAME, ..."
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}, "application/json": {}}}
}


def _sse(event: Event | None) -> bytes:
    if event is None:
        return b": keep-alive\n\n"
    data = dumps(event.to_dict())
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.resource_version, event.type.encode(), data)


def _since(resource_version: str | None, last_event_id: str | None) -> int | None:
    value = last_event_id or resource_version
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise BadRequest(f"resourceVersion must be a number; got {value!r}")
    return int(value)


async def _respond(
    plane: Any,
    caller: Caller,
    namespace: str | None,
    obj: str | None,
    watch: bool,
    since: int | None,
) -> Any:
    if not watch:
        events, version = plane.event_handlers.list(caller, namespace, obj, since)
        return {
            "apiVersion": "v1",
            "kind": "EventList",
            "metadata": {"resourceVersion": str(version)},
            "items": [e.to_dict() for e in events],
        }
    stream = await plane.event_handlers.watch(caller, namespace, obj, since)

    async def body() -> AsyncIterator[bytes]:
        yield b": watching\n\n"
        async for event in stream:
            if not await asyncio.to_thread(plane.tokens.still_valid, caller):
                return  # revoked while watching: nothing more of it is sent
            yield _sse(event)

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


@router.get("/apis/v1/namespaces/{namespace}/events", responses=_RESPONSES)
async def namespace_events(
    namespace: str,
    caller: CallerDep,
    plane: PlaneDep,
    watch: bool = False,
    object: Annotated[str | None, Query(description=_OBJECT)] = None,
    resource_version: Annotated[str | None, Query(alias="resourceVersion")] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Any:
    """Events of the namespace: a list of the recent ones, or with ``watch=true`` a
    server-sent event stream (``id`` = resourceVersion; reconnecting with
    ``Last-Event-ID`` or ``resourceVersion`` misses nothing still kept)."""
    since = _since(resource_version, last_event_id)
    return await _respond(plane, caller, namespace, object, watch, since)


@router.get("/apis/v1/events", responses=_RESPONSES)
async def all_events(
    caller: CallerDep,
    plane: PlaneDep,
    watch: bool = False,
    resource_version: Annotated[str | None, Query(alias="resourceVersion")] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Any:
    """Events of every namespace the token may see."""
    since = _since(resource_version, last_event_id)
    return await _respond(plane, caller, None, None, watch, since)
