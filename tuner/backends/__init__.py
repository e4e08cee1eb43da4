"""Trial backends: the :class:`TrialBackend` protocol and its implementations.

Implementations are imported from their modules (``tuner.backends.local``,
``tuner.backends.function``) so that using one never imports the others.
"""

from __future__ import annotations

from tuner.backends.base import TrialBackend, TrialExit, TrialRun

__all__ = ["TrialBackend", "TrialExit", "TrialRun"]
