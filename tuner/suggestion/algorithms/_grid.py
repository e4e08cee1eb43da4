"""``grid``: optuna's GridSampler over every combination of the parameters' values.

Katib's rule: every double parameter needs a ``step``; ints step by ``step`` (default 1);
categorical and discrete use their list. ``maxTrialCount`` may not exceed the number of
combinations. Each combination is suggested once; then suggest() returns fewer (or no)
suggestions, which ends the experiment ("suggestion end reached").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuner.spec.models import ParameterType
from tuner.suggestion.algorithms._base import RANDOM_STATE, Algorithm
from tuner.suggestion.space import SearchSpace

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler

# More combinations than this would make GridSampler's in-memory table unreasonable.
MAX_GRID = 1_000_000


class Grid(Algorithm):
    name = "grid"
    sampler_name = "GridSampler"
    settings = (RANDOM_STATE,)

    def create_sampler(self, settings: dict[str, Any], space: SearchSpace) -> BaseSampler:
        from optuna.samplers import GridSampler

        grid: dict[str, list[Any]] = {}
        for p in space.parameters:
            values = p.grid_values()
            if values is None:
                raise ValueError(f"grid needs a step for double parameter {p.name!r}")
            grid[p.name] = values
        return GridSampler(grid, seed=self.seed(settings))

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
