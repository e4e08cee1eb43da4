"""``tpe``: optuna's TPESampler, independent (univariate) Parzen estimators."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from tuner.suggestion.algorithms._base import RANDOM_STATE, Algorithm
from tuner.suggestion.settings import Setting, integer
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


class TPE(Algorithm):
    name = "tpe"
    sampler_name = "TPESampler"
    settings = TPE_SETTINGS
    multivariate: ClassVar[bool] = False

    def create_sampler(self, settings: dict[str, Any], space: SearchSpace) -> BaseSampler:
        from optuna.samplers import TPESampler

        kwargs: dict[str, Any] = {
            k: settings[k] for k in ("n_startup_trials", "n_ei_candidates") if k in settings
        }
        if self.multivariate:
            kwargs["multivariate"] = True
            # multivariate falls back to independent sampling for a changing space only;
            # ours is fixed, so the warning would only be noise.
            kwargs["warn_independent_sampling"] = False
        return TPESampler(seed=self.seed(settings), **kwargs)
