"""V2 tensor datatypes <-> numpy, for JSON data and the binary tensor data extension.

Contracts:
- ``tensor_from_json(data, datatype, shape)`` accepts nested or flat row-major data whose
  element count equals ``prod(shape)`` and returns an array of exactly ``shape``. Integer
  and BOOL tensors are strict (no floats in INT32, no out-of-range values); FP tensors
  coerce numbers and booleans as numpy does; in a request, an element that would become
  NaN or infinity (``null``, a finite value too large for FP16/FP32) is refused. BYTES
  tensors are object arrays of the JSON elements (``str``) — or of ``bytes`` when they
  arrived binary.
- Binary data is little-endian, row-major, no padding; BOOL is one byte per element;
  BYTES elements are a 4-byte little-endian unsigned length followed by the bytes.
All failures raise :class:`InvalidInput` (a 400).
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np

from serving.protocol.errors import InvalidInput

# Binary data is little-endian on the wire whatever the host order.
DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(np.object_),
}

_FROM_KIND_SIZE: dict[tuple[str, int], str] = {
    ("b", 1): "BOOL",
    ("u", 1): "UINT8",
    ("u", 2): "UINT16",
    ("u", 4): "UINT32",
    ("u", 8): "UINT64",
    ("i", 1): "INT8",
    ("i", 2): "INT16",
    ("i", 4): "INT32",
    ("i", 8): "INT64",
    ("f", 2): "FP16",
    ("f", 4): "FP32",
    ("f", 8): "FP64",
}

_LEN = struct.Struct("<I")


def datatype_of(dtype: np.dtype[Any]) -> str:
    """The V2 datatype name for a numpy dtype (strings and objects are BYTES)."""
    if dtype.kind in "OSU":
        return "BYTES"
    name = _FROM_KIND_SIZE.get((dtype.kind, dtype.itemsize))
    if name is None:
        raise InvalidInput(f"numpy dtype {dtype} has no V2 datatype")
    return name


def dtype_of(datatype: Any) -> np.dtype[Any]:
    dt = DTYPES.get(datatype) if isinstance(datatype, str) else None
    if dt is None:
        raise InvalidInput(f"unsupported datatype {datatype!r}; expected one of {sorted(DTYPES)}")
    return dt


# numpy's limit on an array's dimensions (NPY_MAXDIMS: 64 since numpy 2, 32 before).
MAX_DIMS = 64 if int(np.__version__.split(".")[0]) >= 2 else 32


def check_shape(shape: Any, name: str | None = None) -> tuple[int, ...]:
    """A validated shape: a list of at most :data:`MAX_DIMS` non-negative integers."""
    where = f"input {name!r}: " if name is not None else ""
    if not isinstance(shape, list) or not all(
        type(d) is int and d >= 0 for d in shape
    ):  # bool is an int subclass: `type(d) is int` keeps true/false out
        raise InvalidInput(f"{where}shape must be a list of non-negative integers, got {shape!r}")
    if len(shape) > MAX_DIMS:
        raise InvalidInput(
            f"{where}shape has {len(shape)} dimensions; at most {MAX_DIMS} are supported"
        )
    return tuple(shape)


def _reshape(arr: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    expected = math.prod(shape)
    if arr.size != expected:
        raise InvalidInput(
            f"input {name!r}: {arr.size} elements given, shape {list(shape)} needs {expected}"
        )
    return arr if arr.shape == shape else arr.reshape(shape)


def _all_ints(data: list[Any]) -> bool:
    flat = np.asarray(data, dtype=object).reshape(-1)
    return all(type(v) is int for v in flat)


def tensor_from_json(
    data: Any, datatype: str, shape: tuple[int, ...], name: str, *, request: bool = False
) -> np.ndarray:
    """Convert the ``data`` list of a V2 tensor into an array of ``shape`` (see module doc).

    ``request``: the data was parsed from a request body, where JSON cannot express NaN or
    infinity: an FP element that becomes one (``null``, ``"nan"``, or a number past
    FP16/FP32's range) is then refused instead of reaching the model as NaN or inf.
    """
    dt = dtype_of(datatype)
    if not isinstance(data, list):
        raise InvalidInput(f"input {name!r}: 'data' must be a JSON array")
    try:
        kind = dt.kind
        if kind == "f":
            # The hot path: one pass from Python floats to the target dtype.
            arr = np.asarray(data, dtype=dt)
            # x . 0 is NaN iff some element is NaN or inf (else 0): the cheapest such test.
            if request and np.vdot(arr, np.zeros(arr.shape, dt)) != 0:
                if np.isinf(arr).any():  # a number past FP16/FP32's range (numpy warns)
                    raise InvalidInput(f"input {name!r}: value out of range for {datatype}")
                raise InvalidInput(f"input {name!r}: {datatype} data must be numbers, not null")
        elif kind == "O":
            arr = np.empty(0, dtype=object) if not data else np.asarray(data, dtype=object)
            if arr.size and not all(isinstance(v, (str, bytes)) for v in arr.flat):
                raise InvalidInput(f"input {name!r}: BYTES elements must be strings")
        else:
            arr = np.asarray(data)
            if arr.size == 0:
                arr = arr.astype(dt)
            elif kind == "b":
                if arr.dtype.kind != "b":
                    raise InvalidInput(f"input {name!r}: BOOL data must be true/false")
            else:
                if arr.dtype.kind in "fO" and _all_ints(data):
                    # Python ints beyond int64 (UINT64 upper half) infer as float/object.
                    arr = np.asarray(data, dtype=dt)
                elif arr.dtype.kind not in "iub":
                    raise InvalidInput(
                        f"input {name!r}: {datatype} data must be integers, got {arr.dtype.kind!r}"
                        " values"
                    )
                info = np.iinfo(dt)
                if arr.dtype.kind != "b" and (arr.min() < info.min or arr.max() > info.max):
                    raise InvalidInput(f"input {name!r}: value out of range for {datatype}")
                arr = arr.astype(dt, copy=False)
    except InvalidInput:
        raise
    except (ValueError, TypeError, OverflowError) as e:
        raise InvalidInput(f"input {name!r}: data does not fit datatype {datatype}: {e}") from e
    if arr.dtype.kind == "O" and dt.kind != "O":
        raise InvalidInput(f"input {name!r}: ragged or mixed data")
    return _reshape(arr, shape, name)


def tensor_from_binary(
    buf: bytes | memoryview, datatype: str, shape: tuple[int, ...], name: str
) -> np.ndarray:
    """Decode one binary-extension tensor (little-endian; BYTES length-prefixed)."""
    dt = dtype_of(datatype)
    count = math.prod(shape)
    if dt.kind == "O":
        items = decode_bytes_elements(buf, name)
        arr = np.empty(len(items), dtype=object)
        arr[:] = items
        return _reshape(arr, shape, name)
    if len(buf) != count * dt.itemsize:
        raise InvalidInput(
            f"input {name!r}: {len(buf)} bytes given, shape {list(shape)} of {datatype} "
            f"needs {count * dt.itemsize}"
        )
    arr = np.frombuffer(buf, dtype=dt)
    if dt.kind == "b" and arr.size and np.max(np.frombuffer(buf, dtype=np.uint8)) > 1:
        raise InvalidInput(f"input {name!r}: BOOL bytes must be 0 or 1")
    return arr.reshape(shape)


def decode_bytes_elements(buf: bytes | memoryview, name: str) -> list[bytes]:
    out: list[bytes] = []
    view = memoryview(buf)
    pos, end = 0, len(view)
    while pos < end:
        if pos + 4 > end:
            raise InvalidInput(f"input {name!r}: truncated BYTES length prefix")
        (n,) = _LEN.unpack_from(view, pos)
        pos += 4
        if pos + n > end:
            raise InvalidInput(f"input {name!r}: BYTES element overruns the tensor data")
        out.append(bytes(view[pos : pos + n]))
        pos += n
    return out


def _as_bytes(v: Any) -> bytes:
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode()
    return str(v).encode()


def tensor_to_binary(arr: np.ndarray, datatype: str) -> bytes:
    """Serialise an array for the binary extension (the inverse of tensor_from_binary)."""
    if datatype == "BYTES":
        parts: list[bytes] = []
        for v in arr.flat:
            b = _as_bytes(v)
            parts.append(_LEN.pack(len(b)))
            parts.append(b)
        return b"".join(parts)
    return np.ascontiguousarray(arr, dtype=DTYPES[datatype]).tobytes()


def json_data(arr: np.ndarray, datatype: str) -> Any:
    """The flat row-major ``data`` of a JSON output: an array orjson serialises natively,
    or, for BYTES, a list of strings (bytes must be UTF-8 here; else ask for binary)."""
    if datatype == "BYTES":
        out: list[Any] = []
        for v in arr.flat:
            if isinstance(v, bytes):
                try:
                    v = v.decode()
                except UnicodeDecodeError as e:
                    raise InvalidInput(
                        "a BYTES output is not UTF-8; request it with binary_data=true"
                    ) from e
            out.append(v if isinstance(v, (str, int, float, bool)) else str(v))
        return out
    # orjson needs C-contiguous, native-order arrays.
    flat = arr.reshape(-1)
    if not flat.flags.c_contiguous or not flat.dtype.isnative:
        flat = np.ascontiguousarray(flat, dtype=flat.dtype.newbyteorder("="))
    return flat
