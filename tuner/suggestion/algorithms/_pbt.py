"""``pbt``: Katib's population based training. Validated (Katib's settings and rules) so
Katib files load, but not run: it needs trial checkpoints and parent/child trials, which
the local controller does not provide. Running it fails with :class:`UnsupportedAlgorithm`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuner.suggestion.algorithms._base import Algorithm, UnsupportedAlgorithm
from tuner.suggestion.settings import Setting, integer, number, text_value
from tuner.suggestion.space import SearchSpace

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler


class PopulationBasedTraining(Algorithm):
    name = "pbt"
    sampler_name = "(not supported locally)"
    supported = False
    settings = (
        Setting("suggestion_trial_dir", text_value, "checkpoint folder", required=True),
        Setting("n_population", integer(5), "population size", required=True),
        Setting("truncation_threshold", number(low=0, high=1), "exploit fraction", required=True),
        Setting("resample_probability", number(low=0, high=1), "resample instead of perturb"),
    )

    def create_sampler(self, settings: dict[str, Any], space: SearchSpace) -> BaseSampler:
        raise UnsupportedAlgorithm("pbt is not supported by the local suggestion service")
