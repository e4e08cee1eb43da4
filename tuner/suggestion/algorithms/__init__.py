"""The algorithm registry: Katib ``algorithmName`` -> implementation.

Adding an algorithm = one module with an :class:`Algorithm` subclass + one line here.
"""

from __future__ import annotations

from tuner.suggestion.algorithms._base import Algorithm, UnsupportedAlgorithm
from tuner.suggestion.algorithms._cmaes import CmaEs
from tuner.suggestion.algorithms._gp import BayesianOptimization
from tuner.suggestion.algorithms._grid import Grid
from tuner.suggestion.algorithms._hyperband import Hyperband
from tuner.suggestion.algorithms._multivariate_tpe import MultivariateTPE
from tuner.suggestion.algorithms._pbt import PopulationBasedTraining
from tuner.suggestion.algorithms._random import RandomSearch
from tuner.suggestion.algorithms._sobol import Sobol
from tuner.suggestion.algorithms._tpe import TPE

ALGORITHMS: dict[str, type[Algorithm]] = {
    cls.name: cls
    for cls in (
        BayesianOptimization,
        CmaEs,
        Grid,
        Hyperband,
        MultivariateTPE,
        PopulationBasedTraining,
        RandomSearch,
        Sobol,
        TPE,
    )
}


class UnknownAlgorithm(KeyError):
    """No algorithm of that name; ``str()`` lists the valid names."""

    def __str__(self) -> str:
        return str(self.args[0])


def unknown_message(name: str) -> str:
    return f"unknown algorithm {name!r}; valid: {', '.join(sorted(ALGORITHMS))}"


def get_algorithm(name: str) -> Algorithm:
    """The implementation of Katib algorithm ``name``; raises :class:`UnknownAlgorithm`."""
    try:
        return ALGORITHMS[name]()
    except KeyError:
        raise UnknownAlgorithm(unknown_message(name)) from None


__all__ = ["ALGORITHMS", "Algorithm", "UnknownAlgorithm", "UnsupportedAlgorithm", "get_algorithm"]
