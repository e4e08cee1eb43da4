"""``random``: optuna's RandomSampler (independent uniform / log-uniform sampling)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuner.suggestion.algorithms._base import Algorithm
from tuner.suggestion.space import SearchSpace

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler


class RandomSearch(Algorithm):
    name = "random"
    sampler_name = "RandomSampler"
    ignores_results = True

    def create_sampler(self, settings: dict[str, Any], space: SearchSpace) -> BaseSampler:
        from optuna.samplers import RandomSampler

        return RandomSampler(seed=self.seed(settings))
