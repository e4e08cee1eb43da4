"""The event stream: what changed, in order, for watchers (``-w``, the UI, SSE clients).

Events are Kubernetes watch events (``ADDED``, ``MODIFIED``, ``DELETED``) about one
object, with the reason and message of the change (a phase change, a trial created or
finished; later replicas and scale decisions). Each has a number, the ``resourceVersion``
of the stream: a list answer carries the number it was read at, and a watch from that
number misses nothing. The last ``capacity`` events are kept in memory; a watch from
further back is 410 Gone (list again), as in Kubernetes. A restarted server starts a new
stream (numbers restart at 1; clients list again).

Publishing is thread-safe (controllers publish from their own threads); subscribers are
asyncio consumers in the server's loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from hyperflow.handlers.auth import Caller
from hyperflow.handlers.errors import FieldProblem, Gone, Invalid
from hyperflow.handlers.names import check_dns_label

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"


@dataclass(frozen=True, slots=True)
class Event:
    resource_version: int
    type: str
    kind: str  # "Experiment", "Trial", later "InferenceService"
    namespace: str
    name: str
    # The object this one belongs to ("experiments/NAME" for a trial), for object filters.
    owner: str | None
    reason: str
    message: str
    time: float
    status: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "type": self.type,
            "resourceVersion": str(self.resource_version),
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "reason": self.reason,
            "message": self.message,
            "time": self.time,
            "status": self.status,
        }
        if self.owner is not None:
            out["owner"] = self.owner
        return out


# Plural resource names of kinds, as in API paths and object filters.
PLURALS = {
    "Experiment": "experiments",
    "Trial": "trials",
    "InferenceService": "inferenceservices",
    "PipelineRun": "pipelineruns",
}


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events a watcher gets: of ``namespaces`` (None: all) and, optionally, of one
    object (``experiments/NAME``: the experiment and its trials)."""

    namespaces: frozenset[str] | None
    object: str | None = None

    def matches(self, event: Event) -> bool:
        if self.namespaces is not None and event.namespace not in self.namespaces:
            return False
        if self.object is None:
            return True
        own = f"{PLURALS.get(event.kind, event.kind.lower())}/{event.name}"
        return self.object in (own, event.owner)


class _Subscriber:
    def __init__(self, loop: asyncio.AbstractEventLoop, flt: EventFilter, limit: int) -> None:
        self.loop = loop
        self.filter = flt
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.limit = limit
        self.overflowed = False

    def offer(self, event: Event) -> None:  # in the subscriber's loop
        if self.overflowed:
            return
        if self.queue.qsize() >= self.limit:
            # A consumer this far behind gets its stream closed (it lists and watches
            # again) rather than holding the server's memory.
            self.overflowed = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(event)


class EventBus:
    def __init__(self, capacity: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._events: collections.deque[Event] = collections.deque(maxlen=capacity)
        self._version = 0
        self._subscribers: set[_Subscriber] = set()

    def resource_version(self) -> int:
        with self._lock:
            return self._version

    def publish(
        self,
        type_: str,
        kind: str,
        namespace: str,
        name: str,
        *,
        owner: str | None = None,
        reason: str = "",
        message: str = "",
        status: dict[str, Any] | None = None,
    ) -> Event:
        with self._lock:
            self._version += 1
            event = Event(
                self._version,
                type_,
                kind,
                namespace,
                name,
                owner,
                reason,
                message,
                time.time(),
                status or {},
            )
            self._events.append(event)
            subscribers = list(self._subscribers)
        for sub in subscribers:
            if sub.filter.matches(event):
                with contextlib.suppress(RuntimeError):  # its loop is closed
                    sub.loop.call_soon_threadsafe(sub.offer, event)
        return event

    def recent(self, flt: EventFilter, since: int | None = None) -> list[Event]:
        with self._lock:
            events = list(self._events)
        return [
            e for e in events if (since is None or e.resource_version > since) and flt.matches(e)
        ]

    async def watch(
        self, flt: EventFilter, since: int | None = None, heartbeat: float = 15.0
    ) -> AsyncIterator[Event | None]:
        """Events after ``since`` (default: from now), then live ones as they happen;
        ``None`` items are heartbeats (nothing happened for ``heartbeat`` seconds)."""
        sub = _Subscriber(asyncio.get_running_loop(), flt, limit=10_000)
        with self._lock:
            if since is not None:
                if since > self._version:
                    since = self._version
                oldest = self._events[0].resource_version if self._events else self._version + 1
                if since < oldest - 1:
                    raise Gone(
                        f"resourceVersion {since} is too old (the oldest kept is {oldest}): "
                        "list again and watch from its resourceVersion"
                    )
                backlog = [e for e in self._events if e.resource_version > since]
            else:
                backlog = []
            self._subscribers.add(sub)
        return self._stream(sub, [e for e in backlog if flt.matches(e)], heartbeat)

    async def _stream(
        self, sub: _Subscriber, backlog: list[Event], heartbeat: float
    ) -> AsyncIterator[Event | None]:
        try:
            last = backlog[-1].resource_version if backlog else 0
            for event in backlog:
                yield event
            while True:
                try:
                    event = await asyncio.wait_for(sub.queue.get(), heartbeat)  # type: ignore[arg-type]
                except TimeoutError:
                    yield None
                    continue
                if event is None:  # overflowed
                    return
                if event.resource_version <= last:  # also in the backlog
                    continue
                yield event
        finally:
            with self._lock:
                self._subscribers.discard(sub)


class EventHandlers:
    """Watch and list events, with the caller's namespace checks."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus

    def _filter(self, caller: Caller, namespace: str | None, obj: str | None) -> EventFilter:
        if namespace is None:
            if obj is not None:
                raise Invalid("an object filter needs a namespace")
            return EventFilter(caller.visible())
        problems = check_dns_label(namespace, "namespace", what="a namespace")
        if problems:
            raise Invalid("invalid namespace", problems)
        caller.check(namespace)
        if obj is not None:
            plural, _, name = obj.partition("/")
            if plural not in PLURALS.values() or check_dns_label(name, "object"):
                raise Invalid(
                    "bad object filter",
                    [
                        FieldProblem(
                            "object",
                            f"must be <{'|'.join(sorted(PLURALS.values()))}>/<name>; got {obj!r}",
                        )
                    ],
                )
        return EventFilter(frozenset({namespace}), obj)

    def list(
        self, caller: Caller, namespace: str | None, obj: str | None, since: int | None
    ) -> tuple[list[Event], int]:
        """The kept events after ``since`` (all kept ones if None), and the stream position."""
        flt = self._filter(caller, namespace, obj)
        return self.bus.recent(flt, since), self.bus.resource_version()

    async def watch(
        self, caller: Caller, namespace: str | None, obj: str | None, since: int | None
    ) -> AsyncIterator[Event | None]:
        return await self.bus.watch(self._filter(caller, namespace, obj), since)
