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
        if self.canary is not None and self.split.to_canary():
            return self.canary
        return self.default

    def ready(self) -> bool:
        return any(pool.endpoints for pool in self.revisions)
