"""``InProcessSuggestionClient``: one in-memory optuna study per experiment, ask-and-tell.

State lives in memory between calls (never replayed per call); ``restore`` rebuilds it from
the store after a restart. A lock per experiment makes calls thread-safe without one slow
sampler (GP) blocking other experiments. See :mod:`tuner.suggestion.base` for the contract.
"""

from __future__ import annotations

import random
import string
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.study import StudyDirection
from optuna.study import _tell as optuna_tell
from optuna.trial import Trial, TrialState

from tuner.spec.models import Experiment, ObjectiveType
from tuner.suggestion.algorithms import Algorithm, UnknownAlgorithm, get_algorithm
from tuner.suggestion.algorithms._base import UnsupportedAlgorithm
from tuner.suggestion.base import (
    InvalidRequest,
    NotSupported,
    Suggestion,
    SuggestionClient,
    UnknownTrial,
)
from tuner.suggestion.settings import parse_settings
from tuner.suggestion.space import Parameter, SearchSpace, Value
from tuner.types import TrialPhase, TrialResult

# Trial-by-trial INFO lines from optuna would drown the controller's own logs.
optuna.logging.set_verbosity(optuna.logging.WARNING)

_ALPHABET = string.ascii_lowercase + string.digits
_FAILED = (TrialPhase.FAILED, TrialPhase.METRICS_UNAVAILABLE, TrialPhase.KILLED)


def experiment_key(experiment: Experiment) -> str:
    return f"{experiment.metadata.namespace}/{experiment.metadata.name}"


