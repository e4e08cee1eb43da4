"""Trial slots: a machine-wide bound on running trials, shared fairly by experiments.

Katib starts every trial an experiment asks for and leaves queueing to the cluster
(users add Kueue). On one machine several experiments would otherwise start
``sum(parallelTrialCount)`` processes on a few cores; the control plane gives all its
controllers one :class:`FairTrialQueue` instead.

Contract of :class:`TrialSlots` (what a controller relies on):

* ``acquire(owner, trial, wake)`` never blocks. True: the trial holds a slot and may be
  launched now. False: the trial waits in the queue; ``wake()`` is called (from another
  thread, without locks held) once a slot is granted, and the next ``acquire`` of the
  same trial returns True. Asking again for a waiting trial keeps its place.
* ``adopt(owner, trial)`` records a trial that is already running (resumed after a
  restart): it takes a slot even when none is free, since the process exists anyway.
* ``release(owner, trial)`` frees the slot of a trial that ended, or withdraws it from
  the queue; unknown trials are ignored. Safe to call twice.
* All methods are thread-safe: each experiment's controller runs in its own thread.
"""

from __future__ import annotations

import itertools
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

Wake = Callable[[], None]


class TrialSlots(ABC):
    """Where a controller asks before launching a trial (see the module docstring).
    ``capacity``: how many trials hold slots at once at most (a controller keeps no more
    trials than that waiting in the queue)."""

    capacity: int

    @abstractmethod
    def acquire(self, owner: str, trial: str, wake: Wake) -> bool: ...

    @abstractmethod
    def adopt(self, owner: str, trial: str) -> None: ...

    @abstractmethod
    def release(self, owner: str, trial: str) -> None: ...


@dataclass
class _Owner:
    running: set[str] = field(default_factory=set)
    # trial -> (arrival number, wake), in arrival order
    waiting: dict[str, tuple[int, Wake]] = field(default_factory=dict)


class FairTrialQueue(TrialSlots):
    """At most ``capacity`` trials hold slots; a free slot goes to the experiment with
    the fewest running trials among those waiting (ties: the one waiting longest), so a
    large experiment cannot starve a small one and each gets its share in turn."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._owners: dict[str, _Owner] = {}
        self._lock = threading.Lock()
        self._arrivals = itertools.count()
        self._running = 0

    def acquire(self, owner: str, trial: str, wake: Wake) -> bool:
        with self._lock:
            entry = self._owners.setdefault(owner, _Owner())
            if trial in entry.running:
                return True
            if trial not in entry.waiting:
                entry.waiting[trial] = (next(self._arrivals), wake)
            woken = self._dispatch()
            granted = trial in entry.running
        _call(w for t, w in woken if t != (owner, trial))
        return granted

    def adopt(self, owner: str, trial: str) -> None:
        with self._lock:
            entry = self._owners.setdefault(owner, _Owner())
            entry.waiting.pop(trial, None)
            if trial not in entry.running:
                entry.running.add(trial)
                self._running += 1

    def release(self, owner: str, trial: str) -> None:
        with self._lock:
            entry = self._owners.get(owner)
            if entry is None:
                return
            entry.waiting.pop(trial, None)
            if trial in entry.running:
                entry.running.discard(trial)
                self._running -= 1
            if not entry.running and not entry.waiting:
                del self._owners[owner]
            woken = self._dispatch()
        _call(w for _, w in woken)

    def running(self) -> int:
        """Trials holding a slot."""
        with self._lock:
            return self._running

    def queued(self, owner: str | None = None) -> int:
        """Trials waiting for a slot (of one owner, or of all)."""
        with self._lock:
            if owner is not None:
                entry = self._owners.get(owner)
                return 0 if entry is None else len(entry.waiting)
            return sum(len(e.waiting) for e in self._owners.values())

    def _dispatch(self) -> list[tuple[tuple[str, str], Wake]]:
        woken = []
        while self._running < self.capacity:
            best: tuple[int, int, str] | None = None
            for name, entry in self._owners.items():
                if entry.waiting:
                    first = next(iter(entry.waiting.values()))[0]
                    key = (len(entry.running), first, name)
                    if best is None or key < best:
                        best = key
            if best is None:
                break
            entry = self._owners[best[2]]
            trial = next(iter(entry.waiting))
            _, wake = entry.waiting.pop(trial)
            entry.running.add(trial)
            self._running += 1
            woken.append(((best[2], trial), wake))
        return woken


def _call(wakes: object) -> None:
    for wake in wakes:  # type: ignore[attr-defined]
        wake()
