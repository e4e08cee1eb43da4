"""Length-prefixed pickle frames over a pipe, between hyperflow and its own helper processes.

One message is a 4-byte big-endian length followed by a pickled tuple. Used for the
function-trial workers and the MLflow writer process; never for untrusted peers (it is
pickle).
"""

from __future__ import annotations

import pickle
import struct
from typing import IO, Any

_HEADER = struct.Struct("!I")


def encode(message: tuple[Any, ...]) -> bytes:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(payload)) + payload


def send(stream: IO[bytes], message: tuple[Any, ...]) -> None:
    """Write one framed message and flush; callers serialize concurrent writers."""
    stream.write(encode(message))
    stream.flush()


def receive(stream: IO[bytes]) -> tuple[Any, ...] | None:
    """Read one framed message; ``None`` on a clean or torn EOF."""
    header = _read_exact(stream, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    payload = _read_exact(stream, size)
    if payload is None:
        return None
    message: tuple[Any, ...] = pickle.loads(payload)
    return message


def _read_exact(stream: IO[bytes], size: int) -> bytes | None:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
