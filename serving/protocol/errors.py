"""Errors that carry their HTTP status; the transport renders them as ``{"error": ...}``.

Every failure a client can cause maps to a 4xx here, so no client mistake ever becomes a
500 or a traceback. ``extra`` adds fields to the JSON body (e.g. ``ready: false`` on the
readiness endpoints, where the reason a model is not ready is shown).
"""

from __future__ import annotations

from typing import Any


class ServingError(Exception):
    """Base of all data-plane errors; ``status`` is the HTTP status to answer with."""

    status: int = 500

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message}
        if self.extra:
            out.update(self.extra)
        return out


class InvalidInput(ServingError):
    """The request is malformed: bad JSON, wrong shape, datatype or output name (400)."""

    status = 400


class ModelNotFound(ServingError):
    """No model (or model version) with that name is served here (404)."""

    status = 404

    def __init__(self, name: str, version: str | None = None) -> None:
        what = f"model {name!r}" if version is None else f"model {name!r} version {version!r}"
        super().__init__(f"{what} not found")


class NotFound(ServingError):
    """No such endpoint (404)."""

    status = 404


class Unauthorized(ServingError):
    """A token is required and the request has none, or a wrong one (401)."""

    status = 401


class MethodNotAllowed(ServingError):
    """The endpoint exists but not for this HTTP method (405); ``allow``: the methods it
    takes, sent as the ``Allow`` header RFC 9110 asks of a 405."""

    status = 405

    def __init__(self, message: str, allow: str) -> None:
        super().__init__(message)
        self.allow = allow


class ModelNotReady(ServingError):
    """The model exists but is loading or failed to load (503, as KServe's ModelNotReady)."""

    status = 503


class ServerNotReady(ServingError):
    """Not every model is ready yet (503)."""

    status = 503


class PayloadTooLarge(ServingError):
    """The request body exceeds the configured limit (413)."""

    status = 413


class UnsupportedMediaType(ServingError):
    """A JSON endpoint got a body that is neither JSON nor binary-extension data (415)."""

    status = 415


class NotSupported(ServingError):
    """The endpoint exists but this server does not implement it for the model (501, as
    KServe's answer to ``:explain`` without an explainer)."""

    status = 501


class InferenceError(ServingError):
    """The model itself failed on a well-formed request (500, message only, no traceback)."""

    status = 500
