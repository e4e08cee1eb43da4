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

from serving.protocol import get_predict_input, get_predict_response


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
        low, high = self.thresholds
        labels = [0 if row[2] < low else 1 if row[2] < high else 2 for row in rows]
        return get_predict_response(payload, labels, self.name)
