"""A routed InferenceService: its default revision, an optional canary, and the split."""

from __future__ import annotations

from serving.router.pool import RevisionPool
from serving.router.split import TrafficSplit

DEFAULT = "default"
CANARY = "canary"


class RoutedService:
    """What the router needs to know about one InferenceService name."""

    def __init__(
        self,
        name: str,
        default: RevisionPool,
        canary: RevisionPool | None = None,
        canary_percent: int = 0,
    ) -> None:
        self.name = name
        self.default = default
        self.canary = canary
        self.split = TrafficSplit(canary_percent if canary is not None else 0)

    @property
    def revisions(self) -> list[RevisionPool]:
        return [self.default] if self.canary is None else [self.default, self.canary]

    def choose(self) -> RevisionPool:
        """The revision for the next request. As Knative routes only to Ready revisions:
        a canary that is not Ready (starting, or failed) gets none of the traffic, and a
        default revision that failed gives its share to a Ready canary."""
        canary = self.canary
        if canary is None or not canary.routable:
            return self.default
        if not self.default.routable and self.default.failure:
            return canary
        return canary if self.split.to_canary() else self.default

    def traffic(self) -> tuple[int, int]:
        """(default %, canary %) as requests are routed now."""
        canary = self.canary
        if canary is None or not canary.routable:
            return 100, 0
        if not self.default.routable and self.default.failure:
            return 0, 100
        return 100 - self.split.percent, self.split.percent

    def ready(self) -> bool:
        return any(pool.endpoints for pool in self.revisions)
