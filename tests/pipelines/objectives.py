"""Objectives the tune component's tests import by reference ("module:function")."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def quadratic(parameters: dict[str, Any], dataset: str, offset: float = 0.0) -> dict[str, float]:
    """Reads the target from the dataset; saves a "model" (its parameters) as a trial would."""
    target = float(Path(dataset).read_text())
    x = parameters["x"]
    folder = Path(os.environ["HYPERFLOW_ARTIFACTS_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.txt").write_text(f"x={x}")
    return {"loss": (x - target) ** 2 + offset}


def saves_nothing(parameters: dict[str, Any]) -> dict[str, float]:
    return {"loss": parameters["x"] ** 2}


def needs_ints(parameters: dict[str, Any], repeat: int) -> dict[str, float]:
    """As ``max_depth`` / ``max_iter`` do: ints only (a 5.0 is refused)."""
    for name in ("depth", "degree"):
        if type(parameters[name]) is not int:
            raise TypeError(f"{name} must be an int, got {parameters[name]!r}")
    if repeat != 2.0:  # fixed keeps KFP's double (max_features=1.0 means all features)
        raise ValueError(f"repeat: {repeat!r}")
    folder = Path(os.environ["HYPERFLOW_ARTIFACTS_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.txt").write_text(repr(parameters))
    return {"loss": float(parameters["depth"] * parameters["degree"] * repeat)}
