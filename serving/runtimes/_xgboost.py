"""XGBoost: a Booster file (``.bst``, ``.json``, ``.ubj``), as KServe's xgbserver.

Predictions use ``inplace_predict`` (no DMatrix per request), which XGBoost documents as
thread safe, so concurrent requests share one Booster.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from serving.runtimes._files import find_model_file
from serving.runtimes.base import ArrayModel
from serving.runtimes.errors import ModelLoadError

if TYPE_CHECKING:
    from serving.spec.models import PredictorSpec

EXTENSIONS = (".bst", ".json", ".ubj")


class XGBoostModel(ArrayModel):
    thread_safe = True

    def __init__(self, name: str, model_path: Path, nthread: int | None = None) -> None:
        super().__init__(name)
        self.model_path = model_path
        self.nthread = nthread
        self._booster: Any = None

    def load(self) -> bool:
        import xgboost as xgb  # lazy: only xgboost replicas import it

        path = find_model_file(self.name, self.model_path, EXTENSIONS)
        try:
            booster = xgb.Booster(model_file=str(path))
        except xgb.core.XGBoostError as exc:
            raise ModelLoadError(self.name, path, str(exc).splitlines()[0]) from exc
        if self.nthread is not None:
            booster.set_param({"nthread": self.nthread})
        self._booster = booster
        self.ready = True
        return True

    def predict_array(self, inputs: np.ndarray) -> np.ndarray:
        return np.asarray(self._booster.inplace_predict(inputs))

    def input_features(self) -> tuple[int, str] | None:
        n = int(self._booster.num_features()) if self._booster is not None else 0
        return (n, "FP32") if n > 0 else None


def build(
    name: str, predictor: PredictorSpec, model_path: Path | None, base_dir: Path | None
) -> XGBoostModel:
    assert model_path is not None
    # KServe's xgbserver takes --nthread; here the model container's NTHREAD env.
    nthread = predictor.env.get("NTHREAD")
    return XGBoostModel(name, model_path, int(nthread) if nthread else None)
