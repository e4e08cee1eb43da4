"""``sobol``: optuna's QMCSampler with a Sobol sequence (quasi-random, space filling)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from tuner.suggestion.algorithms._base import RANDOM_STATE, Algorithm
from tuner.suggestion.settings import Setting, boolean
from tuner.suggestion.space import SearchSpace

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler
    from optuna.study import Study


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

    def resumed_settings(self, settings: dict[str, Any], known: int) -> dict[str, Any]:
        return settings  # the same sequence, continued (advance)

    def advance(
        self, sampler: BaseSampler, study: Study, distributions: dict[str, Any], known: int
    ) -> None:
        # QMCSampler numbers its points in a study attribute (``_find_sample_id``, keyed by
        # the search space it takes from the first trial: our distributions), which a study
        # rebuilt from the store does not have: the sequence would restart at its first
        # point. Every restored trial but the first (drawn by the independent sampler) took
        # one point.
        find_sample_id = getattr(sampler, "_find_sample_id", None)
        if find_sample_id is None:  # pragma: no cover - an optuna without it
            raise RuntimeError("this optuna's QMCSampler cannot be resumed")
        for _ in range(known - 1):
            find_sample_id(study, distributions)
