"""``bayesianoptimization``: scikit-optimize's ``Optimizer``, as Katib's own service runs it.

Katib implements this algorithm with scikit-optimize (``pkg/suggestion/v1beta1/skopt``), so
its settings are skopt's, with Katib's defaults and accepted values: ``base_estimator``
(GP, RF, ET, GBRT; default GP), ``n_initial_points`` (10), ``acq_func`` (gp_hedge, LCB, EI,
PI; default gp_hedge), ``acq_optimizer`` (auto, sampling, lbfgs; default auto) and
``random_state``. The optuna sampler around it is :mod:`._skopt`. No torch: this runs on
the default install (scikit-optimize needs only numpy, scipy and scikit-learn).

Two settings Katib's validation accepts cannot run: ``acq_func`` ``EIps``/``PIps`` need
the time each evaluation took, which Katib's service never passes (skopt then fails on
the first result) — they are reported as "cannot run locally" before any trial runs.
``acq_optimizer: lbfgs`` with a tree estimator (RF, ET, GBRT) is refused by skopt itself,
so it is a validation error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuner.suggestion.algorithms._base import RANDOM_STATE, Algorithm, UnsupportedAlgorithm
from tuner.suggestion.settings import Setting, choice, integer
from tuner.suggestion.space import SearchSpace

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler

# Katib's OptimizerConfiguration defaults.
DEFAULTS: dict[str, Any] = {
    "base_estimator": "GP",
    "n_initial_points": 10,
    "acq_func": "gp_hedge",
    "acq_optimizer": "auto",
}
_NEEDS_TIMES = ("EIps", "PIps")


class BayesianOptimization(Algorithm):
    name = "bayesianoptimization"
    sampler_name = "skopt.Optimizer (scikit-optimize, as Katib)"
    requires = (("skopt", "scikit-optimize"),)
    settings = (
        Setting(
            "base_estimator",
            choice("GP", "RF", "ET", "GBRT", case_sensitive=True),
            "surrogate model: GP (Gaussian process, default), RF, ET or GBRT",
        ),
        Setting(
            "n_initial_points",
            integer(0),
            "random points before the surrogate model is used (default 10)",
        ),
        Setting(
            "acq_func",
            choice("gp_hedge", "LCB", "EI", "PI", *_NEEDS_TIMES, case_sensitive=True),
            "acquisition function (default gp_hedge: EI, LCB and PI in turn)",
        ),
        Setting(
            "acq_optimizer",
            choice("auto", "sampling", "lbfgs", case_sensitive=True),
            "how the acquisition function is minimised (default auto: lbfgs for GP)",
        ),
        RANDOM_STATE,
    )

    def create_sampler(self, settings: dict[str, Any], space: SearchSpace) -> BaseSampler:
        problem = self.local_problem(settings)
        if problem is not None:
            raise UnsupportedAlgorithm(problem)
        from tuner.suggestion.algorithms._skopt import SkoptSampler

        options = {**DEFAULTS, **{k: v for k, v in settings.items() if k in DEFAULTS}}
        return SkoptSampler(space.distributions(), random_state=self.seed(settings), **options)

    def local_problem(self, settings: dict[str, Any]) -> str | None:
        acq_func = settings.get("acq_func")
        if acq_func in _NEEDS_TIMES:
            return (
                f"bayesianoptimization with acq_func {acq_func} needs each trial's run time, "
                "which the suggestion service does not get (Katib's skopt service fails on "
                "it too); use gp_hedge, EI, PI or LCB"
            )
        return super().local_problem(settings)

    def check_space(
        self, settings: dict[str, Any], space: SearchSpace, max_trial_count: int | None
    ) -> list[tuple[str, str]]:
        estimator = settings.get("base_estimator", DEFAULTS["base_estimator"])
        if settings.get("acq_optimizer") == "lbfgs" and estimator != "GP":
            return [
                (
                    "algorithm.algorithmSettings",
                    f"acq_optimizer lbfgs needs gradients: only base_estimator GP has them "
                    f"(got {estimator}); use acq_optimizer sampling or auto",
                )
            ]
        return []
