"""The model contract: one base class with kserve.Model's shape.

A runtime loads a model from local files and answers predictions. The data plane calls,
per request, ``preprocess`` -> ``predict`` -> ``postprocess`` (each may be sync or async;
sync ones run in a worker thread so a slow model never blocks the event loop).

Payloads: for the V1 protocol a ``dict`` (``{"instances": [...]}`` or ``{"inputs": ...}``);
for V2 a :class:`serving.protocol.InferRequest`. Built-in array runtimes (sklearn, xgboost,
...) subclass :class:`ArrayModel` and only implement ``predict_array``; the data plane then
takes a fast path that hands them a numpy array without building per-request objects.

Guarantees an implementation must give:
- ``load()`` is called once, before any request, in the replica process; it raises on
  failure (the message is shown as the replica's not-ready reason) and sets ``ready``.
- ``predict`` may be called concurrently from several threads unless the runtime sets
  ``thread_safe = False`` (then the data plane serialises calls).
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Model:
    """kserve.Model-shaped base: ``load`` / ``preprocess`` / ``predict`` / ``postprocess``."""

    thread_safe: bool = True

    def __init__(self, name: str) -> None:
        self.name = name
        self.ready = False

    def load(self) -> bool:
        self.ready = True
        return self.ready

    def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        return payload

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        raise NotImplementedError

    def postprocess(self, response: Any, headers: dict[str, str] | None = None) -> Any:
        return response


class ArrayModel(Model):
    """A model whose prediction is a function of one numeric 2-D array (rows = instances)."""

    def predict_array(self, inputs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def input_features(self) -> tuple[int, str] | None:
        """The loaded model's ``(feature count, V2 datatype)`` of its input rows, when its
        file says (a booster's feature count, an ONNX graph's input shape); None else.
        The model metadata advertises it and a request of another width is a 400."""
        return None

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        return self.predict_array(np.asarray(payload))
