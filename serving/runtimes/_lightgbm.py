"""LightGBM: a Booster text file (``model.txt`` or KServe's ``model.bst``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from serving.runtimes._files import find_model_file
from serving.runtimes.base import ArrayModel
from serving.runtimes.errors import ModelLoadError

if TYPE_CHECKING:
    from serving.spec.models import PredictorSpec

EXTENSIONS = (".bst", ".txt")


class LightGBMModel(ArrayModel):
    # Booster.predict holds LightGBM's internal shared lock; concurrent calls are safe.
    thread_safe = True

    def __init__(self, name: str, model_path: Path, num_threads: int | None = None) -> None:
        super().__init__(name)
        self.model_path = model_path
        self.num_threads = num_threads
        self._booster: Any = None

    def load(self) -> bool:
        import lightgbm as lgb  # lazy: only lightgbm replicas import it

        path = find_model_file(self.name, self.model_path, EXTENSIONS)
        try:
            self._booster = lgb.Booster(model_file=str(path))
        except lgb.basic.LightGBMError as exc:
            raise ModelLoadError(self.name, path, str(exc).splitlines()[0]) from exc
        self.ready = True
        return True

    def predict_array(self, inputs: np.ndarray) -> np.ndarray:
        if self.num_threads is not None:
            return np.asarray(self._booster.predict(inputs, num_threads=self.num_threads))
        return np.asarray(self._booster.predict(inputs))

    def input_features(self) -> tuple[int, str] | None:
        n = int(self._booster.num_feature()) if self._booster is not None else 0
        return (n, "FP64") if n > 0 else None


def build(
    name: str, predictor: PredictorSpec, model_path: Path | None, base_dir: Path | None
) -> LightGBMModel:
    assert model_path is not None
    nthread = predictor.env.get("NTHREAD")
    return LightGBMModel(name, model_path, int(nthread) if nthread else None)
