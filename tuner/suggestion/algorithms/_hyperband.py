"""``hyperband``: random sampling + optuna's HyperbandPruner on intermediate values.

Katib's hyperband schedules brackets by re-running configurations with growing budgets.
Here each trial gets the full budget (the ``resource_name`` parameter is fixed to the top
of its feasible space) and reports its objective per step; the pruner stops the trials
that fall behind at each rung (``min_resource`` 1, ``max_resource`` = ``r_l``,
``reduction_factor`` = ``eta``), which is optuna's asynchronous form of the same method.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from tuner.suggestion.algorithms._base import RANDOM_STATE, Algorithm
from tuner.suggestion.settings import Setting, integer, number, text_value
from tuner.suggestion.space import SearchSpace, Value

if TYPE_CHECKING:
    from optuna.pruners import BasePruner
    from optuna.samplers import BaseSampler


class Hyperband(Algorithm):
    name = "hyperband"
    sampler_name = "RandomSampler + HyperbandPruner"
    settings = (
        Setting("resource_name", text_value, "parameter holding the budget", required=True),
        Setting("eta", integer(2), "reduction factor (default 3)"),
        Setting(
            "r_l", number(above=0), "max budget per trial (pruner max_resource)", required=True
        ),
        RANDOM_STATE,
    )

    def create_sampler(self, settings: dict[str, Any], space: SearchSpace) -> BaseSampler:
        from optuna.samplers import RandomSampler

        return RandomSampler(seed=self.seed(settings))

    def create_pruner(self, settings: dict[str, Any], space: SearchSpace) -> BasePruner | None:
        from optuna.pruners import HyperbandPruner

        max_resource = max(1, math.ceil(float(settings.get("r_l", 1))))
        return HyperbandPruner(
            min_resource=1,
            max_resource=max_resource,
            reduction_factor=int(settings.get("eta", 3)),
        )

    def check_space(
        self, settings: dict[str, Any], space: SearchSpace, max_trial_count: int | None
    ) -> list[tuple[str, str]]:
        name = settings.get("resource_name")
        if name is not None and name not in space.by_name():
            return [
                (
                    "algorithm.algorithmSettings",
                    f"resource_name {name!r} must be one of the parameters",
                )
            ]
        return []

    def fixed_assignments(self, settings: dict[str, Any], space: SearchSpace) -> dict[str, Value]:
        param = space.by_name().get(settings.get("resource_name", ""))
        if param is None:
            return {}
        if param.numeric:
            assert param.high is not None
            return {param.name: param.typed(param.high)}
        return {param.name: param.choices[-1]}
