"""Katib's ``medianstop`` early-stopping rule.

As Katib computes it: once ``min_trials_required`` trials have succeeded, take for each
the average of its first ``start_step`` objective observations, and the median of those
averages. A running trial that has reported at least ``start_step`` objective values and
whose latest one is worse than that median is stopped (phase EarlyStopped).
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from tuner.spec.models import EarlyStoppingSpec, ObjectiveSpec, ObjectiveType

DEFAULT_MIN_TRIALS_REQUIRED = 3
DEFAULT_START_STEP = 4


@dataclass(slots=True)
class MedianStop:
    objective: ObjectiveSpec
    min_trials_required: int = DEFAULT_MIN_TRIALS_REQUIRED
    start_step: int = DEFAULT_START_STEP
    # Sorted averages of the succeeded trials added so far: each finish is an O(log n)
    # search (plus a memmove), not a recount over every succeeded trial.
    _averages: list[float] = field(default_factory=list, repr=False)

    @classmethod
    def from_spec(cls, spec: EarlyStoppingSpec, objective: ObjectiveSpec) -> MedianStop:
        settings = spec.settings()
        return cls(
            objective=objective,
            min_trials_required=int(
                settings.get("min_trials_required", DEFAULT_MIN_TRIALS_REQUIRED)
            ),
            start_step=int(settings.get("start_step", DEFAULT_START_STEP)),
        )

    def add_succeeded(self, history: Sequence[float]) -> float | None:
        """Count one more succeeded trial's objective history; the new :meth:`threshold`."""
        if len(history) > 0:
            bisect.insort(self._averages, statistics.fmean(history[: self.start_step]))
        return self.threshold()

    def reset(self) -> None:
        self._averages.clear()

    def threshold(self) -> float | None:
        """The median of the added trials' averages; None before ``min_trials_required``."""
        averages, n = self._averages, len(self._averages)
        if n == 0 or n < self.min_trials_required:
            return None
        mid = n // 2
        return averages[mid] if n % 2 else (averages[mid - 1] + averages[mid]) / 2

    def should_stop(self, history: Sequence[float], median: float | None) -> bool:
        if median is None or len(history) < self.start_step:
            return False
        latest = history[-1]
        if self.objective.type is ObjectiveType.MINIMIZE:
            return latest > median
        return latest < median
