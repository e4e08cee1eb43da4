"""An optuna sampler that asks scikit-optimize's ``Optimizer``: ``bayesianoptimization``.

What Katib's skopt service does (``pkg/suggestion/v1beta1/skopt/base_service.py``), in
optuna's ask-and-tell shape:

* one ``skopt.Optimizer`` per experiment, kept between suggestions; each newly finished
  *succeeded* trial is told once (failed, killed and early-stopped trials are not, as in
  Katib); its value is negated when the objective is maximised (skopt minimises);
* trials still running are handled as skopt's own ``ask(n_points)`` does, with the
  "constant liar" (``cl_min``): a copy of the optimizer is told each running trial's
  point with the best value seen so far, then asked, so parallel trials get different
  points instead of the same expected-improvement maximum;
* a point that a trial already holds (running, failed or stopped) is never handed out
  again: a random point is taken instead (skopt's ``avoid_duplicates`` only knows told
  points).

Search space mapping (optuna-integration's former ``SkoptSampler``, which did the same):
``int`` -> ``Integer`` over the step indices, ``int`` log -> ``Real`` log-uniform over
``[low - 0.5, high + 0.5]`` rounded, ``double`` -> ``Real`` (log-uniform with
``logUniform``), ``double`` with ``step`` -> ``Integer`` over the step indices,
``categorical``/``discrete`` -> ``Categorical``. Katib itself searches every ``double`` as
log-uniform, which fails for ranges that include 0 or negative numbers; here the
parameter's ``distribution`` decides.

Not thread-safe; the suggestion client calls it under the experiment's lock.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import skopt
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState
from skopt.space import Categorical, Dimension, Integer, Real

_DECIMALS = 12  # as the grid: 0.1 + 2 * 0.1 is 0.3


def _dimension(distribution: BaseDistribution) -> Dimension:
    if isinstance(distribution, CategoricalDistribution):
        return Categorical(list(distribution.choices))
    if isinstance(distribution, IntDistribution):
        if distribution.log:
            return Real(distribution.low - 0.5, distribution.high + 0.5, prior="log-uniform")
        return Integer(0, (distribution.high - distribution.low) // distribution.step)
    if isinstance(distribution, FloatDistribution):
        if distribution.log:
            return Real(distribution.low, distribution.high, prior="log-uniform")
        if distribution.step is not None:
            steps = round((distribution.high - distribution.low) / distribution.step)
            return Integer(0, steps)
        return Real(distribution.low, distribution.high)
    raise TypeError(f"no scikit-optimize dimension for {distribution!r}")


def _to_skopt(distribution: BaseDistribution, value: Any) -> Any:
    """A parameter value as a point coordinate of its dimension."""
    if isinstance(distribution, CategoricalDistribution):
        return value
    if isinstance(distribution, IntDistribution):
        if distribution.log:
            return float(value)
        return (int(value) - distribution.low) // distribution.step
    assert isinstance(distribution, FloatDistribution)
    if distribution.step is not None and not distribution.log:
        return round((float(value) - distribution.low) / distribution.step)
    return float(value)


def _from_skopt(distribution: BaseDistribution, coordinate: Any) -> Any:
    """A point coordinate as the parameter's (plain Python) value."""
    if isinstance(distribution, CategoricalDistribution):
        # skopt hands back numpy scalars: return the equal choice itself.
        for choice in distribution.choices:
            if choice == coordinate:
                return choice
        raise ValueError(f"{coordinate!r} is not one of {distribution.choices}")
    if isinstance(distribution, IntDistribution):
        if distribution.log:
            integer = round(float(coordinate))
            return min(max(integer, distribution.low), distribution.high)
        return distribution.low + int(coordinate) * distribution.step
    assert isinstance(distribution, FloatDistribution)
    if distribution.step is not None and not distribution.log:
        number = round(distribution.low + int(coordinate) * distribution.step, _DECIMALS)
    else:
        number = float(coordinate)
    return min(max(number, distribution.low), distribution.high)


class SkoptSampler(BaseSampler):
    """Suggests every parameter of ``distributions`` jointly with one ``skopt.Optimizer``.

    The keyword arguments are ``skopt.Optimizer``'s (``base_estimator``,
    ``n_initial_points``, ``acq_func``, ``acq_optimizer``, ``random_state``).
    """

    def __init__(self, distributions: dict[str, BaseDistribution], **skopt_kwargs: Any) -> None:
        self._distributions = dict(distributions)
        self._names = list(self._distributions)
        self._dimensions = [_dimension(d) for d in self._distributions.values()]
        self._kwargs = skopt_kwargs
        self._optimizer = self._new_optimizer(skopt_kwargs.get("random_state"))
        self._told: set[int] = set()
        # Only for a parameter outside the declared space (never asked for by the client).
        self._independent = RandomSampler(seed=skopt_kwargs.get("random_state"))

    def _new_optimizer(self, random_state: int | None) -> skopt.Optimizer:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return skopt.Optimizer(
                self._dimensions, **{**self._kwargs, "random_state": random_state}
            )

    # -- optuna's sampler interface ----------------------------------------------------

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return dict(self._distributions)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        trials = study.get_trials(deepcopy=False)
        self._tell_new(study, trials)
        others = [t for t in trials if t.number != trial.number and self._has_point(t)]
        running = [self._point(t) for t in others if t.state is TrialState.RUNNING]
        taken = {tuple(self._point(t)) for t in others if t.state is not TrialState.COMPLETE}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            point = self._ask(running)
            if tuple(point) in taken:
                point = self._random_point()
        return {
            name: _from_skopt(self._distributions[name], coordinate)
            for name, coordinate in zip(self._names, point, strict=True)
        }

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._independent.sample_independent(study, trial, param_name, param_distribution)

    # -- internals ---------------------------------------------------------------------

    def _has_point(self, trial: FrozenTrial) -> bool:
        return all(name in trial.params for name in self._names)

    def _point(self, trial: FrozenTrial) -> list[Any]:
        return [_to_skopt(self._distributions[n], trial.params[n]) for n in self._names]

    def _tell_new(self, study: Study, trials: Sequence[FrozenTrial]) -> None:
        sign = -1.0 if study.direction is StudyDirection.MAXIMIZE else 1.0
        points: list[list[Any]] = []
        values: list[float] = []
        for t in trials:
            if t.number in self._told or t.state is not TrialState.COMPLETE:
                continue
            self._told.add(t.number)
            if t.value is None or not math.isfinite(t.value) or not self._has_point(t):
                continue
            points.append(self._point(t))
            values.append(sign * float(t.value))
        if points:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._optimizer.tell(points, values)  # one model fit for all of them

    def _ask(self, running: list[list[Any]]) -> list[Any]:
        optimizer = self._optimizer
        if optimizer._n_initial_points > 0 or not optimizer.models:
            # skopt's initial phase: a random point (its own ask would raise when
            # n_initial_points is 0 and nothing was told yet).
            return self._random_point()
        if not running:
            return list(optimizer.ask())
        # Constant liar (skopt's ask(n_points) strategy cl_min): a copy that believes each
        # running trial scored the best value so far, fitted once with all of them.
        liar = self._new_optimizer(int(optimizer.rng.randint(0, np.iinfo(np.int32).max)))
        if hasattr(optimizer, "gains_"):
            liar.gains_ = np.copy(optimizer.gains_)
        lie = float(np.min(optimizer.yi))
        liar.tell([*optimizer.Xi, *running], [*optimizer.yi, *[lie] * len(running)])
        return list(liar.ask())

    def _random_point(self) -> list[Any]:
        return list(self._optimizer.space.rvs(random_state=self._optimizer.rng)[0])
