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
this process.

**The store.** The searcher records the experiment in hyperflow's store (the one the CLI,
the server and the UI read: ``HYPERFLOW_HOME`` / ``HYPERFLOW_DATABASE_URL``, or
``database_url=``) as an experiment named ``name`` (default ``ray-tune-<date>-<time>``)
with backend ``ray-tune``: each Tune trial becomes a trial with its parameters
(Katib's values), Running when suggested, then Succeeded / Failed (Tune reported an
error) / MetricsUnavailable (no ``metric`` in its results); every result Tune reports
adds an observation of ``metric`` and of the other numbers the trainable reported (not
Tune's own bookkeeping such as ``time_this_iter_s``) at step ``training_iteration``.
The objective's ``metricStrategies`` is ``latest`` (what Tune's ``get_best_result`` ranks
by, its default ``scope="last"``). The experiment's ``maxTrialCount`` is
``max_trial_count`` (unset by default); it ends Succeeded when Tune's ``num_samples``
trials (or ``max_trial_count``, if fewer) have ended or the algorithm has no more
suggestions (Failed if no trial succeeded).
``hyperflow experiment get <name>`` then shows the best trial. ``record=False`` keeps
the store out of it.

**Resuming.** ``save``/``restore`` (Tune's searcher checkpoint, used by
``Tuner.restore``) keep the told results and the trials still running: a restored
searcher rebuilds the algorithm's state from the told results (as hyperflow's controller
does after a restart), takes up the stored experiment again, and the trials Tune runs
again get their observations reset to what they had reported at the checkpoint (a trial
that restarts from an earlier ``training_iteration`` replaces its later observations).

