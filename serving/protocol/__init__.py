"""V1 and V2 inference protocol logic, free of any web framework.

Custom model authors use :class:`InferRequest` / :class:`InferInput` (``.as_numpy()``)
and may return :class:`InferResponse` / :class:`InferOutput` (``InferOutput.from_numpy``);
``get_predict_input`` / ``get_predict_response`` (KServe's names) serve both protocols.
"""

from __future__ import annotations

from serving.protocol.datatypes import DTYPES, datatype_of
from serving.protocol.errors import (
    InferenceError,
    InvalidInput,
    MethodNotAllowed,
    ModelNotFound,
    ModelNotReady,
    NotFound,
    PayloadTooLarge,
    ServerNotReady,
    ServingError,
    UnsupportedMediaType,
)
from serving.protocol.infer_type import (
    InferInput,
    InferOutput,
    InferRequest,
    InferResponse,
    RequestedOutput,
)
from serving.protocol.predict_io import get_predict_input, get_predict_response

__all__ = [
    "DTYPES",
    "InferInput",
    "InferOutput",
    "InferRequest",
    "InferResponse",
    "InferenceError",
    "InvalidInput",
    "MethodNotAllowed",
    "ModelNotFound",
    "ModelNotReady",
    "NotFound",
    "PayloadTooLarge",
    "RequestedOutput",
    "ServerNotReady",
    "ServingError",
    "UnsupportedMediaType",
    "datatype_of",
    "get_predict_input",
    "get_predict_response",
]
