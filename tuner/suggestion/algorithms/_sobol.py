"""``sobol``: optuna's QMCSampler with a Sobol sequence (quasi-random, space filling)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from tuner.suggestion.algorithms._base import RANDOM_STATE, Algorithm
from tuner.suggestion.settings import Setting, boolean
from tuner.suggestion.space import SearchSpace

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler


class Sobol(Algorithm):
    name = "sobol"
    sampler_name = "QMCSampler(qmc_type='sobol')"
    ignores_results = True
    settings = (
        RANDOM_STATE,
        Setting(
            "scramble", boolean, "scramble the sequence (default: true when random_state is set)"
        ),
    )

    def create_sampler(self, settings: dict[str, Any], space: SearchSpace) -> BaseSampler:
        from optuna.samplers import QMCSampler

        seed = self.seed(settings)
        # An unscrambled Sobol sequence is fixed, so a seed only matters when scrambling.
        scramble = settings.get("scramble", seed is not None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # QMCSampler is marked experimental
            return QMCSampler(
                qmc_type="sobol",
                scramble=scramble,
                seed=seed,
                warn_asynchronous_seeding=False,
                warn_independent_sampling=False,
            )
