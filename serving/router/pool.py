"""Replicas of one revision as the router sees them, and the activator's hold queue.

A :class:`RevisionPool` is told by the deployer which replicas are ready
(:meth:`set_endpoints`); the router asks it for one (:meth:`acquire`). With no ready
replica, ``acquire`` holds the request (as Knative's activator does), pokes the
autoscaler once, and resumes when a replica becomes ready, or fails with
:class:`Unavailable` after the hold timeout or when the queue is full.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from serving.router.upstream import UpstreamPool


class Unavailable(Exception):
    """No replica could take the request (503)."""


class Endpoint:
    """One ready replica: its connection pool and the requests it is serving now."""

    __slots__ = ("in_flight", "key", "upstream")

    def __init__(self, host: str, port: int) -> None:
        self.key = (host, port)
        self.upstream = UpstreamPool(host, port)
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
        on_cold: Callable[[RevisionPool], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.revision = revision
        self.hold_timeout = hold_timeout
        self.max_held = max_held
        # Per-revision replica answer timeout (the predictor's ``timeout``); None: router's.
        self.request_timeout = request_timeout
        self.on_cold = on_cold
        self._clock = clock
        self.endpoints: list[Endpoint] = []
        self._ready = asyncio.Event()
        self._rr = 0
        self.held = 0
        self.failure: str | None = None
        self.starting = 0
        self.desired = 0
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
            ep = keep.pop((host, port), None) or Endpoint(host, port)
            new.append(ep)
        for ep in keep.values():
            ep.upstream.close()
        self.endpoints = new
        if new:
            self.failure = None
            self._ready.set()
        else:
            self._ready.clear()

    def set_status(self, *, starting: int, desired: int, failure: str | None) -> None:
        """Replicas being started, the autoscaler's count, and why replicas fail (if so)."""
        self.starting = starting
        self.desired = desired
        self.failure = failure if not self.endpoints else None

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

    def pick(self) -> Endpoint | None:
        """The ready replica with the fewest in-flight requests (round-robin on ties)."""
        eps = self.endpoints
        n = len(eps)
        if n == 0:
            return None
        if n == 1:
            return eps[0]
        self._rr = (self._rr + 1) % n
        best = eps[self._rr]
        for i in range(n):
            ep = eps[(self._rr + i) % n]
            if ep.in_flight < best.in_flight:
                best = ep
        return best

    async def acquire(self) -> Endpoint:
        """A ready replica, holding the caller while there is none (activator)."""
        ep = self.pick()
        if ep is not None:
            return ep
        if self.failure and not self.starting:
            raise Unavailable(self.failure)
        if self.held >= self.max_held:
            raise Unavailable(f"{self.service}: too many requests waiting for a replica")
        self.held += 1
        try:
            if self.on_cold is not None:
                self.on_cold(self)
            deadline = self._clock() + self.hold_timeout
            while (ep := self.pick()) is None:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise Unavailable(
                        f"{self.service}: no ready replica within {self.hold_timeout:g}s"
                        + (f" ({self.failure})" if self.failure else "")
                    )
                try:
                    await asyncio.wait_for(self._ready.wait(), remaining)
                except TimeoutError:
                    continue
            return ep
        finally:
            self.held -= 1

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
