"""The search space: Katib ``parameters`` parsed into typed parameters and optuna distributions.

Katib keeps every ``feasibleSpace`` number as a string; :func:`parse_space` parses them once
(the spec layer has already checked they are parsable) into :class:`Parameter` objects that
know their optuna distribution, their grid values and how to type an assignment.

Choices where Katib and optuna differ (documented in docs/readme/suggestion.md):

* ``distribution: normal`` / ``logNormal`` have no optuna counterpart; they are searched as
  ``uniform`` / ``logUniform`` over ``[min, max]`` (the bounds are hard limits in Katib too).
* ``logUniform`` ignores ``step`` (optuna cannot combine ``log`` and ``step``), as Katib's
  optuna service does; its lower bound is clipped to 1 (int) or 1e-10 (double), as Katib does.
* a ``step`` that does not divide ``max - min`` lowers ``max`` to the last reachable value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tuner.spec.models import Distribution, ParameterSpec, ParameterType

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

Value = float | int | str

# Grid values are rounded to this many decimals so 0.1 + 2 * 0.1 prints as 0.3.
_GRID_DECIMALS = 12


def _num(text: str | None, integer: bool) -> float | int | None:
    if text is None or text.strip() == "":
        return None
    return int(text.strip(), 10) if integer else float(text.strip())


def _discrete_values(texts: Sequence[str]) -> list[int] | list[float]:
    """Katib ``discrete`` lists as ints when every entry is an integer, else floats."""
    try:
        return [int(t.strip(), 10) for t in texts]
    except ValueError:
        return [float(t) for t in texts]


@dataclass(frozen=True, slots=True)
class Parameter:
    """One parsed parameter. ``low``/``high``/``step`` for int/double; ``choices`` otherwise."""

    name: str
    type: ParameterType
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    choices: tuple[Value, ...] = ()

    @property
    def numeric(self) -> bool:
        return self.type in (ParameterType.DOUBLE, ParameterType.INT)

    def distribution(self) -> BaseDistribution:
        """The optuna distribution searched for this parameter."""
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.type is ParameterType.INT:
            assert self.low is not None and self.high is not None
            int_step = 1 if self.log else int(self.step or 1)
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int_step)
        if self.type is ParameterType.DOUBLE:
            assert self.low is not None and self.high is not None
            step = None if self.log or self.step is None else float(self.step)
            return FloatDistribution(float(self.low), float(self.high), log=self.log, step=step)
        return CategoricalDistribution(self.choices)

    def grid_values(self) -> list[Value] | None:
        """Every value a grid search visits, or None when there is no finite grid
        (a double without ``step``)."""
        if not self.numeric:
            return list(self.choices)
        assert self.low is not None and self.high is not None
        if self.type is ParameterType.INT:
            step = int(self.step or 1)
            return list(range(int(self.low), int(self.high) + 1, step))
        if self.step is None:
            return None
        count = self.grid_size()
        assert count is not None
        return [round(float(self.low) + i * float(self.step), _GRID_DECIMALS) for i in range(count)]

    def grid_size(self) -> int | None:
        """``len(grid_values())`` without building the list."""
        if not self.numeric:
            return len(self.choices)
        assert self.low is not None and self.high is not None
        if self.type is ParameterType.DOUBLE and self.step is None:
            return None
        step = float(self.step or 1)
        # The epsilon keeps 0.01..0.05 step 0.005 at 9 values despite float rounding.
        return max(0, math.floor((float(self.high) - float(self.low)) / step + 1e-9)) + 1

    def typed(self, value: Value) -> Value:
        """``value`` (from optuna, JSON or a store) as this parameter's Python type."""
        if self.type is ParameterType.INT:
            return int(float(value)) if isinstance(value, str) else int(value)
        if self.type is ParameterType.DOUBLE:
            return float(value)
        if self.type is ParameterType.CATEGORICAL:
            return str(value)
        # discrete: the list entry that equals the value, so ints stay ints.
        number = float(value)
        for choice in self.choices:
            if float(choice) == number:
                return choice
        return number

    def contains(self, value: Value) -> bool:
        """Whether ``value`` lies in the feasible space (bounds, step, list)."""
        if not self.numeric:
            return value in self.choices
        assert self.low is not None and self.high is not None
        if isinstance(value, str) or not self.low - 1e-9 <= value <= self.high + 1e-9:
            return False
        if self.step is not None and not self.log:
            k = (value - self.low) / self.step
            return abs(k - round(k)) < 1e-6
        return True


def parse_parameter(spec: ParameterSpec) -> Parameter:
    """Parse one Katib parameter (numbers already checked parsable by the spec layer)."""
    space = spec.feasible_space
    kind = spec.parameter_type
    if kind is ParameterType.CATEGORICAL:
        return Parameter(spec.name, kind, choices=tuple(space.values or ()))
    if kind is ParameterType.DISCRETE:
        return Parameter(spec.name, kind, choices=tuple(_discrete_values(space.values or ())))
    integer = kind is ParameterType.INT
    low, high = _num(space.min, integer), _num(space.max, integer)
    step = _num(space.step, integer)
    if low is None or high is None:
        raise ValueError(f"parameter {spec.name!r} needs min and max")
    log = space.distribution in (Distribution.LOG_UNIFORM, Distribution.LOG_NORMAL)
    if log:
        # optuna cannot combine log and step: the step only defines grid values.
        low = max(1, int(low)) if integer else max(1e-10, float(low))
    if step is not None and step <= 0:
        step = None
    if step is not None:
        n = math.floor((high - low) / step + 1e-9)
        # Rounded so optuna's decimal divisibility check sees 0.05, not 0.05000000000000001.
        high = low + n * step if integer else round(low + n * step, _GRID_DECIMALS)
    return Parameter(spec.name, kind, low=low, high=high, step=step, log=log)


@dataclass(frozen=True, slots=True)
class SearchSpace:
    """All parameters of an experiment, in spec order."""

    parameters: tuple[Parameter, ...]

    @classmethod
    def from_specs(cls, specs: Sequence[ParameterSpec]) -> SearchSpace:
        return cls(tuple(parse_parameter(p) for p in specs))

    def distributions(self) -> dict[str, BaseDistribution]:
        return {p.name: p.distribution() for p in self.parameters}

    def by_name(self) -> dict[str, Parameter]:
        return {p.name: p for p in self.parameters}

    def typed(self, assignments: Mapping[str, Value]) -> dict[str, Value]:
        """Assignments typed per parameter; unknown names are dropped."""
        params = self.by_name()
        return {k: params[k].typed(v) for k, v in assignments.items() if k in params}

    def grid_size(self) -> int | None:
        """Number of grid combinations, or None when some parameter has no finite grid."""
        total = 1
        for p in self.parameters:
            n = p.grid_size()
            if n is None:
                return None
            total *= n
        return total
