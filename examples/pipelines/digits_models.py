"""Models and the tuning objective of the digits pipeline (``digits.py``).

A plain module (no kfp): the ``tune`` step imports ``digits_models:objective`` by name
in its task process, and its trials import it again in theirs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

FAMILIES = {
    "svc": {
        "C": {"type": "double", "min": 0.1, "max": 100.0, "distribution": "logUniform"},
        "gamma": {"type": "double", "min": 0.0001, "max": 0.01, "distribution": "logUniform"},
    },
    "random-forest": {
        "n_estimators": {"type": "int", "min": 10, "max": 60},
        "max_depth": {"type": "int", "min": 4, "max": 16},
    },
}


def make_model(family: str, parameters: dict[str, Any]) -> Any:
    if family == "svc":
        from sklearn.svm import SVC

        return SVC(C=float(parameters["C"]), gamma=float(parameters["gamma"]))
    if family == "random-forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(
            n_estimators=int(parameters["n_estimators"]),
            max_depth=int(parameters["max_depth"]),
            random_state=0,
        )
    raise ValueError(f"unknown model family {family!r}")


def load(path: str) -> tuple[Any, Any]:
    import numpy as np

    with open(path, "rb") as f:
        data = np.load(f)
        return data["X"], data["y"]


def objective(parameters: dict[str, Any], dataset: str, family: str) -> dict[str, float]:
    """One trial: 3-fold cross-validated accuracy on the training set; saves the model."""
    import joblib
    from sklearn.model_selection import cross_val_score

    X, y = load(dataset)
    model = make_model(family, parameters)
    accuracy = float(cross_val_score(model, X, y, cv=3).mean())
    folder = Path(os.environ["HYPERFLOW_ARTIFACTS_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(model.fit(X, y), folder / "model.joblib")
    return {"accuracy": accuracy}
