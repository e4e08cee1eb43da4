"""The algorithm plug-in base: a settings schema, a sampler factory, an optional pruner.

Contract for implementations (one module each, registered in ``algorithms/__init__.py``):

* ``name`` is Katib's ``algorithmName``; ``settings`` lists every accepted
  ``algorithmSettings`` entry (anything else is rejected with the list of valid names).
* ``create_sampler`` / ``create_pruner`` receive settings already parsed by the schema and
  a parsed :class:`~tuner.suggestion.space.SearchSpace`; they build fresh optuna objects
  each call and keep no state themselves (the study owns all state), so one algorithm
  instance is shared by every experiment and thread.
* ``check_space`` reports what the algorithm cannot search (grid without steps, cmaes in
  one dimension) as ``(path relative to spec., message)`` pairs, without raising.
* ``supported = False`` marks a Katib algorithm that validates but that the local service
  cannot run: its ``create_sampler`` raises :class:`UnsupportedAlgorithm`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from tuner.suggestion.settings import Setting, integer
from tuner.suggestion.space import SearchSpace, Value

if TYPE_CHECKING:
    from optuna.pruners import BasePruner
    from optuna.samplers import BaseSampler


class UnsupportedAlgorithm(RuntimeError):
    """A known Katib algorithm that the local suggestion service cannot run."""


RANDOM_STATE = Setting("random_state", integer(0), "seed of the sampler (optuna `seed`)")


class Algorithm(ABC):
    """One Katib algorithm implemented with optuna."""

    name: ClassVar[str]
    settings: ClassVar[tuple[Setting, ...]] = (RANDOM_STATE,)
    supported: ClassVar[bool] = True
    sampler_name: ClassVar[str] = ""

    @abstractmethod
    def create_sampler(self, settings: dict[str, Any], space: SearchSpace) -> BaseSampler:
        """A new optuna sampler for one experiment."""

    def create_pruner(self, settings: dict[str, Any], space: SearchSpace) -> BasePruner | None:
        """A pruner driven by intermediate values, or None (no pruning)."""
        return None

    def check_space(
        self, settings: dict[str, Any], space: SearchSpace, max_trial_count: int | None
    ) -> list[tuple[str, str]]:
        """What this algorithm cannot search in ``space``; empty when it can."""
        return []

    def fixed_assignments(self, settings: dict[str, Any], space: SearchSpace) -> dict[str, Value]:
        """Parameters the algorithm sets itself instead of sampling (hyperband's resource)."""
        return {}

    @staticmethod
    def seed(settings: dict[str, Any]) -> int | None:
        value = settings.get("random_state")
        return int(value) if value is not None else None


def numeric_count(space: SearchSpace) -> int:
    return sum(1 for p in space.parameters if p.numeric)
