"""``bayesianoptimization``: optuna's GPSampler (Gaussian process, log expected improvement).

Katib runs scikit-optimize here; its settings are accepted where optuna's GPSampler has the
same behaviour and rejected where it has none (other estimators / acquisition functions),
so a file never silently runs a different method than it names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuner.suggestion.algorithms._base import RANDOM_STATE, Algorithm
from tuner.suggestion.settings import Setting, choice, integer
from tuner.suggestion.space import SearchSpace

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler


class BayesianOptimization(Algorithm):
    name = "bayesianoptimization"
    sampler_name = "GPSampler"
    settings = (
        RANDOM_STATE,
        Setting("n_initial_points", integer(0), "Katib name of optuna `n_startup_trials`"),
        Setting("n_startup_trials", integer(0), "random trials before the GP (default 10)"),
        Setting("base_estimator", choice("GP"), "only GP (a Gaussian process)"),
        Setting(
            "acq_func",
            choice("gp_hedge", "EI"),
            "gp_hedge/EI: optuna uses (log) expected improvement",
        ),
        Setting("acq_optimizer", choice("auto", "lbfgs"), "optuna optimises with L-BFGS-B"),
    )

    def create_sampler(self, settings: dict[str, Any], space: SearchSpace) -> BaseSampler:
        from optuna.samplers import GPSampler

        startup = settings.get("n_startup_trials", settings.get("n_initial_points"))
        kwargs: dict[str, Any] = {"seed": self.seed(settings), "warn_independent_sampling": False}
        if startup is not None:
            kwargs["n_startup_trials"] = startup
        return GPSampler(**kwargs)

    def check_space(
        self, settings: dict[str, Any], space: SearchSpace, max_trial_count: int | None
    ) -> list[tuple[str, str]]:
        if "n_initial_points" in settings and "n_startup_trials" in settings:
            return [
                (
                    "algorithm.algorithmSettings",
                    "set n_initial_points or n_startup_trials, not both",
                )
            ]
        return []
