"""A custom model in kserve.Model's shape: no framework, no files, just Python.

It classifies iris flowers by petal length (the 3rd feature) with two thresholds, the
rule a decision stump learns. Served by ``custom.yaml``; any class with ``__init__(name)``,
``load``, ``predict`` (and optionally ``preprocess``/``postprocess``) works the same way,
including a ``kserve.Model`` subclass.
"""

from __future__ import annotations

from typing import Any


class IrisRules:
    """V1 protocol: ``{"instances": [[5.1, 3.5, 1.4, 0.2], ...]}`` -> ``{"predictions": [0, ...]}``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ready = False
        self.thresholds: tuple[float, float] = (0.0, 0.0)

    def load(self) -> bool:
        self.thresholds = (2.45, 4.75)
        self.ready = True
        return self.ready

    def preprocess(self, payload: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        return payload["instances"]

    def predict(self, instances: list[list[float]], headers: dict[str, str] | None = None) -> Any:
        low, high = self.thresholds
        return [0 if row[2] < low else 1 if row[2] < high else 2 for row in instances]

    def postprocess(self, labels: list[int], headers: dict[str, str] | None = None) -> Any:
        return {"predictions": labels}
