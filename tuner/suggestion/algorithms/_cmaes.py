"""``cmaes``: optuna's CmaEsSampler (covariance matrix adaptation on int/double parameters).

Categorical and discrete parameters are sampled independently (randomly) by optuna's
fallback sampler. ``restart_strategy`` is accepted for Katib compatibility, but optuna
>= 4.4 ignores it (it "falls back to None"), so it is validated and not passed on.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from tuner.suggestion.algorithms._base import RANDOM_STATE, Algorithm, numeric_count
from tuner.suggestion.settings import Setting, choice, number
from tuner.suggestion.space import SearchSpace

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler


class CmaEs(Algorithm):
    name = "cmaes"
    sampler_name = "CmaEsSampler"
    settings = (
        RANDOM_STATE,
        Setting("sigma", number(above=0), "initial step size (optuna `sigma0`)"),
        Setting(
            "restart_strategy",
            choice("None", "ipop", "bipop"),
            "accepted for Katib; no effect (optuna >= 4.4 removed restarts)",
        ),
    )

    def create_sampler(self, settings: dict[str, Any], space: SearchSpace) -> BaseSampler:
        from optuna.samplers import CmaEsSampler

        kwargs: dict[str, Any] = {"seed": self.seed(settings), "warn_independent_sampling": False}
        if "sigma" in settings:
            kwargs["sigma0"] = settings["sigma"]
        with warnings.catch_warnings():
            # sigma0 is deprecated in optuna 4.9 (removal 6.0) but is still honoured.
            warnings.simplefilter("ignore", FutureWarning)
            return CmaEsSampler(**kwargs)

    def check_space(
        self, settings: dict[str, Any], space: SearchSpace, max_trial_count: int | None
    ) -> list[tuple[str, str]]:
        if numeric_count(space) < 2:
            return [("parameters", "cmaes needs at least 2 double/int parameters")]
        return []