Only :mod:`tuner.backends.ray` imports ``ray`` (an import-linter contract): the class
deriving from ``ray.tune.search.Searcher`` and the conversion of Tune's domains live
there, and are imported from it lazily; this module is the searcher's work without Ray.
"""

from __future__ import annotations

import math
import pickle
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tuner.sdk import SearchSpace, build_experiment
from tuner.spec.models import Experiment
from tuner.suggestion import SuggestionClient
from tuner.types import ExperimentReason, Observation, TrialPhase, TrialResult

if TYPE_CHECKING:
    from tuner.backends.ray import KatibSearcher, katib_parameters
    from tuner.integrations.recorder import ExperimentRecorder

__all__ = ["KatibSearch", "KatibSearcher", "katib_parameters"]

FINISHED = "FINISHED"  # ray.tune.search.Searcher.FINISHED

# Keys Ray Tune adds to every result (ray.tune.result's AUTO_RESULT_KEYS and friends):
# not the trainable's metrics.
_TUNE_KEYS = frozenset(
    {
        "training_iteration",
        "time_this_iter_s",
        "time_total_s",
        "timestamp",
        "time_since_restore",
        "iterations_since_restore",
        "timesteps_since_restore",
        "timesteps_total",
        "episodes_total",
        "pid",
        "date",
        "hostname",
        "node_ip",
        "done",
        "trial_id",
        "experiment_id",
        "experiment_tag",
        "should_checkpoint",
        "checkpoint_dir_name",
    }
)


def __getattr__(name: str) -> Any:
    # The Searcher subclass derives from a ray class: it lives in the one module that
    # imports ray, and only loads (with ray) when asked for.
    if name in ("KatibSearcher", "katib_parameters"):
        from tuner.backends import ray as ray_adapter

        return getattr(ray_adapter, name)
    raise AttributeError(f"module 'tuner.integrations.ray_tune' has no attribute {name!r}")


class KatibSearch:
    """The work of :class:`KatibSearcher` without Ray (module docstring): mixed into the
    ``ray.tune.search.Searcher`` subclass, which supplies ``_katib_parameters`` (Tune's
    domains to Katib parameters)."""

    _metric: str | None
    _mode: str | None

    def __init__(
        self,
        parameters: dict[str, SearchSpace] | None = None,
        *,
        metric: str | None = None,
        mode: str | None = None,
        algorithm_name: str = "random",
        algorithm_settings: dict[str, Any] | None = None,
        name: str | None = None,
        namespace: str = "default",
        max_trial_count: int | None = None,
        suggestion_url: str | None = None,
        record: bool = True,
        database_url: str | None = None,
        home: str | None = None,
    ) -> None:
        super().__init__(metric=metric, mode=mode)  # type: ignore[call-arg]  # Searcher's
        self._parameters = parameters
        self._choices: dict[str, list[Any]] = {}
        self._constants: dict[str, Any] = {}
        self._algorithm_name = algorithm_name
        self._algorithm_settings = dict(algorithm_settings or {})
        self._name = name or f"{time.strftime('ray-tune-%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
        self._namespace = namespace
        self._max_trial_count = max_trial_count
        self._samples: int | None = None  # Tune's num_samples
        self._suggestion_url = suggestion_url
        self._record = record
        self._database_url = database_url
        self._home = home
        self._experiment: Experiment | None = None
        self._client: SuggestionClient | None = None
        self._recorder: ExperimentRecorder | None = None
        # Tune's trial id -> (trial name, assignments, objective history by step)
        self._live: dict[str, tuple[str, dict[str, Any], list[tuple[int, float]]]] = {}
        # Everything each live trial reported, as observations (for the store on restore).
        self._reported: dict[str, list[Observation]] = {}
        self._told: list[TrialResult] = []
        self._finished = False
        self._ended = False
        self._restored = False
        if parameters is not None and metric and mode:
            self._build()

    @property
    def experiment_name(self) -> str:
        """The experiment's name in hyperflow's store."""
        return self._name

    def _katib_parameters(
        self, config: dict[str, Any]
    ) -> tuple[dict[str, SearchSpace], dict[str, list[Any]]]:
        raise NotImplementedError  # the Searcher subclass converts Tune's domains

    # -- Searcher ------------------------------------------------------------------------

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        samples = spec.get("num_samples")
        if isinstance(samples, int) and samples > 0:
            self._samples = samples
        if self._experiment is not None:
            return False
        self._metric = metric or self._metric
        self._mode = mode or self._mode
        if self._parameters is None:
            self._parameters, self._choices = self._katib_parameters(config)
        self._constants = {k: v for k, v in config.items() if k not in self._parameters}
        self._build()
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self._finished:
            return FINISHED  # type: ignore[return-value]  # Tune's own sentinel
        assert self._experiment is not None, (
            "KatibSearcher needs metric, mode and a search space: pass them to "
            "tune.TuneConfig / param_space or to KatibSearcher"
        )
        client = self._ensure()
        suggestions = client.suggest(self._experiment, 1)
        if not suggestions:
            self._finished = True
            self._maybe_end()
            return FINISHED  # type: ignore[return-value]
        suggestion = suggestions[0]
        assignments = dict(suggestion.assignments)
        self._live[trial_id] = (suggestion.trial_name, assignments, [])
        self._reported[trial_id] = []
        if self._recorder is not None:
            self._recorder.trial_started(suggestion.trial_name, assignments)
        config = dict(self._constants)
        for name, value in assignments.items():
            config[name] = self._choices[name][int(value)] if name in self._choices else value
        return config

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self._take_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        live = self._live.get(trial_id)
        if live is None or self._experiment is None:
            return
        client = self._ensure()
        if result is not None and not error:
            self._take_result(trial_id, result)  # the last result skips on_trial_result
        self._live.pop(trial_id)
        self._reported.pop(trial_id, None)
        trial_name, assignments, history = live
        if self._recorder is not None:
            told = self._recorder.trial_ended(
                trial_name, error="Ray Tune reported an error" if error else None
            )
        else:
            value = None if error or result is None else _number(result.get(self._metric or ""))
            told = TrialResult(
                trial_name=trial_name,
                assignments=assignments,
                phase=TrialPhase.SUCCEEDED if value is not None else TrialPhase.FAILED,
                objective_value=value,
                intermediate=history,
            )
        client.report(self._experiment, told)
        self._told.append(told)
        self._maybe_end()

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
            "name": self._name,
            "namespace": self._namespace,
            "max_trial_count": self._max_trial_count,
            "samples": self._samples,
            "live": self._live,
            "reported": self._reported,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self._metric, self._mode = state["metric"], state["mode"]
        self._parameters, self._choices = state["parameters"], state["choices"]
        self._constants, self._finished = state["constants"], state["finished"]
        self._name = state.get("name", self._name)
        self._namespace = state.get("namespace", self._namespace)
        self._max_trial_count = state.get("max_trial_count", self._max_trial_count)
        self._samples = state.get("samples", self._samples)
        self._live = dict(state.get("live", {}))
        self._reported = {k: list(v) for k, v in state.get("reported", {}).items()}
        self._told = list(state["told"])
        self._drop_handles()
        self._restored = True
        self._build()

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles the searcher with the Tuner (tuner.pkl): no store or client in it.
        state = self.__dict__.copy()
        state["_client"] = state["_recorder"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    # -- internals -----------------------------------------------------------------------

    def _build(self) -> None:
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
            # What Tune's get_best_result ranks trials by (scope="last").
            metric_strategies={self._metric: "latest"},
            algorithm_name=self._algorithm_name,
            algorithm_settings=self._algorithm_settings,
            max_trial_count=self._max_trial_count,
            parallel_trial_count=1,
        )

    def _ensure(self) -> SuggestionClient:
        """The suggestion client (and the store's record), made on first use: a searcher
        made, pickled and restored by Tune opens nothing until it searches."""
        assert self._experiment is not None
        if self._client is None:
            self._client = _client(self._suggestion_url, lambda _name: list(self._told))
            self._client.restore(self._experiment, self._told)
        if self._record and not self._ended and self._recorder is None:
            self._recorder = self._open_record()
        return self._client

    def _open_record(self) -> ExperimentRecorder:
        from tuner.integrations.recorder import ExperimentRecorder
        from tuner.settings import TunerSettings

        overrides: dict[str, Any] = {}
        if self._database_url:
            overrides["database_url"] = self._database_url
        if self._home:
            overrides["home"] = self._home
        assert self._experiment is not None
        recorder = ExperimentRecorder(
            self._experiment, backend="ray-tune", settings=TunerSettings(**overrides)
        )
        recorder.open(resume=self._restored)
        for trial_id, (trial_name, _assignments, _history) in self._live.items():
            recorder.trial_restarted(trial_name, self._reported.get(trial_id, []))
        return recorder

    def _take_result(self, trial_id: str, result: dict[str, Any]) -> None:
        live = self._live.get(trial_id)
        if live is None:
            return
        trial_name, _assignments, history = live
        reported = self._reported.setdefault(trial_id, [])
        step_value = result.get("training_iteration")
        step = step_value if isinstance(step_value, int) else len(history) + 1
        if reported and reported[-1].step is not None and step <= reported[-1].step:
            if step == reported[-1].step:
                return  # the same result again (Tune hands the last one to complete too)
            # The trial runs again from an earlier iteration (restored, or retried).
            reported[:] = [o for o in reported if o.step is not None and o.step < step]
            history[:] = [(s, v) for s, v in history if s < step]
            if self._recorder is not None:
                self._recorder.trial_restarted(trial_name, list(reported))
        now = time.time()
        new = [
            Observation(key, number, step, now)
            for key, value in result.items()
            if key not in _TUNE_KEYS
            and (key == self._metric or not key.startswith(("config/", "_")))
            and (number := _number(value)) is not None
        ]
        value = _number(result.get(self._metric or ""))
        if value is not None:
            history.append((step, value))
        reported.extend(new)
        if self._recorder is not None:
            self._ensure()
            self._recorder.observe(trial_name, new)

    def _maybe_end(self) -> None:
        """End the stored experiment when Tune will run no more trials of it."""
        recorder = self._recorder
        if recorder is None or self._ended or self._live:
            return
        budgets = [b for b in (self._max_trial_count, self._samples) if b is not None]
        if budgets and recorder.completed() >= min(budgets):
            reason = ExperimentReason.MAX_TRIALS_REACHED
            message = "Experiment has succeeded because max trial count has reached"
        elif self._finished:
            reason = ExperimentReason.SUGGESTION_END_REACHED
            message = "Experiment has succeeded because suggestion service has reached the end"
        else:
            return
        recorder.complete(reason, message)
        recorder.close()
        self._recorder = None
        self._ended = True  # nothing more to write

    def _drop_handles(self) -> None:
        if self._recorder is not None:
            self._recorder.close()
        self._client = self._recorder = None
        self._ended = False


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
