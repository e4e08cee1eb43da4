"""MLflow: a pyfunc model folder (the one holding ``MLmodel``), local or fetched from
``runs:/`` / ``models:/`` by :mod:`serving.storage`.

Inputs go to ``pyfunc.predict`` as a numpy array, or as a DataFrame with the signature's
column names when the model was logged with a column-based signature.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from serving.protocol.datatypes import datatype_of
from serving.protocol.errors import InvalidInput
from serving.runtimes.base import ArrayModel
from serving.runtimes.errors import ModelLoadError

if TYPE_CHECKING:
    from serving.spec.models import PredictorSpec

# Flavors whose predict is a read-only call on a fitted model: safe to call concurrently.
_THREAD_SAFE_FLAVORS = frozenset({"sklearn", "xgboost", "lightgbm", "onnx"})


class MLflowModel(ArrayModel):
    # Arbitrary pyfunc code may keep state: serialised unless the flavor is known safe.
    thread_safe = False

    def __init__(self, name: str, model_path: Path) -> None:
        super().__init__(name)
        self.model_path = model_path
        self._model: Any = None
        self._columns: list[str] | None = None
        self._tensor: tuple[int, str] | None = None  # its signature's (features, datatype)
        # The data plane reads thread_safe before load(): decide from the MLmodel file.
        self.thread_safe = _safe_flavors(_flavors(model_path / "MLmodel"))

    def load(self) -> bool:
        path = self.model_path
        if not (path / "MLmodel").is_file():
            raise ModelLoadError(self.name, path, "not an MLflow model folder (no MLmodel file)")
        import mlflow.pyfunc  # lazy: only mlflow replicas import it

        try:
            model = mlflow.pyfunc.load_model(str(path))
        except Exception as exc:  # flavors raise anything from ImportError to pickle errors
            raise ModelLoadError(self.name, path, f"{type(exc).__name__}: {exc}") from exc
        schema = model.metadata.get_input_schema()
        if schema is not None and not schema.is_tensor_spec() and schema.has_input_names():
            self._columns = list(schema.input_names())
        elif schema is not None and schema.is_tensor_spec() and len(schema.inputs) == 1:
            # A signature of one [-1, n] tensor (what infer_signature makes of an array).
            spec = schema.inputs[0]
            shape = tuple(spec.shape)
            if len(shape) == 2 and shape[1] > 0:
                with contextlib.suppress(InvalidInput, TypeError):
                    self._tensor = (int(shape[1]), datatype_of(np.dtype(spec.type)))
        self.thread_safe = _safe_flavors(set(model.metadata.flavors))
        self._model = model
        self.ready = True
        return True

    def input_features(self) -> tuple[int, str] | None:
        if self._columns is not None:
            return len(self._columns), "FP64"
        return self._tensor

    def predict_array(self, inputs: np.ndarray) -> np.ndarray:
        data: Any = inputs
        if self._columns is not None and inputs.ndim == 2:
            import pandas as pd  # type: ignore[import-untyped]

            data = pd.DataFrame(inputs, columns=self._columns)
        return np.asarray(self._model.predict(data))


def _flavors(mlmodel: Path) -> set[str]:
    try:
        data = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return set()  # load() reports the problem with the path
    flavors = data.get("flavors") if isinstance(data, dict) else None
    return set(flavors) if isinstance(flavors, dict) else set()


def _safe_flavors(flavors: set[str]) -> bool:
    framework = flavors - {"python_function"}
    return bool(framework) and framework <= _THREAD_SAFE_FLAVORS


def build(
    name: str, predictor: PredictorSpec, model_path: Path | None, base_dir: Path | None
) -> MLflowModel:
    assert model_path is not None
    return MLflowModel(name, model_path)
