"""Trial backends: the :class:`TrialBackend` protocol and its implementations.

Implementations are imported from their modules (``tuner.backends.local``,
``tuner.backends.function``) so that using one never imports the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tuner.backends.base import TrialBackend, TrialExit, TrialRun

__all__ = ["TrialBackend", "TrialExit", "TrialRun"]


def __getattr__(name: str) -> Any:
    # Lazily: the function-trial worker imports this package and must stay light (the
    # protocol's models import pydantic).
    if name in __all__:
        from tuner.backends import base

        return getattr(base, name)
    raise AttributeError(f"module 'tuner.backends' has no attribute {name!r}")
