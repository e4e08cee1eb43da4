"""Errors that carry their HTTP status: the handler layer raises them, each transport
renders them (the API as ``{"error": ..., "details": [{"path", "message"}]}``, the CLI as
lines)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FieldProblem:
    path: str
    message: str
    # The line of the request's YAML the path is on (1-based), when the body was YAML.
    line: int | None = None


class HandlerError(Exception):
    status = 500

    def __init__(self, message: str, details: Sequence[FieldProblem] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details)

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message}
        if self.details:
            out["details"] = [
                {"path": d.path, "message": d.message}
                if d.line is None
                else {"path": d.path, "message": d.message, "line": d.line}
                for d in self.details
            ]
        return out


class BadRequest(HandlerError):
    status = 400


class Unauthorized(HandlerError):
    status = 401


class Forbidden(HandlerError):
    status = 403


class NotFound(HandlerError):
    status = 404


class Conflict(HandlerError):
    status = 409


class Gone(HandlerError):
    status = 410


class PayloadTooLarge(HandlerError):
    status = 413


class UnsupportedMediaType(HandlerError):
    status = 415


class Invalid(HandlerError):
    """422: the request is well-formed but its content breaks the rules; ``details``
    names every field."""

    status = 422


class Unavailable(HandlerError):
    """503: try again (the experiment's controller is starting or stopping)."""

    status = 503
