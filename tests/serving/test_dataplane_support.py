"""Models and helpers shared by the data-plane tests (no tests here).

Real models, built in the test: a small sklearn LogisticRegression behind ArrayModel, and
Model subclasses for the custom-model path.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import numpy as np
from sklearn.linear_model import LogisticRegression

from serving.protocol import InferOutput, InferRequest, InferResponse
from serving.runtimes.base import ArrayModel, Model

T = TypeVar("T")

X_TRAIN = np.array(
    [[5.1, 3.5, 1.4, 0.2], [4.9, 3.0, 1.4, 0.2], [6.2, 3.4, 5.4, 2.3], [5.9, 3.0, 5.1, 1.8],
     [5.5, 2.3, 4.0, 1.3], [6.5, 2.8, 4.6, 1.5]],
)  # fmt: skip
Y_TRAIN = np.array([0, 0, 2, 2, 1, 1])


class SklearnModel(ArrayModel):
    """An ArrayModel around a LogisticRegression fit at load time."""

    def __init__(self, name: str = "iris") -> None:
        super().__init__(name)
        self.estimator: LogisticRegression | None = None

    def load(self) -> bool:
        self.estimator = LogisticRegression(max_iter=500).fit(X_TRAIN, Y_TRAIN)
        self.ready = True
        return True

    def predict_array(self, inputs: np.ndarray) -> np.ndarray:
        assert self.estimator is not None
        return self.estimator.predict(inputs)


class CountingModel(ArrayModel):
    """Row sums; counts predict calls and the rows each call saw (thread-safe)."""

    def __init__(self, name: str = "counter", delay: float = 0.0) -> None:
        super().__init__(name)
        self.calls: list[int] = []
        self.delay = delay
        self._lock = threading.Lock()

    def predict_array(self, inputs: np.ndarray) -> np.ndarray:
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            self.calls.append(int(inputs.shape[0]))
        return inputs.reshape(inputs.shape[0], -1).sum(axis=1)


class SlowModel(ArrayModel):
    """Blocks its thread synchronously until released: must not block the event loop.

    ``started`` is set once a predict is running; the test sets ``release`` to let it
    finish (a predict gives up after ``seconds`` so a failed test cannot hang a thread).
    """

    def __init__(self, name: str = "slow", seconds: float = 60.0) -> None:
        super().__init__(name)
        self.seconds = seconds
        self.started = threading.Event()
        self.release = threading.Event()

    def predict_array(self, inputs: np.ndarray) -> np.ndarray:
        self.started.set()
        if not self.release.wait(self.seconds):
            raise TimeoutError(f"{self.name}: not released within {self.seconds}s")
        return inputs


class EchoModel(Model):
    """Custom model: V2 echoes every input as an output of the same name (and the request
    parameters as response parameters); V1 echoes the instances."""

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        if isinstance(payload, InferRequest):
            outs = [InferOutput.from_numpy(i.name, i.as_numpy()) for i in payload.inputs]
            return InferResponse(outs, self.name, parameters=payload.parameters)
        return {"predictions": payload.get("instances", payload.get("inputs")), "echo": True}


class FailingModel(Model):
    def load(self) -> bool:
        raise RuntimeError("weights file missing: /nowhere/model.joblib")


class BrokenPredictModel(ArrayModel):
    def predict_array(self, inputs: np.ndarray) -> np.ndarray:
        raise RuntimeError("boom")


def loaded(model: Model) -> Model:
    model.load()
    return model


def run(fn: Callable[[httpx.AsyncClient], Awaitable[T]], app: Any) -> T:
    """Run ``fn(client)`` against ``app`` in-process (one event loop per test)."""

    async def main() -> T:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await fn(client)

    return asyncio.run(main())
