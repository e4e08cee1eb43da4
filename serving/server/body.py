"""Request bodies: size limit, content-type and content-encoding rules, as plain functions.

- A body larger than ``limit`` bytes is a 413, decided from Content-Length before reading
  when the client sends one, and by counting while streaming otherwise (and again after
  decompressing a gzip/deflate body, so a small bomb cannot inflate past the limit).
- JSON endpoints accept ``application/json`` (any parameters), ``*/*+json`` or no
  Content-Type at all (stock clients such as tritonclient send none); anything else is a
  415 unless the binary-extension header ``Inference-Header-Content-Length`` is present.
"""

from __future__ import annotations

import zlib
from typing import Any

from serving.protocol.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024


class ClientDisconnected(Exception):
    """The client went away before the body was complete; nothing to answer."""


def incomplete_body(received: int, declared: int | None) -> str:
    """The 400 message for a request whose client ended its side before the body was
    complete (the router and the replicas answer it alike)."""
    if declared is None:
        return (
            "incomplete request: the client closed its side of the connection before the "
            "end of the chunked body"
        )
    return (
        f"incomplete request: the client closed its side of the connection after {received} "
        f"of the {declared} body bytes its Content-Length announced"
    )


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body exceeds the {limit}-byte limit")


async def read_body(receive: Any, limit: int, content_length: int | None) -> bytes:
    if content_length is not None and content_length > limit:
        raise too_large(limit)
    msg = await receive()
    if msg["type"] == "http.disconnect":
        raise ClientDisconnected
    body: bytes = msg.get("body", b"")
    if not msg.get("more_body", False):
        if len(body) > limit:
            raise too_large(limit)
        return body
    chunks = [body]
    size = len(body)
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = msg.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
        if not msg.get("more_body", False):
            return b"".join(chunks)


def decode_content(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo a gzip/deflate Content-Encoding, never producing more than ``limit`` bytes."""
    if not encoding or encoding == "identity":
        return body
    if encoding == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        wbits = zlib.MAX_WBITS
    else:
        raise UnsupportedMediaType(f"unsupported Content-Encoding {encoding!r}")
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as e:
        raise InvalidInput(f"corrupt {encoding} body: {e}") from e
    if len(out) > limit or d.unconsumed_tail:
        raise too_large(limit)
    return out


def check_json_content_type(content_type: str | None, binary: bool, *, v1: bool = False) -> None:
    """415 for a body that is not JSON (nor, in V2, binary tensor data); ``v1``: a V1
    request, which has no binary extension to suggest."""
    if binary or not content_type:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return
    if v1:
        raise UnsupportedMediaType(
            f"unsupported Content-Type {content_type!r}; V1 :predict takes application/json "
            "(the binary tensor extension is V2's: /v2/models/NAME/infer)"
        )
    raise UnsupportedMediaType(
        f"unsupported Content-Type {content_type!r}; send application/json, or the binary "
        "tensor extension with an Inference-Header-Content-Length header"
    )


def parse_header_length(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        n = int(raw)
    except ValueError as e:
        raise InvalidInput(
            f"Inference-Header-Content-Length must be an integer, got {raw!r}"
        ) from e
    if n < 0:
        raise InvalidInput("Inference-Header-Content-Length must be >= 0")
    return n
