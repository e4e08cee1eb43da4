"""``tpe``: optuna's TPESampler, independent (univariate) Parzen estimators.

Katib serves ``tpe`` with hyperopt, whose settings are ``gamma``, ``prior_weight``,
``n_EI_candidates`` and ``random_state``; its optuna service (``multivariate-tpe``) takes
``n_startup_trials``, ``n_ei_candidates`` and ``random_state``. ``tpe`` here takes both
sets, mapped onto optuna's TPESampler: hyperopt's ``gamma`` is the fraction in its rule
for the number of "good" trials, ``min(ceil(gamma * sqrt(n)), 25)`` (optuna's
``hyperopt_default_gamma`` with another fraction).
"""

from __future__ import annotations

import functools
import inspect
import math
from typing import TYPE_CHECKING, Any, ClassVar

from tuner.suggestion.algorithms._base import RANDOM_STATE, Algorithm, UnsupportedAlgorithm
from tuner.suggestion.settings import Setting, SettingError, integer, number
from tuner.suggestion.space import SearchSpace

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler

TPE_SETTINGS = (
    Setting("n_startup_trials", integer(0), "random trials before TPE starts (default 10)"),
    Setting(
        "n_ei_candidates", integer(1), "candidates scored by expected improvement (default 24)"
    ),
    RANDOM_STATE,
)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:  # NaN too
        raise SettingError("must be a number strictly between 0 and 1")
    return value


# Katib's hyperopt-served tpe (its ValidateAlgorithmSettings ranges).
HYPEROPT_SETTINGS = (
    Setting("gamma", _fraction, 'hyperopt\'s share of "good" trials (optuna `gamma`)'),
    Setting("prior_weight", number(above=0), "weight of the prior (optuna `prior_weight`)"),
    Setting("n_EI_candidates", integer(1), "hyperopt's name of n_ei_candidates"),
)


def hyperopt_gamma(fraction: float, n: int) -> int:
    """hyperopt's split of ``n`` finished trials: how many count as good."""
    return min(math.ceil(fraction * math.sqrt(n)), 25)


class TPE(Algorithm):
    name = "tpe"
    sampler_name = "TPESampler"
    settings: ClassVar[tuple[Setting, ...]] = (*TPE_SETTINGS[:-1], *HYPEROPT_SETTINGS, RANDOM_STATE)
    multivariate: ClassVar[bool] = False

    def check_space(
        self, settings: dict[str, Any], space: SearchSpace, max_trial_count: int | None
    ) -> list[tuple[str, str]]:
        if "n_EI_candidates" in settings and "n_ei_candidates" in settings:
            message = "n_EI_candidates (hyperopt's name) and n_ei_candidates are one setting"
            return [("algorithm.algorithmSettings", f"{message}: give one")]
        return []

    def create_sampler(self, settings: dict[str, Any], space: SearchSpace) -> BaseSampler:
        from optuna.samplers import TPESampler

        kwargs: dict[str, Any] = {
            k: settings[k]
            for k in ("n_startup_trials", "n_ei_candidates", "prior_weight")
            if k in settings
        }
        if "n_EI_candidates" in settings:
            kwargs["n_ei_candidates"] = settings["n_EI_candidates"]
        if "gamma" in settings:
            kwargs["gamma"] = functools.partial(hyperopt_gamma, settings["gamma"])
        hyperopt = [k for k in ("gamma", "prior_weight") if k in kwargs]
        if hyperopt and not set(hyperopt) <= set(inspect.signature(TPESampler).parameters):
            # optuna deprecated both in 4.9 and means to remove them in 6.0.
            raise UnsupportedAlgorithm(
                f"this optuna's TPESampler no longer takes {' and '.join(hyperopt)}: "
                "remove the setting to run tpe here"
            )
        if self.multivariate:
            kwargs["multivariate"] = True
            # multivariate falls back to independent sampling for a changing space only;
            # ours is fixed, so the warning would only be noise.
            kwargs["warn_independent_sampling"] = False
        return TPESampler(seed=self.seed(settings), **kwargs)
