"""V1 (TensorFlow-Serving-style, as KServe) codec: ``{"instances"|"inputs": [...]}`` ->
``{"predictions": [...]}``.

Array models get ``np.asarray(instances)``; a ragged, non-numeric or empty list is a 400.
Custom models get the parsed dict; what they return is sent as-is when it is a dict,
else wrapped as ``{"predictions": ...}`` (KServe's get_predict_response).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from serving.protocol.errors import InferenceError, InvalidInput
from serving.protocol.v2 import loads_json_object

_DUMPS_OPTS = orjson.OPT_SERIALIZE_NUMPY


def decode_predict_request(body: bytes) -> dict[str, Any]:
    obj = loads_json_object(body)
    key = "instances" if "instances" in obj else "inputs" if "inputs" in obj else None
    if key is None:
        raise InvalidInput('expected "instances" or "inputs" in the request')
    if not isinstance(obj[key], list):
        raise InvalidInput(f'"{key}" must be a list')
    return obj


def instances_array(payload: dict[str, Any]) -> np.ndarray:
    """The request's rows as a numeric array (one row per instance)."""
    rows = payload["instances"] if "instances" in payload else payload["inputs"]
    try:
        arr = np.asarray(rows)
    except (ValueError, TypeError) as e:
        raise InvalidInput(f"instances must be a rectangular numeric array: {e}") from e
    if arr.dtype.kind not in "biuf":
        raise InvalidInput("instances must be a rectangular numeric array")
    if arr.shape[0] == 0:  # as V2's "no rows": estimators fail on an empty batch
        raise InvalidInput("the request has no instances to predict")
    return arr


def encode_predict_response(result: Any) -> bytes:
    doc = result if isinstance(result, dict) else {"predictions": result}
    try:
        return orjson.dumps(doc, option=_DUMPS_OPTS)
    except TypeError:
        pass
    # Non-contiguous arrays or numpy scalars nested in lists: fall back to tolist().
    try:
        return orjson.dumps(doc, option=_DUMPS_OPTS, default=_to_builtin)
    except TypeError as e:
        raise InferenceError(f"the model returned a value that is not JSON: {e}") from e


def _to_builtin(v: Any) -> Any:
    if isinstance(v, (np.ndarray, np.generic)):
        return v.tolist()
    raise TypeError(f"{type(v).__name__} is not JSON serialisable")
