"""Deterministic canary split: exactly ``percent`` of every 100 requests go to the canary.

A Bresenham-style accumulator spreads canary requests evenly (for 10%: every 10th
request) rather than drawing random numbers, so a short test sees the exact ratio.
"""

from __future__ import annotations


class TrafficSplit:
    __slots__ = ("_acc", "percent")

    def __init__(self, percent: int) -> None:
        if not 0 <= percent <= 100:
            raise ValueError("canaryTrafficPercent must be in [0, 100]")
        self.percent = percent
        self._acc = 0

    def to_canary(self) -> bool:
        self._acc += self.percent
        if self._acc >= 100:
            self._acc -= 100
            return True
        return False
