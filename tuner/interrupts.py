"""Ctrl-C and SIGTERM for a foreground run: ask it to stop cleanly.

Its own module (no optuna, no controller) so that a pipeline run imports only this.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any, Protocol


class Stoppable(Protocol):
    """A foreground run the signal handler can stop (an experiment's controller, a
    pipeline run): ``stop()`` winds it down; ``finished`` says it has already ended."""

    @property
    def finished(self) -> bool: ...

    def stop(self) -> None: ...


class Interrupts:
    """What the signal handler saw: a Ctrl-C the run could not act on any more."""

    late = False


@contextlib.contextmanager
def interrupts_stop(target: Stoppable) -> Iterator[Interrupts]:
    """SIGINT/SIGTERM ask ``target`` to stop cleanly (trials or tasks killed, state kept).
    Only in the main thread; elsewhere a no-op.

    A second one while it stops, or one that lands after the experiment has ended (the
    controller is finishing its bookkeeping), is not lost: the first raises
    ``KeyboardInterrupt``, the second is recorded for the caller (who then stops waiting
    for MLflow).
    """
    seen = Interrupts()
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return
    previous: dict[int, Any] = {}
    stopping = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if target.finished:
            seen.late = True
        elif stopping:
            raise KeyboardInterrupt
        else:
            stopping = True
            target.stop()

    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, handler)
    try:
        yield seen
    finally:
        for number, prev in previous.items():
            signal.signal(number, prev)


__all__ = ["Interrupts", "Stoppable", "interrupts_stop"]
