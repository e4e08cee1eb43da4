"""V2 (Open Inference Protocol) codec: request bytes -> InferRequest, InferResponse -> bytes.

Request body: a JSON object, optionally followed by binary tensor data when the
``Inference-Header-Content-Length`` header gives the JSON part's length; inputs with a
``binary_data_size`` parameter take their bytes from that tail, in input order.
Response body: JSON, or JSON + binary tail when any output is binary (``binary_data``
on the requested output, else the request's ``binary_data_output`` parameter); then the
returned header length must be sent as ``Inference-Header-Content-Length``.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

import numpy as np
import orjson

from serving.protocol.datatypes import (
    check_shape,
    json_data,
    tensor_from_binary,
    tensor_from_json,
    tensor_to_binary,
)
from serving.protocol.errors import InferenceError, InvalidInput
from serving.protocol.infer_type import (
    InferInput,
    InferOutput,
    InferRequest,
    InferResponse,
    RequestedOutput,
)

# What ``GET /v2`` advertises: the replica implements it here, the router passes it through.
EXTENSIONS: tuple[str, ...] = ("binary_tensor_data",)

_DUMPS_OPTS = orjson.OPT_SERIALIZE_NUMPY


def loads_json_object(raw: bytes | memoryview, what: str = "request") -> dict[str, Any]:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise InvalidInput(f"malformed JSON {what}: {e}") from e
    if not isinstance(obj, dict):
        raise InvalidInput(f"the {what} body must be a JSON object")
    return obj


def _parameters(obj: Any, where: str, flag: str | None = None) -> dict[str, Any] | None:
    """A ``parameters`` object; ``flag``, a boolean of the binary data extension that it
    may hold (``binary_data_output``, ``binary_data``): true or false, nothing else (the
    string "false" would otherwise turn binary output on)."""
    if obj is None:
        return None
    if not isinstance(obj, dict):
        raise InvalidInput(f"{where} 'parameters' must be a JSON object")
    if flag is not None and flag in obj and not isinstance(obj[flag], bool):
        raise InvalidInput(f"{where} parameter {flag!r} must be true or false, not {obj[flag]!r}")
    return obj


def decode_infer_request(
    body: bytes, header_length: int | None, model_name: str, model_version: str | None = None
) -> InferRequest:
    """Parse and validate a V2 request; every input's array is decoded eagerly."""
    head: bytes | memoryview
    tail: memoryview | None
    if header_length is None:
        head, tail = body, None
    else:
        if header_length < 0 or header_length > len(body):
            raise InvalidInput(
                f"Inference-Header-Content-Length {header_length} exceeds the body ({len(body)})"
            )
        view = memoryview(body)
        head, tail = view[:header_length], view[header_length:]
    obj = loads_json_object(head)
    raw_inputs = obj.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise InvalidInput("'inputs' must be a non-empty list of tensors")
    offset = 0
    inputs: list[InferInput] = []
    for i, raw in enumerate(raw_inputs):
        if not isinstance(raw, dict):
            raise InvalidInput(f"inputs[{i}] must be a JSON object")
        name = raw.get("name")
        if not isinstance(name, str):
            raise InvalidInput(f"inputs[{i}] needs a string 'name'")
        if any(earlier.name == name for earlier in inputs):
            raise InvalidInput(f"inputs[{i}]: input name {name!r} is given twice")
        # Any value: tensor_from_binary/tensor_from_json reject what is not a V2 datatype.
        datatype = cast(str, raw.get("datatype"))
        shape = check_shape(raw.get("shape"), name)
        params = _parameters(raw.get("parameters"), f"input {name!r}")
        size = params.get("binary_data_size") if params else None
        if size is not None:
            if tail is None:
                raise InvalidInput(
                    f"input {name!r} has binary_data_size but the request has no "
                    "Inference-Header-Content-Length header"
                )
            if type(size) is not int or size < 0 or offset + size > len(tail):
                raise InvalidInput(f"input {name!r}: binary_data_size {size!r} overruns the body")
            arr = tensor_from_binary(tail[offset : offset + size], datatype, shape, name)
            offset += size
        else:
            if "data" not in raw:
                raise InvalidInput(f"input {name!r} has neither 'data' nor binary_data_size")
            arr = tensor_from_json(raw["data"], datatype, shape, name, request=True)
        inp = InferInput(name, list(shape), datatype, None, params)
        inp._array = arr
        inputs.append(inp)
    if tail is not None and offset != len(tail):
        raise InvalidInput(
            f"{len(tail) - offset} bytes of binary data not claimed by any input's binary_data_size"
        )
    req_id = obj.get("id")
    if req_id is not None and not isinstance(req_id, str):
        raise InvalidInput("'id' must be a string")
    outputs: list[RequestedOutput] | None = None
    raw_outputs = obj.get("outputs")
    if raw_outputs is not None:
        if not isinstance(raw_outputs, list):
            raise InvalidInput("'outputs' must be a list")
        outputs = []
        for j, ro in enumerate(raw_outputs):
            if not isinstance(ro, dict) or not isinstance(ro.get("name"), str):
                raise InvalidInput(f"outputs[{j}] must be an object with a string 'name'")
            where = f"output {ro['name']!r}"
            params = _parameters(ro.get("parameters"), where, "binary_data")
            outputs.append(RequestedOutput(ro["name"], params))
    return InferRequest(
        model_name=model_name,
        inputs=inputs,
        id=req_id,
        parameters=_parameters(obj.get("parameters"), "request", "binary_data_output"),
        request_outputs=outputs,
        model_version=model_version,
    )


