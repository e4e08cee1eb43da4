"""KServe's helpers for custom models that serve both protocols: ``get_predict_input`` and
``get_predict_response`` (``kserve.utils.utils``), with the same contract.

A custom model's ``predict`` receives a ``dict`` for V1 (``{"instances": ...}`` or
``{"inputs": ...}``) and an :class:`InferRequest` for V2. ``get_predict_input`` turns
either into the rows to predict on (a numpy array, or a list of strings); the model's
result goes back through ``get_predict_response`` as the protocol's answer
(``{"predictions": [...]}`` or an :class:`InferResponse` with ``output-0``). What the
request got wrong here (ragged rows, no inputs) is an :class:`InvalidInput` (400).
Pandas DataFrame payloads (KServe's ``content_type: pd``) are not supported.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from serving.protocol.errors import InvalidInput
from serving.protocol.infer_type import InferOutput, InferRequest, InferResponse


def get_predict_input(payload: dict[str, Any] | InferRequest) -> np.ndarray | list[str]:
    """The rows of a V1 payload or the first input of a V2 request."""
    if isinstance(payload, InferRequest):
        if not payload.inputs:
            raise InvalidInput("the request has no inputs")
        first = payload.inputs[0]
        array = first.as_numpy()
        if first.datatype == "BYTES" and array.size and isinstance(array.flat[0], str):
            return [str(v) for v in array.flat]
        return array
    if isinstance(payload, dict):
        key = "inputs" if "inputs" in payload else "instances"
        if key not in payload:
            raise InvalidInput('expected "instances" or "inputs" in the request')
        rows = payload[key]
        if isinstance(rows, list) and rows and all(isinstance(r, str) for r in rows):
            return list(rows)
        try:
            return np.array(rows)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f'"{key}" must be a rectangular array: {exc}') from exc
    raise TypeError(f"expected a V1 dict or an InferRequest, got {type(payload).__name__}")


def get_predict_response(
    payload: dict[str, Any] | InferRequest, result: Any, model_name: str
) -> dict[str, Any] | InferResponse:
    """``result`` as the answer of ``payload``'s protocol."""
    if isinstance(payload, InferRequest):
        if isinstance(result, list) and result and all(isinstance(v, str) for v in result):
            array = np.empty(len(result), dtype=object)
            array[:] = result
        else:
            array = np.asarray(result)
        return InferResponse([InferOutput.from_numpy("output-0", array)], model_name, id=payload.id)
    if isinstance(result, np.ndarray):
        result = result.tolist()
    return {"predictions": result}
