"""scikit-learn: a joblib/pickle file (``model.joblib``, ``.pkl``, ``.pickle``), as KServe.

``PREDICT_PROBA=true`` (in the model container's ``env`` or the replica's environment)
answers ``predict_proba`` instead of ``predict`` when the estimator has it, as KServe's
sklearnserver does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from serving.protocol.errors import InvalidInput
from serving.runtimes._files import find_model_file
from serving.runtimes.base import ArrayModel
from serving.runtimes.errors import ModelLoadError

if TYPE_CHECKING:
    from serving.spec.models import PredictorSpec

EXTENSIONS = (".joblib", ".pkl", ".pickle")


class SKLearnModel(ArrayModel):
    # Fitted scikit-learn estimators are read-only in predict.
    thread_safe = True

    def __init__(self, name: str, model_path: Path, predict_proba: bool = False) -> None:
        super().__init__(name)
        self.model_path = model_path
        self.predict_proba = predict_proba
        self._estimator: Any = None

    @classmethod
    def from_env(cls, name: str, model_path: Path, env: dict[str, str]) -> SKLearnModel:
        flag = env.get("PREDICT_PROBA", os.environ.get("PREDICT_PROBA", "false"))
        return cls(name, model_path, predict_proba=flag.strip().lower() == "true")

    def load(self) -> bool:
        import joblib  # type: ignore[import-untyped]  # lazy: only sklearn replicas

        path = find_model_file(self.name, self.model_path, EXTENSIONS)
        try:
            estimator = joblib.load(path)
        except Exception as exc:  # any unpickling failure is a load failure
            raise ModelLoadError(self.name, path, f"{type(exc).__name__}: {exc}") from exc
        if not hasattr(estimator, "predict"):
            raise ModelLoadError(
                self.name, path, f"{type(estimator).__name__} object has no predict()"
            )
        self._estimator = estimator
        self._method = (
            estimator.predict_proba
            if self.predict_proba and hasattr(estimator, "predict_proba")
            else estimator.predict
        )
        self.ready = True
        return True

    def predict_array(self, inputs: np.ndarray) -> np.ndarray:
        try:
            return np.asarray(self._method(inputs))
        except ValueError as exc:
            # JSON cannot carry NaN or infinity, binary tensors can: an estimator that
            # refuses them (scikit-learn's ValueError, a 500) was given bad input, a 400.
            # Pipelines that impute them, and estimators that take them, never get here.
            if inputs.dtype.kind == "f" and not np.isfinite(inputs).all():
                raise InvalidInput(
                    f"model {self.name!r}: the input holds NaN or infinity, which "
                    f"{type(self._estimator).__name__} does not accept ({exc})"
                ) from None
            raise


def build(
    name: str, predictor: PredictorSpec, model_path: Path | None, base_dir: Path | None
) -> SKLearnModel:
    assert model_path is not None
    return SKLearnModel.from_env(name, model_path, predictor.env)