@dataclass(slots=True)
class ExperimentState:
    """One experiment's study and the trial-name bookkeeping around it."""

    experiment: Experiment
    algorithm: Algorithm
    space: SearchSpace
    study: optuna.Study
    distributions: dict[str, BaseDistribution]
    fixed: dict[str, Value]
    sampled: tuple[Parameter, ...] = ()
    # Live optuna trials of every asked-but-not-told trial (report() needs the object).
    pending: dict[str, Trial] = field(default_factory=dict)
    numbers: dict[str, int] = field(default_factory=dict)
    told: set[str] = field(default_factory=set)
    steps: dict[str, set[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Trial-name suffixes need uniqueness, not secrecy: a private PRNG (seeded from the OS,
    # independent of random_state) is ~10x cheaper per name than `secrets`.
    names_rng: random.Random = field(default_factory=random.Random)

    @property
    def known(self) -> int:
        return len(self.numbers)


def _new_state(experiment: Experiment, known: int = 0) -> ExperimentState:
    """A fresh study for ``experiment``, for one that already has ``known`` trials."""
    spec = experiment.spec
    try:
        algorithm = get_algorithm(spec.algorithm.algorithm_name)
    except UnknownAlgorithm as exc:
        raise InvalidRequest(str(exc)) from None
    settings, problems = parse_settings(
        algorithm.name, algorithm.settings, spec.algorithm.algorithm_settings
    )
    try:
        space = SearchSpace.from_specs(spec.parameters)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    problems += algorithm.check_space(settings, space, None)
    if problems:
        raise InvalidRequest("; ".join(f"spec.{path}: {message}" for path, message in problems))
    settings = algorithm.resumed_settings(settings, known)
    try:
        with warnings.catch_warnings():
            # Experimental/deprecation notices of optuna's samplers are not the user's concern.
            warnings.simplefilter("ignore")
            sampler = algorithm.create_sampler(settings, space)
            pruner = algorithm.create_pruner(settings, space) or optuna.pruners.NopPruner()
    except UnsupportedAlgorithm as exc:
        raise NotSupported(str(exc)) from None
    direction = (
        StudyDirection.MAXIMIZE
        if spec.objective.type is ObjectiveType.MAXIMIZE
        else StudyDirection.MINIMIZE
    )
    study = optuna.create_study(sampler=sampler, pruner=pruner, direction=direction)
    fixed = algorithm.fixed_assignments(settings, space)
    distributions = {
        name: dist for name, dist in space.distributions().items() if name not in fixed
    }
    sampled = tuple(p for p in space.parameters if p.name in distributions)
    return ExperimentState(experiment, algorithm, space, study, distributions, fixed, sampled)


def _tell(study: optuna.Study, trial: Trial, value: float | None, state: TrialState) -> None:
    """``study.tell`` without the deep copy of the trial it returns (a tenth of the
    controller's CPU a trial, thrown away here): optuna's own telling function, which
    ``tell`` calls first; ``tell`` itself where an optuna lacks it."""
    tell = getattr(optuna_tell, "_tell_with_warning", None)
    if tell is None:  # pragma: no cover - another optuna's layout
        study.tell(trial, value, state=state)
        return
    tell(study=study, trial=trial, value_or_values=value, state=state, skip_if_finished=False)


def _optuna_state(result: TrialResult) -> tuple[TrialState, float | None]:
    if result.phase is TrialPhase.SUCCEEDED and result.objective_value is not None:
        return TrialState.COMPLETE, float(result.objective_value)
    if result.phase is TrialPhase.EARLY_STOPPED:
        return TrialState.PRUNED, None
    if result.phase is TrialPhase.SUCCEEDED or result.phase in _FAILED:
        return TrialState.FAIL, None
    raise InvalidRequest(f"trial {result.trial_name!r} has not finished (phase {result.phase})")


class InProcessSuggestionClient(SuggestionClient):
    """The default suggestion client: optuna studies in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, ExperimentState] = {}

    # -- state lookup -----------------------------------------------------------------

    def state(self, namespace: str, name: str) -> ExperimentState | None:
        """The experiment's state, or None when this client holds none (fresh or restarted)."""
        with self._lock:
            return self._states.get(f"{namespace}/{name}")

    def _state(self, experiment: Experiment) -> ExperimentState:
        key = experiment_key(experiment)
        with self._lock:
            state = self._states.get(key)
            if state is None:
                state = self._states[key] = _new_state(experiment)
            return state

    # -- SuggestionClient ---------------------------------------------------------------

    def restore(self, experiment: Experiment, trials: Sequence[TrialResult]) -> None:
        state = _new_state(experiment, known=len(trials))
        finished = [t for t in trials if t.phase.finished]
        pending = [t for t in trials if not t.phase.finished]
        frozen = [self._frozen(state, t) for t in [*finished, *pending]]
        state.study.add_trials(frozen)
        state.algorithm.advance(state.study.sampler, state.study, state.distributions, len(trials))
        all_trials = state.study.get_trials(deepcopy=False)
        for result, trial in zip([*finished, *pending], all_trials, strict=True):
            state.numbers[result.trial_name] = trial.number
            state.steps[result.trial_name] = {step for step, _ in result.intermediate}
            if result.phase.finished:
                state.told.add(result.trial_name)
            else:
                # add_trial gives no live Trial; optuna's Trial is built from the study and
                # the storage's trial id, which is what study.ask() does internally.
                state.pending[result.trial_name] = Trial(state.study, trial._trial_id)
        with self._lock:
            self._states[experiment_key(experiment)] = state

    def _frozen(self, state: ExperimentState, result: TrialResult) -> optuna.trial.FrozenTrial:
        if result.trial_name in state.numbers:
            raise InvalidRequest(f"trial {result.trial_name!r} appears twice")
        params: dict[str, Any] = {}
        by_name = state.space.by_name()
        for name in state.distributions:
            if name not in result.assignments:
                raise InvalidRequest(f"trial {result.trial_name!r} has no value for {name!r}")
            param = by_name[name]
            try:
                value = param.typed(result.assignments[name])
            except (TypeError, ValueError):
                value = None
            if value is None or not param.contains(value):
                raise InvalidRequest(
                    f"trial {result.trial_name!r}: {name}={result.assignments[name]!r} "
                    "is outside the search space"
                )
            params[name] = value
        if result.phase.finished:
            trial_state, value = _optuna_state(result)
        else:
            trial_state, value = TrialState.RUNNING, None
        frozen = optuna.trial.create_trial(
            state=trial_state,
            value=value,
            params=params,
            distributions=state.distributions,
            intermediate_values={int(s): float(v) for s, v in result.intermediate},
            user_attrs={"trial_name": result.trial_name},
        )
        # Counted (``known``) only now: a refused trial leaves the state as it was.
        state.numbers[result.trial_name] = -1
        return frozen

    def suggest(self, experiment: Experiment, count: int) -> list[Suggestion]:
        if count < 0:
            raise InvalidRequest("count must be >= 0")
        state = self._state(experiment)
        out: list[Suggestion] = []
        with state.lock:
            remaining = getattr(state.study.sampler, "remaining", None)
            for _ in range(count):
                if remaining is not None and remaining(state.study) <= 0:
                    break
                trial = state.study.ask(state.distributions)
                name = self._new_name(state, experiment.metadata.name)
                state.numbers[name] = trial.number
                state.pending[name] = trial
                state.steps[name] = set()
                params = trial.params  # a deep copy per access: read it once
                assignments = {p.name: p.typed(params[p.name]) for p in state.sampled}
                assignments.update(state.fixed)
                out.append(Suggestion(name, assignments))
        return out

    @staticmethod
    def _new_name(state: ExperimentState, experiment_name: str) -> str:
        while True:
            suffix = "".join(state.names_rng.choices(_ALPHABET, k=8))
            name = f"{experiment_name}-{suffix}"
            if name not in state.numbers:
                return name

    def report(self, experiment: Experiment, result: TrialResult) -> None:
        state = self._state(experiment)
        with state.lock:
            if result.trial_name in state.told:
                return  # told already (a retry, or restored after a restart)
            trial = state.pending.get(result.trial_name)
            if trial is None:
                # A finished trial this study never asked (e.g. created before a restart
                # without restore): add it as history rather than lose it.
                if not result.phase.finished:
                    raise InvalidRequest(f"trial {result.trial_name!r} has not finished")
                state.study.add_trial(self._frozen(state, result))
                state.numbers[result.trial_name] = len(state.study.get_trials(deepcopy=False)) - 1
                state.told.add(result.trial_name)
                return
            trial_state, value = _optuna_state(result)
            steps = state.steps.setdefault(result.trial_name, set())
            for step, v in result.intermediate:
                if int(step) not in steps:
                    trial.report(float(v), int(step))
                    steps.add(int(step))
            _tell(state.study, trial, value, trial_state)
            del state.pending[result.trial_name]
            state.told.add(result.trial_name)

    def report_intermediate(
        self, experiment: Experiment, trial_name: str, step: int, value: float
    ) -> bool:
        state = self._state(experiment)
        with state.lock:
            if trial_name in state.told:
                return False
            trial = state.pending.get(trial_name)
            if trial is None:
                raise UnknownTrial(f"unknown trial {trial_name!r}")
            steps = state.steps.setdefault(trial_name, set())
            if step in steps:
                return False  # the same observation streamed twice
            steps.add(step)
            trial.report(float(value), int(step))
            if isinstance(state.study.pruner, optuna.pruners.NopPruner):
                return False
            return bool(trial.should_prune())

    def close(self, namespace: str, name: str) -> None:
        with self._lock:
            self._states.pop(f"{namespace}/{name}", None)

    # -- introspection used by the HTTP service and tests --------------------------------

    def counts(self, namespace: str, name: str) -> tuple[int, int] | None:
        """``(known, told)`` trial counts of the experiment, or None without state."""
        state = self.state(namespace, name)
        if state is None:
            return None
        with state.lock:
            return state.known, len(state.told)
