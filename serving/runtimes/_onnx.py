"""ONNX: an ``.onnx`` file run by onnxruntime on CPU.

The input name and element type come from the model's first input; the answer is the
model's first output (for skl2onnx classifiers: the labels).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from serving.protocol.datatypes import datatype_of
from serving.runtimes._files import find_model_file
from serving.runtimes.base import ArrayModel
from serving.runtimes.errors import ModelLoadError

if TYPE_CHECKING:
    from serving.spec.models import PredictorSpec

EXTENSIONS = (".onnx",)

_ONNX_TYPES: dict[str, type[np.generic]] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int16)": np.int16,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


class ONNXModel(ArrayModel):
    # InferenceSession.run is documented as thread safe.
    thread_safe = True

    def __init__(self, name: str, model_path: Path) -> None:
        super().__init__(name)
        self.model_path = model_path
        self._session: Any = None
        self._input_name = ""
        self._input_dtype: type[np.generic] | None = None
        self._output_name = ""
        self._features: int | None = None

    def load(self) -> bool:
        import onnxruntime as ort  # type: ignore[import-untyped]  # lazy: onnx replicas only

        path = find_model_file(self.name, self.model_path, EXTENSIONS)
        try:
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own pybind exception types
            raise ModelLoadError(self.name, path, str(exc).splitlines()[0]) from exc
        first_input = session.get_inputs()[0]
        self._input_name = first_input.name
        self._input_dtype = _ONNX_TYPES.get(first_input.type)
        self._output_name = session.get_outputs()[0].name
        shape = first_input.shape
        # [batch, features] with a fixed feature count ("N" or None for the batch).
        self._features = (
            shape[1] if len(shape) == 2 and isinstance(shape[1], int) and shape[1] > 0 else None
        )
        self._session = session
        self.ready = True
        return True

    def predict_array(self, inputs: np.ndarray) -> np.ndarray:
        if self._input_dtype is not None and inputs.dtype != self._input_dtype:
            inputs = inputs.astype(self._input_dtype)
        (output,) = self._session.run([self._output_name], {self._input_name: inputs})
        return np.asarray(output)

    def input_features(self) -> tuple[int, str] | None:
        if self._features is None:
            return None
        dtype = np.dtype(self._input_dtype or np.float32)
        return self._features, datatype_of(dtype)


def build(
    name: str, predictor: PredictorSpec, model_path: Path | None, base_dir: Path | None
) -> ONNXModel:
    assert model_path is not None
    return ONNXModel(name, model_path)