def to_infer_response(result: Any, model_name: str) -> InferResponse:
    """What a model returned -> InferResponse (arrays/lists become ``output-0``; a V1-style
    ``{"predictions": ...}`` answers with its predictions)."""
    if isinstance(result, InferResponse):
        return result
    if isinstance(result, dict) and "predictions" in result and "outputs" not in result:
        result = result["predictions"]
    if isinstance(result, dict) and isinstance(result.get("outputs"), list):
        outs = []
        for o in result["outputs"]:
            if isinstance(o, InferOutput):
                outs.append(o)
                continue
            out = InferOutput(o["name"], o["shape"], o["datatype"], o.get("data"))
            out.parameters = o.get("parameters")
            outs.append(out)
        return InferResponse(outs, model_name, result.get("id"), result.get("parameters"))
    if isinstance(result, list) and result and all(isinstance(v, str) for v in result):
        arr = np.empty(len(result), dtype=object)
        arr[:] = result
        return InferResponse([InferOutput.from_numpy("output-0", arr)], model_name)
    # What the model returned is the model's doing: a 500, never the client's 400.
    try:
        arr = np.asarray(result)
        output = InferOutput.from_numpy("output-0", arr)
    except (ValueError, TypeError, InvalidInput) as e:
        raise InferenceError(f"model returned a value that is not a tensor: {e}") from e
    return InferResponse([output], model_name)


def _response_id(response: InferResponse, request: InferRequest) -> str:
    """The model's id, else the request's: "if specified, this identifier must be returned
    in the response" (an empty string too); a new one only when neither has one."""
    for given in (response.id, request.id):
        if given is not None:
            return str(given)
    return str(uuid.uuid4())


def encode_infer_response(
    response: InferResponse, request: InferRequest
) -> tuple[bytes, int | None]:
    """Serialise ``response`` honouring the request's outputs and binary parameters.

    Returns the body and, when a binary tail follows the JSON, the JSON length.
    """
    outputs = response.outputs
    binary_default = request.use_binary_outputs
    selected: list[tuple[InferOutput, bool]]
    if request.request_outputs:
        by_name = {o.name: o for o in outputs}
        selected = []
        for ro in request.request_outputs:
            out = by_name.get(ro.name)
            if out is None:
                raise InvalidInput(
                    f"unknown output {ro.name!r}; the model produces {sorted(by_name)}"
                )
            b = ro.binary_data
            selected.append((out, binary_default if b is None else b))
    else:
        selected = [(o, binary_default) for o in outputs]
    json_outputs: list[dict[str, Any]] = []
    tail: list[bytes] = []
    for out, binary in selected:
        arr = out.as_numpy()
        entry: dict[str, Any] = {
            "name": out.name,
            "shape": list(arr.shape),
            "datatype": out.datatype,
        }
        params = dict(out.parameters) if out.parameters else None
        if binary:
            raw = tensor_to_binary(arr, out.datatype)
            params = params or {}
            params["binary_data_size"] = len(raw)
            tail.append(raw)
        else:
            entry["data"] = json_data(arr, out.datatype)
        if params:
            entry["parameters"] = params
        json_outputs.append(entry)
    doc: dict[str, Any] = {
        "model_name": response.model_name or request.model_name,
        "id": _response_id(response, request),
        "outputs": json_outputs,
    }
    version = response.model_version or request.model_version
    if version:
        doc["model_version"] = version
    if response.parameters:
        doc["parameters"] = response.parameters
    try:
        head = orjson.dumps(doc, option=_DUMPS_OPTS)
    except TypeError as e:
        raise InferenceError(f"cannot serialise the model's response: {e}") from e
    if not tail:
        return head, None
    return head + b"".join(tail), len(head)
