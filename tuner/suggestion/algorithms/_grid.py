"""``grid``: every combination of the parameters' values, each suggested exactly once.

Katib's rule: every double parameter needs a ``step``; ints step by ``step`` (default 1);
categorical and discrete use their list. ``maxTrialCount`` may not exceed the number of
combinations. When every combination has been handed out, suggest() returns fewer (or no)
suggestions, which ends the experiment ("suggestion end reached").

optuna's own GridSampler is not used: it assigns grid cells by trial number for the first
``n`` trials (so trials restored after a restart collide with new ones), hands out running
cells again once all have started, and calls ``study.stop()`` from ``tell`` outside
``optimize``. :class:`GridSearchSampler` instead takes the next combination no trial of the
study holds yet, whatever its state, so restored and pending trials are never repeated.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tuner.spec.models import ParameterType
from tuner.suggestion.algorithms._base import RANDOM_STATE, Algorithm
from tuner.suggestion.space import SearchSpace

if TYPE_CHECKING:
    from optuna import Study
    from optuna.distributions import BaseDistribution
    from optuna.samplers import BaseSampler
    from optuna.trial import FrozenTrial

# More combinations than this would make the in-memory table unreasonable.
MAX_GRID = 1_000_000


def _key(values: Sequence[Any]) -> tuple[Any, ...]:
    # 0.30000000000000004 from a store must match the grid's 0.3.
    return tuple(round(v, 9) if isinstance(v, float) else v for v in values)


def _make_sampler(grid: dict[str, list[Any]], seed: int | None) -> BaseSampler:
    from optuna.samplers import BaseSampler

    class GridSearchSampler(BaseSampler):
        """Next unused combination, in product order (shuffled when seeded)."""

        def __init__(self) -> None:
            self._names = list(grid)
            self._cells = [_key(c) for c in itertools.product(*grid.values())]
            if seed is not None:
                random.Random(seed).shuffle(self._cells)
            self._cell_set = set(self._cells)
            self._used: set[tuple[Any, ...]] = set()
            self._seen = 0  # trials of the study already folded into _used
            self._next = 0  # cells before this index are all used
            self._by_trial: dict[int, tuple[Any, ...]] = {}

        def _sync(self, study: Study) -> None:
            trials = study.get_trials(deepcopy=False)
            for t in trials[self._seen :]:
                if all(n in t.params for n in self._names):
                    key = _key([t.params[n] for n in self._names])
                    if key in self._cell_set:  # off-grid history does not use a cell
                        self._used.add(key)
            self._seen = len(trials)

        def remaining(self, study: Study) -> int:
            self._sync(study)
            return len(self._cells) - len(self._used)

        def infer_relative_search_space(
            self, study: Study, trial: FrozenTrial
        ) -> dict[str, BaseDistribution]:
            return {}

        def sample_relative(
            self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
        ) -> dict[str, Any]:
            return {}

        def sample_independent(
            self,
            study: Study,
            trial: FrozenTrial,
            param_name: str,
            param_distribution: BaseDistribution,
        ) -> Any:
            # ask(fixed_distributions) samples parameter by parameter; the first one picks
            # the cell and stores it on the trial so the others read from the same cell.
            cell = self._by_trial.get(trial.number)
            if cell is None:
                self._sync(study)
                while self._next < len(self._cells) and self._cells[self._next] in self._used:
                    self._next += 1
                if self._next == len(self._cells):
                    raise RuntimeError("grid exhausted")
                cell = self._cells[self._next]
                self._used.add(cell)
                self._by_trial = {trial.number: cell}  # only the trial being asked
            return cell[self._names.index(param_name)]

    return GridSearchSampler()


class Grid(Algorithm):
    name = "grid"
    sampler_name = "grid (own sampler, see tuner/suggestion/algorithms/_grid.py)"
    ignores_results = True
    settings = (RANDOM_STATE,)

    def create_sampler(self, settings: dict[str, Any], space: SearchSpace) -> BaseSampler:
        grid: dict[str, list[Any]] = {}
        for p in space.parameters:
            values = p.grid_values()
            if values is None:
                raise ValueError(f"grid needs a step for double parameter {p.name!r}")
            grid[p.name] = values
        return _make_sampler(grid, self.seed(settings))

    def resumed_settings(self, settings: dict[str, Any], known: int) -> dict[str, Any]:
        return settings  # the same (shuffled) order; the sampler skips the cells used

    def check_space(
        self, settings: dict[str, Any], space: SearchSpace, max_trial_count: int | None
    ) -> list[tuple[str, str]]:
        problems = [
            (
                f"parameters[{i}].feasibleSpace.step",
                f"grid needs a step for double parameter {p.name!r}",
            )
            for i, p in enumerate(space.parameters)
            if p.type is ParameterType.DOUBLE and p.grid_size() is None
        ]
        if problems:
            return problems
        size = space.grid_size() or 0
        if size > MAX_GRID:
            return [("parameters", f"grid has {size} combinations; at most {MAX_GRID} supported")]
        if max_trial_count is not None and max_trial_count > size:
            return [
                (
                    "maxTrialCount",
                    f"grid needs maxTrialCount ({max_trial_count}) <= number of grid "
                    f"combinations ({size})",
                )
            ]
        return []
