"""A time window of metric samples, averaged the way Knative's bucketed windows are.

Samples arrive once per tick (the router reports the time-weighted mean in-flight count
or the request rate over the tick). The average over a window is the mean of the samples
whose timestamps fall in ``(now - window, now]``; before a full window has elapsed it
is the mean of what exists, so a fresh revision is not judged on imaginary zeros.
"""

from __future__ import annotations

from collections import deque


class MetricWindow:
    """Samples kept for ``horizon`` seconds; averages over any window up to it."""

    def __init__(self, horizon: float) -> None:
        self._horizon = horizon
        self._samples: deque[tuple[float, float]] = deque()

    def record(self, now: float, value: float) -> None:
        self._samples.append((now, value))
        cutoff = now - self._horizon
        while self._samples and self._samples[0][0] <= cutoff:
            self._samples.popleft()

    def average(self, now: float, window: float) -> float | None:
        """Mean of samples in ``(now - window, now]``; ``None`` when there are none."""
        cutoff = now - window
        total = 0.0
        count = 0
        for t, v in reversed(self._samples):
            if t <= cutoff:
                break
            if t <= now:
                total += v
                count += 1
        return total / count if count else None

    def last_nonzero(self) -> float | None:
        """Timestamp of the newest sample with traffic, if any is kept."""
        for t, v in reversed(self._samples):
            if v > 0:
                return t
        return None
