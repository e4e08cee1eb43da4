"""How an objective function is called with a trial's assignments.

Katib's ``tune(objective=fn)`` calls ``fn(parameters)`` with one dict; Ray Tune and plain
Python code often prefer ``fn(lr=..., layers=...)``. Both work:

* dict convention ``fn(assignments)`` when the function has exactly one positional
  parameter named ``parameters`` or ``params``, or exactly one parameter without a default
  whose name is *not* one of the experiment's parameters;
* keyword convention ``fn(**assignments)`` otherwise (so ``def f(lr): ...`` in an
  experiment with one parameter ``lr`` gets ``lr=...``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from tuner.backends._func_protocol import CALL_DICT, CALL_KWARGS

_DICT_NAMES = frozenset({"parameters", "params"})
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


@dataclass(frozen=True, slots=True)
class CallingConvention:
    """The signature facts that decide the convention, computed once per function."""

    sole_parameter: str | None  # the name when the function has exactly one parameter
    required: tuple[str, ...]  # parameters without a default (not *args/**kwargs)
    required_positional: tuple[str, ...]  # those of them that can be passed positionally

    @classmethod
    def of(cls, fn: Callable[..., Any]) -> CallingConvention:
        try:
            params = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):  # callables without a signature: keyword calls
            return cls(None, (), ())
        named = [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        required = [p for p in named if p.default is p.empty]
        sole = params[0].name if len(params) == 1 and params[0].kind in _POSITIONAL else None
        return cls(
            sole,
            tuple(p.name for p in required),
            tuple(p.name for p in required if p.kind in _POSITIONAL),
        )

    def call_for(self, parameter_names: Collection[str]) -> str:
        """``CALL_DICT`` or ``CALL_KWARGS`` for an experiment with these parameters."""
        if self.sole_parameter in _DICT_NAMES:
            return CALL_DICT
        if (
            len(self.required) == 1
            and self.required_positional == self.required
            and self.required[0] not in parameter_names
        ):
            return CALL_DICT
        return CALL_KWARGS


def call_problem(fn: Callable[..., Any], parameter_names: Collection[str]) -> str | None:
    """Why ``fn`` cannot take a trial of an experiment with these parameters (a keyword
    call that does not bind: ``def f(x, z)`` for parameters x and y), or None: said before
    the first trial, instead of failing every trial with the same TypeError."""
    if CallingConvention.of(fn).call_for(parameter_names) == CALL_DICT:
        return None
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(**dict.fromkeys(parameter_names))
    except TypeError as exc:
        name = getattr(fn, "__name__", type(fn).__name__)
        return (
            f"{name}{signature} cannot take the experiment's parameters as keywords "
            f"({', '.join(parameter_names)}): {exc}; or take one dict: def {name}(parameters)"
        )
    return None
