"""Keep the cyclic garbage collector's full passes off an experiment's hot path.

A process that imported the controller's stack (SQLAlchemy, optuna, pydantic, the store)
tracks about 330,000 objects, nearly all of them modules, classes and functions that live
as long as the process. A full collection scans every one of them: 180 ms on the
reference machine (benchmarks/README.md), and CPython 3.11 runs one whenever the objects
that survived into the oldest generation grew by a quarter of it: measured, one stall of
180-190 ms every 1,000-2,000 quick trials, in runs that last about a second.

:func:`frozen_heap` moves the objects that exist when the first experiment of the process
starts into the permanent generation (``gc.freeze()``, CPython's tool for exactly such
long-lived objects), so that full passes during the experiment scan only what was
allocated since; when the last running experiment ends, ``gc.unfreeze()`` returns them.
Nothing is freed differently: reference counting is untouched, cycles made during the
experiment are collected as before, and a cycle that was already garbage at the start is
collected after the end. A process that froze objects itself (a pre-forking server) keeps
its own arrangement: nothing is frozen or unfrozen then.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_active = 0  # experiments of this process inside frozen_heap()
_ours = False  # whether the current freeze is ours to undo


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Within: the objects that existed when the first of the nested/concurrent
    ``frozen_heap()`` blocks began are out of the collector's full passes."""
    global _active, _ours
    with _lock:
        if _active == 0:
            _ours = gc.get_freeze_count() == 0
            if _ours:
                gc.freeze()
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0 and _ours:
                gc.unfreeze()
                _ours = False
