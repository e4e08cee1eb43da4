"""The collector interface: a trial's observations, read incrementally.

A :class:`Collector` belongs to one trial. ``collect()`` returns the observations that
appeared since its previous call, in a deterministic order: the i-th observation a
collector of that trial produces is always the same one, whenever and however often it
is called. That makes ``skip(n)`` (drop the first ``n``, already stored by a previous
controller process) safe after a crash. ``collect(final=True)`` is called once the trial
has exited; it also returns what the trial wrote without a trailing newline.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from tuner.types import Observation


class Collector(ABC):
    def __init__(self) -> None:
        self._to_skip = 0

    def skip(self, count: int) -> None:
        """Never return the first ``count`` observations (already stored elsewhere)."""
        self._to_skip = max(0, count)

    def collect(self, final: bool = False) -> list[Observation]:
        """Observations new since the previous call (see the module docstring)."""
        observations = self._read(final)
        if self._to_skip and observations:
            dropped = min(self._to_skip, len(observations))
            self._to_skip -= dropped
            observations = observations[dropped:]
        return observations

    @abstractmethod
    def _read(self, final: bool) -> list[Observation]:
        """All observations produced since the previous call, skipped ones included."""


class NullCollector(Collector):
    """Collects nothing: kind ``None``, and ``Push`` (observations arrive over HTTP)."""

    def _read(self, final: bool) -> list[Observation]:
        return []
