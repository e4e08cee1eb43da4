"""Where a model's synchronous code runs: inline on the event loop, or in a worker thread.

Offloading costs a thread hand-off per call (tens of microseconds plus GIL ping-pong),
which dominates a small sklearn predict; running a slow predict inline would block health
checks and every other request's I/O (kserve#3950). So the policy is:

- ``inline=True``: always on the loop (the runtime promises microsecond calls);
- ``inline=False``: always in the pool;
- ``inline=None`` (default) adaptive: start in the pool and time each call there; after
  ``warmup`` calls whose moving average is below ``inline_below`` seconds, run inline;
  any inline call slower than ``offload_above`` switches back to the pool for good
  measure (re-learning from scratch). A model that ever takes long is thus offloaded
  after at most one slow inline call; a model that is slow from the start never runs
  inline.

``thread_safe=False`` models always run in a single dedicated thread (calls serialised).
``concurrency > 0`` bounds concurrent calls (containerConcurrency), inline or not.
Coroutine functions are awaited directly (they own their own concurrency).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

_perf = time.perf_counter


class PredictRunner:
    """Runs model callables per the policy in the module docstring."""

    def __init__(
        self,
        *,
        inline: bool | None = None,
        thread_safe: bool = True,
        concurrency: int = 0,
        max_workers: int | None = None,
        warmup: int = 16,
        inline_below: float = 0.001,
        offload_above: float = 0.005,
    ) -> None:
        self._fixed = inline if thread_safe else False
        self._inline = bool(self._fixed)
        workers = 1 if not thread_safe else (max_workers or concurrency or 8)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="predict")
        self._sem = asyncio.Semaphore(concurrency) if concurrency > 0 else None
        self._warmup = warmup
        self._inline_below = inline_below
        self._offload_above = offload_above
        self._samples = 0
        self._avg = 0.0

    @property
    def inline(self) -> bool:
        """Whether the next synchronous call runs on the event loop."""
        return self._inline

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._sem is None:
            return await self._run(fn, args)
        async with self._sem:
            return await self._run(fn, args)

    async def _run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        if inspect.iscoroutinefunction(fn):
            return await fn(*args)
        if self._inline:
            t0 = _perf()
            try:
                return fn(*args)
            finally:
                self._observe_inline(_perf() - t0)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._timed, fn, args)

    def _timed(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        t0 = _perf()
        try:
            return fn(*args)
        finally:
            self._observe_offloaded(_perf() - t0)

    def _observe_offloaded(self, dt: float) -> None:
        # Runs in a worker thread; the races on these floats only blur an estimate.
        if self._fixed is not None:
            return
        self._samples += 1
        self._avg = dt if self._samples == 1 else 0.8 * self._avg + 0.2 * dt
        if self._samples >= self._warmup and self._avg < self._inline_below:
            self._inline = True

    def _observe_inline(self, dt: float) -> None:
        if self._fixed is None and dt > self._offload_above:
            self._inline = False
            self._samples = 0

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
