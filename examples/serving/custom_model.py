"""A custom model in kserve.Model's shape: no framework, no files, just Python.

It classifies iris flowers by petal length (the 3rd feature) with two thresholds, the
rule a decision stump learns. Served by ``custom.yaml``; any class with ``__init__(name)``,
``load``, ``predict`` (and optionally ``preprocess``/``postprocess``) works the same way,
including a ``kserve.Model`` subclass.

As with kserve.Model, ``predict`` gets the V1 request as a dict (``{"instances": ...}`` or
``{"inputs": ...}``) and a V2 request as an ``InferRequest``; KServe's helpers
``get_predict_input`` / ``get_predict_response`` make one ``predict`` serve both.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from serving.protocol import InvalidInput, get_predict_input, get_predict_response


class IrisRules:
    """V1: ``{"instances": [[5.1, 3.5, 1.4, 0.2], ...]}`` -> ``{"predictions": [0, ...]}``;
    V2: one ``[n, 4]`` tensor -> ``output-0`` with the n labels."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ready = False
        self.thresholds: tuple[float, float] = (0.0, 0.0)

    def load(self) -> bool:
        self.thresholds = (2.45, 4.75)
        self.ready = True
        return self.ready

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        rows = get_predict_input(payload)
        # A request this model cannot read is the client's error: InvalidInput is a 400
        # (as kserve.errors.InvalidInput); anything else raised here would be a 500.
        try:
            features = np.asarray(rows, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInput("expected rows of 4 numbers (the iris features)") from None
        if features.ndim != 2 or features.shape[1] != 4:
            raise InvalidInput(
                "expected rows of 4 numbers (the iris features); "
                f"got an array of shape {list(features.shape)}"
            )
        low, high = self.thresholds
        petal_length = features[:, 2]
        labels = np.where(petal_length < low, 0, np.where(petal_length < high, 1, 2))
        return get_predict_response(payload, labels.tolist(), self.name)
