"""The suggestion service: Katib algorithm names implemented with optuna samplers.

``validate_algorithm`` checks an experiment's algorithm against its search space;
``InProcessSuggestionClient`` (default) and ``HttpSuggestionClient`` implement the one
``SuggestionClient`` interface. Heavy modules (optuna, skopt, httpx, fastapi) load only when
a client is used, so importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuner.suggestion.algorithms import ALGORITHMS, get_algorithm
from tuner.suggestion.base import Suggestion, SuggestionClient
from tuner.suggestion.validation import validate_algorithm

if TYPE_CHECKING:
    from tuner.suggestion.http_client import HttpSuggestionClient
    from tuner.suggestion.inprocess import InProcessSuggestionClient

_LAZY = {
    "InProcessSuggestionClient": "tuner.suggestion.inprocess",
    "HttpSuggestionClient": "tuner.suggestion.http_client",
}


def ignores_results(algorithm_name: str) -> bool:
    """Whether the algorithm's suggestions never depend on earlier trials' results
    (``random``, ``grid``, ``sobol``): asking for a trial early changes nothing it suggests."""
    algorithm = ALGORITHMS.get(algorithm_name)
    return algorithm is not None and algorithm.ignores_results


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tuner.suggestion' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "ALGORITHMS",
    "HttpSuggestionClient",
    "InProcessSuggestionClient",
    "Suggestion",
    "SuggestionClient",
    "get_algorithm",
    "ignores_results",
    "validate_algorithm",
]
