"""Runtime errors: refused at deploy time, or failed while loading."""

from __future__ import annotations


class UnsupportedModelError(ValueError):
    """The predictor is valid KServe but cannot run here (format, protocol, scheme ...)."""


class ModelLoadError(RuntimeError):
    """``load()`` failed; the message names the model, the path and the reason."""

    def __init__(self, model: str, path: object, reason: str) -> None:
        self.model = model
        self.path = path
        self.reason = reason
        super().__init__(f"model {model!r}: cannot load {path}: {reason}")
