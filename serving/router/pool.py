"""Replicas of one revision as the router sees them, and the activator's hold queue.

A :class:`RevisionPool` is told by the deployer which replicas are ready
(:meth:`set_endpoints`) and whether the revision is Ready (``routable``: Knative's Ready
condition, which decides whether a canary gets its share); the router asks it for a
replica (:meth:`acquire`). With no ready replica, ``acquire`` holds the request (as
Knative's activator does), pokes the autoscaler once, and resumes when a replica becomes
ready, or fails with :class:`Unavailable` after the hold timeout or when the queue is
full. A replica that refuses a connection is taken out at once (:meth:`mark_unreachable`)
and the deployer told, so it probes it again instead of waiting for its next check.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from serving.router.upstream import UpstreamPool

# The namespace of services that have none (``serve run``'s): Kubernetes' default.
DEFAULT_NAMESPACE = "default"


class Unavailable(Exception):
    """No replica could take the request (503)."""


class Endpoint:
    """One ready replica: its connection pool and the requests it is serving now."""

    __slots__ = ("in_flight", "key", "upstream")

    def __init__(self, host: str, port: int, authorization: bytes | None = None) -> None:
        self.key = (host, port)
        self.upstream = UpstreamPool(host, port, authorization=authorization)
        self.in_flight = 0


class RevisionPool:
    """Ready replicas of one revision, least-in-flight picking, and concurrency accounting.

    ``concurrency`` counts requests routed to this revision that are not finished,
    including those held while it has no ready replica; its time integral feeds the
    autoscaler (Knative's averaged concurrency).
    """

    def __init__(
        self,
        service: str,
        revision: str,
        *,
        hold_timeout: float = 60.0,
        max_held: int = 1000,
        request_timeout: float | None = None,
        capacity: int = 0,
        on_cold: Callable[[RevisionPool], None] | None = None,
        on_unreachable: Callable[[RevisionPool, tuple[str, int]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        namespace: str = DEFAULT_NAMESPACE,
    ) -> None:
        self.service = service
        self.revision = revision
        self.namespace = namespace
        self.hold_timeout = hold_timeout
        self.max_held = max_held
        # Per-revision replica answer timeout (the predictor's ``timeout``); None: router's.
        self.request_timeout = request_timeout
        # containerConcurrency: at most this many in flight per replica (0: no limit);
        # beyond it requests wait here for a free slot, as at Knative's activator.
        self.capacity = capacity
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.on_cold = on_cold
        self.on_unreachable = on_unreachable
        self._clock = clock
        self.endpoints: list[Endpoint] = []
        # The ``authorization`` header sent to this revision's replicas (set by the
        # deployer that starts them with that token); None: none is sent (the router never
        # forwards the client's).
        self.authorization: bytes | None = None
        self._rr = 0
        self.held = 0
        self.failure: str | None = None
        self.starting = 0
        self.desired = 0
        # Knative's Ready condition of the revision: a canary gets its share of the traffic
        # only when Ready (a pool with no deployer behind it is taken as Ready).
        self.routable = True
        # Concurrency integral since the last sample.
        self.concurrency = 0
        self._area = 0.0
        self._last_change = clock()
        self._window_start = self._last_change
        self._requests = 0

    # --- deployer side -------------------------------------------------------------
    def set_endpoints(self, addrs: list[tuple[str, int]]) -> None:
        """Replace the ready set; connections of removed replicas are closed."""
        keep = {ep.key: ep for ep in self.endpoints}
        new: list[Endpoint] = []
        for host, port in addrs:
            ep = keep.pop((host, port), None) or Endpoint(host, port, self.authorization)
            new.append(ep)
        for ep in keep.values():
            ep.upstream.close()
        self.endpoints = new
        if new:
            self.failure = None
            self._wake(len(self._waiters))

    def set_status(
        self, *, starting: int, desired: int, failure: str | None, routable: bool = True
    ) -> None:
        """Replicas being started, the autoscaler's count, why replicas fail (if so), and
        whether the revision is Ready."""
        self.starting = starting
        self.desired = desired
        self.failure = failure if not self.endpoints else None
        self.routable = routable

    def mark_unreachable(self, ep: Endpoint) -> None:
        """``ep`` refused a connection: out of rotation now; the deployer re-checks it."""
        if ep in self.endpoints:
            self.endpoints = [e for e in self.endpoints if e is not ep]
            ep.upstream.close()
            if self.on_unreachable is not None:
                self.on_unreachable(self, ep.key)

    def deadline(self) -> float:
        """When a request held from now on gives up (the hold timeout on the pool's clock)."""
        return self._clock() + self.hold_timeout

    # --- request side ----------------------------------------------------------------
    def _change(self, delta: int) -> None:
        now = self._clock()
        self._area += self.concurrency * (now - self._last_change)
        self._last_change = now
        self.concurrency += delta

    def begin(self) -> None:
        self._requests += 1
        self._change(1)

    def end(self) -> None:
        self._change(-1)

    def _wake(self, n: int) -> None:
        while n > 0 and self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                n -= 1

    def enter(self, ep: Endpoint) -> None:
        ep.in_flight += 1

    def leave(self, ep: Endpoint) -> None:
        """A request to ``ep`` finished: a waiter for a free slot may go."""
        ep.in_flight -= 1
        if self._waiters:
            self._wake(1)

    def pick(self) -> Endpoint | None:
        """The ready replica with the fewest in-flight requests (round-robin on ties),
        or None if there is none or all are at ``capacity``."""
        eps = self.endpoints
        n = len(eps)
        if n == 0:
            return None
        if n == 1:
            best = eps[0]
        else:
            self._rr = (self._rr + 1) % n
            best = eps[self._rr]
            for i in range(n):
                ep = eps[(self._rr + i) % n]
                if ep.in_flight < best.in_flight:
                    best = ep
        if self.capacity and best.in_flight >= self.capacity:
            return None
        return best

    async def acquire(self, deadline: float | None = None) -> Endpoint:
        """A ready replica with a free slot, holding the caller until there is one (at
        most until ``deadline``, default :meth:`deadline`).

        The caller must :meth:`enter` the endpoint before its next ``await`` and
        :meth:`leave` it when done, so slots are counted exactly.
        """
        ep = self.pick()
        if ep is not None:
            return ep
        if not self.endpoints and self.failure and not self.starting:
            raise Unavailable(self.failure)
        if self.held >= self.max_held:
            raise Unavailable(f"{self.service}: too many requests waiting for a replica")
        self.held += 1
        loop = asyncio.get_running_loop()
        try:
            if not self.endpoints and self.on_cold is not None:
                self.on_cold(self)  # scale from zero: the autoscaler decides now
            if deadline is None:
                deadline = self.deadline()
            while (ep := self.pick()) is None:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    what = "free replica slot" if self.endpoints else "ready replica"
                    raise Unavailable(
                        f"{self.service}: no {what} within {self.hold_timeout:g}s"
                        + (f" ({self.failure})" if self.failure else "")
                    )
                fut: asyncio.Future[None] = loop.create_future()
                self._waiters.append(fut)
                try:
                    await asyncio.wait_for(fut, remaining)
                except TimeoutError:
                    continue
                finally:
                    if not fut.done():
                        fut.cancel()
            return ep
        finally:
            self.held -= 1
            # A slot this waiter was woken for but did not take goes to the next one.
            if self._waiters and self.pick() is not None:
                self._wake(1)

    def sample(self) -> tuple[float, float]:
        """(mean concurrency, requests/s) since the previous sample; resets the window."""
        now = self._clock()
        self._area += self.concurrency * (now - self._last_change)
        self._last_change = now
        elapsed = now - self._window_start
        if elapsed <= 0:
            return float(self.concurrency), 0.0
        mean = self._area / elapsed
        rps = self._requests / elapsed
        self._area = 0.0
        self._requests = 0
        self._window_start = now
        return mean, rps

    def close(self) -> None:
        for ep in self.endpoints:
            ep.upstream.close()
