"""CPU and memory of replica processes, read with psutil: what the HPA's metrics server
would report for a pod (cores busy over the last interval, resident bytes).

A replica's usage counts its process and all its descendants. The first sample of a
process only sets the baseline for its CPU (there is no interval yet): it reports no usage,
as a pod has no metrics right after it starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Protocol

import psutil

from serving.autoscaler import ResourceUsage


class UsageSampler(Protocol):
    def sample(self, pids: Iterable[int]) -> dict[int, ResourceUsage]:
        """Usage of each process that has a previous sample; others are left out."""
        ...


class ProcessUsage:
    """The default :class:`UsageSampler`; ``clock`` is the wall time CPU is divided by."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._procs: dict[int, psutil.Process] = {}
        self._last: dict[int, tuple[float, float]] = {}  # pid -> (clock, cpu seconds)

    def sample(self, pids: Iterable[int]) -> dict[int, ResourceUsage]:
        wanted = set(pids)
        for gone in set(self._procs) - wanted:
            self._procs.pop(gone, None)
            self._last.pop(gone, None)
        out: dict[int, ResourceUsage] = {}
        for pid in wanted:
            measured = self._measure(pid)
            if measured is None:
                continue
            now = self._clock()
            cpu_seconds, rss = measured
            last = self._last.get(pid)
            self._last[pid] = (now, cpu_seconds)
            if last is None or now <= last[0]:
                continue
            cores = max(0.0, cpu_seconds - last[1]) / (now - last[0])
            out[pid] = ResourceUsage(cpu=cores, memory=float(rss))
        return out

    def _measure(self, pid: int) -> tuple[float, int] | None:
        """(CPU seconds, resident bytes) of ``pid`` and its descendants."""
        try:
            proc = self._procs.get(pid)
            if proc is None:
                proc = self._procs[pid] = psutil.Process(pid)
            tree = [proc, *proc.children(recursive=True)]
        except psutil.Error:
            self._procs.pop(pid, None)
            self._last.pop(pid, None)
            return None
        cpu = 0.0
        rss = 0
        for p in tree:
            try:
                with p.oneshot():
                    t = p.cpu_times()
                    cpu += t.user + t.system
                    rss += p.memory_info().rss
            except psutil.Error:
                continue  # a child that exited meanwhile
        return cpu, rss
