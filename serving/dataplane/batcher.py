"""Server-side batching of array requests (KServe's ``batcher: {maxBatchSize, maxLatency}``).

Contract: ``await batcher.submit(rows)`` returns exactly the model's output rows for
``rows`` (axis 0), as if predicted alone. Requests arriving while a batch is open join
it; a batch closes when it holds ``max_batch_size`` rows or ``max_latency`` seconds after
its first request, whichever is first, and is predicted with one call. Requests whose
trailing shape or dtype differ are predicted in separate calls. A model error is raised
to every caller in that batch. Only :class:`ArrayModel` runtimes are batched: custom
models take whole payloads whose rows the server cannot know.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from serving.protocol.errors import InferenceError

PredictFn = Callable[[np.ndarray], Awaitable[np.ndarray]]


class Batcher:
    """Collects concurrent requests into one predict call (see module docstring)."""

    def __init__(
        self,
        predict: PredictFn,
        *,
        max_batch_size: int = 32,
        max_latency: float = 0.005,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")
        self._predict = predict
        self.max_batch_size = max_batch_size
        self.max_latency = max(0.0, max_latency)
        self._on_batch = on_batch
        self._pending: list[tuple[np.ndarray, asyncio.Future[np.ndarray]]] = []
        self._rows = 0
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, rows: np.ndarray) -> np.ndarray:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[np.ndarray] = loop.create_future()
        if rows.ndim == 0:
            rows = rows.reshape(1)
        self._pending.append((rows, fut))
        self._rows += rows.shape[0]
        if self._rows >= self.max_batch_size:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.max_latency, self._flush)
        return await fut

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending, self._rows = self._pending, [], 0
        if not batch:
            return
        groups: dict[tuple[Any, ...], list[tuple[np.ndarray, asyncio.Future[np.ndarray]]]] = {}
        for item in batch:
            groups.setdefault((item[0].shape[1:], item[0].dtype.str), []).append(item)
        for group in groups.values():
            task = asyncio.get_running_loop().create_task(self._run(group))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, group: list[tuple[np.ndarray, asyncio.Future[np.ndarray]]]) -> None:
        arrays = [a for a, _ in group]
        x = arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=0)
        if self._on_batch is not None:
            self._on_batch(x.shape[0])
        try:
            y = np.asarray(await self._predict(x))
            if y.ndim == 0 or y.shape[0] != x.shape[0]:
                raise InferenceError(
                    f"batched predict returned {y.shape[0] if y.ndim else 0} rows for "
                    f"{x.shape[0]} inputs"
                )
        except BaseException as e:  # every caller must hear about it, even on cancel
            for _, fut in group:
                if not fut.done():
                    fut.set_exception(e)
            if not isinstance(e, Exception):
                raise
            return
        start = 0
        for a, fut in group:
            end = start + a.shape[0]
            if not fut.done():
                fut.set_result(y[start:end])
            start = end
