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
* ``requires`` names the modules (and the distributions that provide them) the sampler
  imports; :meth:`local_problem` says what is missing, so ``experiment validate`` notes it
  and ``experiment run`` fails at start (``ExperimentFailed``) instead of after trials ran.
  ``local_problem`` also reports valid settings this service cannot run.
* A resumed experiment's sampler is made from :meth:`resumed_settings` (a seed of its own,
  so that a seeded sampler does not replay its first proposals); :meth:`advance` then
  moves a sequence that counts its proposals past the restored trials.
"""

from __future__ import annotations

import hashlib
import importlib.util
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from tuner.suggestion.settings import Setting, integer
from tuner.suggestion.space import SearchSpace, Value

if TYPE_CHECKING:
    from optuna.pruners import BasePruner
    from optuna.samplers import BaseSampler
    from optuna.study import Study


class UnsupportedAlgorithm(RuntimeError):
    """A known Katib algorithm that the local suggestion service cannot run."""


RANDOM_STATE = Setting("random_state", integer(0), "seed of the sampler (optuna `seed`)")


class Algorithm(ABC):
    """One Katib algorithm implemented with optuna."""

    name: ClassVar[str]
    settings: ClassVar[tuple[Setting, ...]] = (RANDOM_STATE,)
    supported: ClassVar[bool] = True
    sampler_name: ClassVar[str] = ""
    # (module, distribution to install) pairs the sampler needs at run time.
    requires: ClassVar[tuple[tuple[str, str], ...]] = ()
    # Its suggestions depend on which trials were asked for, never on their results (the
    # controller may then ask for a trial before the running ones have ended).
    ignores_results: ClassVar[bool] = False

    @abstractmethod
    def create_sampler(self, settings: dict[str, Any], space: SearchSpace) -> BaseSampler:
        """A new optuna sampler for one experiment."""

    def local_problem(self, settings: dict[str, Any]) -> str | None:
        """Why this machine cannot run the algorithm with ``settings``, or None if it can.

        Cheap (no heavy import): ``experiment validate`` calls it for its notes.
        """
        if not self.supported:
            return f"algorithm {self.name} is not supported by the local suggestion service"
        missing = [dist for module, dist in self.requires if not _importable(module)]
        if missing:
            return (
                f"algorithm {self.name} needs {', '.join(missing)}, which is not installed "
                f"(pip install {' '.join(missing)})"
            )
        return None

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

    def resumed_settings(self, settings: dict[str, Any], known: int) -> dict[str, Any]:
        """The settings of a sampler re-created for an experiment that already has ``known``
        trials (a resumed or continued run).

        A seeded sampler made afresh would replay its stream from the start and propose the
        trials it proposed before; this one gets a seed derived from ``random_state`` and
        ``known``: still reproducible, never the old stream.
        """
        seed = self.seed(settings)
        if seed is None or known <= 0:
            return settings
        digest = hashlib.sha256(f"{seed}/{known}".encode()).digest()
        return {**settings, "random_state": int.from_bytes(digest[:4], "big")}

    def advance(
        self, sampler: BaseSampler, study: Study, distributions: dict[str, Any], known: int
    ) -> None:
        """Move a sampler that counts its proposals in the study past the ``known`` trials
        restored into ``study`` (nothing for the others)."""
        return None


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or an import blocked
        return False


def numeric_count(space: SearchSpace) -> int:
    return sum(1 for p in space.parameters if p.numeric)
