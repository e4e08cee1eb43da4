"""Ray Tune interop: :class:`KatibSearcher`, a ``ray.tune.search.Searcher`` backed by
hyperflow's suggestion service.

A Ray Tune user keeps ``Tuner.fit()`` and gains Katib's algorithms (any
``algorithmName`` and ``algorithmSettings`` hyperflow implements: random, grid, tpe,
multivariate-tpe, cmaes, bayesianoptimization, sobol, hyperband...)::

    from ray import tune
    from tuner.integrations.ray_tune import KatibSearcher

    tuner = tune.Tuner(
        train,
        param_space={"lr": tune.loguniform(1e-4, 1e-1), "layers": tune.randint(1, 5)},
        tune_config=tune.TuneConfig(
            metric="loss", mode="min", num_samples=20,
            search_alg=KatibSearcher(algorithm_name="tpe", algorithm_settings={"n_startup_trials": 5}),
        ),
    )
    tuner.fit()

The search space comes from Tune's ``param_space`` (top-level keys): ``tune.uniform`` /
``tune.quniform`` / ``tune.loguniform`` become ``double`` parameters (step, logUniform),
``tune.randint`` / ``tune.qrandint`` / ``tune.lograndint`` ``int`` (Tune's exclusive upper
bound made inclusive, as Ray's own OptunaSearch does), ``tune.choice`` ``categorical``
(the original values are handed back, not Katib's strings). Constants pass through.
Or give Katib parameters directly: ``KatibSearcher(parameters={"lr":
search.double(min=1e-4, max=0.1)})`` (``tuner.sdk.search``).

Each ``suggest`` asks the service for one assignment; each completed trial is told back
with its final ``metric`` value (and the values it reported on the way, for algorithms
that use intermediate values); an errored trial, or one without the metric, is told as
failed. When the algorithm has no more suggestions (a finished grid, or
``max_trial_count``), ``suggest`` returns ``Searcher.FINISHED``. ``suggestion_url``
uses a suggestion service over HTTP (``hyperflow suggestion serve``) instead of one in
this process. ``save``/``restore`` keep the told results: a restored searcher rebuilds
the algorithm's state from them, as hyperflow's controller does after a restart.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable, Sequence
from typing import Any

from ray.tune.search import Searcher
from ray.tune.search.sample import Categorical, Domain, Float, Integer, LogUniform, Quantized

from tuner.sdk import SearchSpace, build_experiment, search
from tuner.spec.models import Experiment
from tuner.suggestion import SuggestionClient
from tuner.types import TrialPhase, TrialResult

__all__ = ["KatibSearcher", "katib_parameters"]


def katib_parameters(config: dict[str, Any]) -> tuple[dict[str, SearchSpace], dict[str, list[Any]]]:
    """Katib parameters for Tune's ``param_space``, and each categorical's original values.

    Raises ``ValueError`` naming a key whose domain has no Katib equivalent.
    """
    parameters: dict[str, SearchSpace] = {}
    choices: dict[str, list[Any]] = {}
    for key, domain in config.items():
        if isinstance(domain, dict) and any(isinstance(v, Domain) for v in domain.values()):
            raise ValueError(f"param_space[{key!r}]: nested search spaces are not supported")
        if not isinstance(domain, Domain):
            continue  # a constant
        sampler = domain.get_sampler()
        step = None
        if isinstance(sampler, Quantized):
            step, sampler = sampler.q, sampler.sampler
        log = isinstance(sampler, LogUniform)
        distribution = "logUniform" if log else None
        if isinstance(domain, Float):
            parameters[key] = search.double(
                min=domain.lower, max=domain.upper, step=step, distribution=distribution
            )
        elif isinstance(domain, Integer):
            upper = domain.upper if step else domain.upper - 1
            parameters[key] = search.int(
                min=domain.lower,
                max=upper,
                step=int(step) if step else None,
                distribution=distribution,
            )
        elif isinstance(domain, Categorical):
            values = list(domain.categories)
            choices[key] = values
            parameters[key] = search.categorical([str(i) for i in range(len(values))])
        else:
            raise ValueError(
                f"param_space[{key!r}]: {type(domain).__name__} has no Katib parameter type"
            )
    return parameters, choices


class KatibSearcher(Searcher):
    """A Ray Tune searcher asking hyperflow's suggestion service (module docstring)."""

    def __init__(
        self,
        parameters: dict[str, SearchSpace] | None = None,
        *,
        metric: str | None = None,
        mode: str | None = None,
        algorithm_name: str = "random",
        algorithm_settings: dict[str, Any] | None = None,
        name: str = "ray-tune",
        namespace: str = "default",
        max_trial_count: int | None = None,
        suggestion_url: str | None = None,
    ) -> None:
        super().__init__(metric=metric, mode=mode)
        self._parameters = parameters
        self._choices: dict[str, list[Any]] = {}
        self._constants: dict[str, Any] = {}
        self._algorithm_name = algorithm_name
        self._algorithm_settings = dict(algorithm_settings or {})
        self._name = name
        self._namespace = namespace
        self._max_trial_count = max_trial_count
        self._suggestion_url = suggestion_url
        self._experiment: Experiment | None = None
        self._client: SuggestionClient | None = None
        self._live: dict[str, tuple[str, dict[str, Any], list[tuple[int, float]]]] = {}
        self._told: list[TrialResult] = []
        self._finished = False
        if parameters is not None and metric and mode:
            self._setup()

    # -- Searcher ------------------------------------------------------------------------

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        if self._experiment is not None:
            return False
        self._metric = metric or self._metric
        self._mode = mode or self._mode
        if self._parameters is None:
            self._parameters, self._choices = katib_parameters(config)
        self._constants = {k: v for k, v in config.items() if k not in self._parameters}
        self._setup()
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self._finished:
            return Searcher.FINISHED  # type: ignore[return-value]  # Tune's own sentinel
        assert self._experiment is not None and self._client is not None, (
            "KatibSearcher needs metric, mode and a search space: pass them to "
            "tune.TuneConfig / param_space or to KatibSearcher"
        )
        suggestions = self._client.suggest(self._experiment, 1)
        if not suggestions:
            self._finished = True
            return Searcher.FINISHED  # type: ignore[return-value]
        suggestion = suggestions[0]
        assignments = dict(suggestion.assignments)
        self._live[trial_id] = (suggestion.trial_name, assignments, [])
        config = dict(self._constants)
        for name, value in assignments.items():
            config[name] = self._choices[name][int(value)] if name in self._choices else value
        return config

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        live = self._live.get(trial_id)
        value = _number(result.get(self._metric or "")) if live is not None else None
        if live is not None and value is not None:
            history = live[2]
            step = result.get("training_iteration")
            history.append((int(step) if isinstance(step, int) else len(history), value))

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        live = self._live.pop(trial_id, None)
        if live is None or self._experiment is None or self._client is None:
            return
        trial_name, assignments, history = live
        value = None if error or result is None else _number(result.get(self._metric or ""))
        told = TrialResult(
            trial_name=trial_name,
            assignments=assignments,
            phase=TrialPhase.SUCCEEDED if value is not None else TrialPhase.FAILED,
            objective_value=value,
            intermediate=history,
        )
        self._client.report(self._experiment, told)
        self._told.append(told)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.get_state(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.set_state(pickle.load(f))

    def get_state(self) -> dict[str, Any]:
        return {
            "metric": self._metric,
            "mode": self._mode,
            "parameters": self._parameters,
            "choices": self._choices,
            "constants": self._constants,
            "told": self._told,
            "finished": self._finished,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self._metric, self._mode = state["metric"], state["mode"]
        self._parameters, self._choices = state["parameters"], state["choices"]
        self._constants, self._finished = state["constants"], state["finished"]
        self._experiment = None
        self._setup(state["told"])

    # -- internals -----------------------------------------------------------------------

    def _setup(self, told: Sequence[TrialResult] = ()) -> None:
        if not self._metric or not self._mode or self._parameters is None:
            raise ValueError("KatibSearcher needs metric, mode and parameters (or param_space)")
        if not isinstance(self._metric, str) or self._mode not in ("min", "max"):
            raise ValueError("KatibSearcher: metric must be one name and mode 'min' or 'max'")
        self._experiment = build_experiment(
            name=self._name,
            namespace=self._namespace,
            parameters=self._parameters,
            objective_metric_name=self._metric,
            objective_type="minimize" if self._mode == "min" else "maximize",
            algorithm_name=self._algorithm_name,
            algorithm_settings=self._algorithm_settings,
            max_trial_count=self._max_trial_count,
            parallel_trial_count=1,
        )
        self._told = list(told)
        self._client = _client(self._suggestion_url, lambda _name: list(self._told))
        self._client.restore(self._experiment, self._told)


def _client(url: str | None, history: Callable[[str], list[TrialResult]]) -> SuggestionClient:
    if url:
        from tuner.suggestion import HttpSuggestionClient

        # A restarted service rebuilds the experiment's state from what was told.
        return HttpSuggestionClient(url, history=history)
    from tuner.suggestion import InProcessSuggestionClient

    return InProcessSuggestionClient()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None
