"""Kubernetes-style paging: ``?limit=N&continue=TOKEN``; the token is opaque to clients
and bound to the query it came from (reusing it with other filters is a 400)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from hyperflow.handlers.errors import BadRequest

DEFAULT_LIMIT = 100
MAX_LIMIT = 5000


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list: ``items``, and ``next`` (the continue token, "" at the end);
    ``resource_version``: the event stream position the page was read at (watch from it)."""

    items: list[dict[str, Any]]
    next: str
    resource_version: int


def _fingerprint(query: tuple[Any, ...]) -> str:
    return hashlib.sha256(json.dumps(query, default=str).encode()).hexdigest()[:12]


def start(limit: int | None, token: str | None, query: tuple[Any, ...]) -> tuple[int, int]:
    """(offset, limit) for a request."""
    if limit is None or limit == 0:
        limit = DEFAULT_LIMIT
    if limit < 0:
        raise BadRequest("limit must be >= 0")
    limit = min(limit, MAX_LIMIT)
    if not token:
        return 0, limit
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode() + b"=="))
        offset, fingerprint = int(data["o"]), str(data["q"])
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
        raise BadRequest("invalid continue token") from None
    if fingerprint != _fingerprint(query) or offset < 0:
        raise BadRequest("the continue token belongs to another query")
    return offset, limit


def next_token(offset: int, count: int, more: bool, query: tuple[Any, ...]) -> str:
    if not more:
        return ""
    raw = json.dumps({"o": offset + count, "q": _fingerprint(query)}).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
