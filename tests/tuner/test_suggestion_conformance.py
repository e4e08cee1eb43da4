"""Conformance suite: every runnable algorithm in the registry keeps the SuggestionClient
contract (space, types, seeding, reporting, restore). A new algorithm is tested by adding
its settings to ``SETTINGS``."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tuner.spec.models import Experiment, ParameterType
from tuner.suggestion import ALGORITHMS, InProcessSuggestionClient, Suggestion
from tuner.suggestion.space import SearchSpace
from tuner.types import TrialPhase, TrialResult

# Settings that keep each algorithm quick (the GP fits after 2 random trials, not 10).
SETTINGS: dict[str, dict[str, str]] = {
    "random": {},
    "grid": {},
    "tpe": {"n_startup_trials": "2"},
    "multivariate-tpe": {"n_startup_trials": "2"},
    "cmaes": {"sigma": "0.3"},
    "bayesianoptimization": {"n_initial_points": "2"},
    "sobol": {},
    "hyperband": {"resource_name": "epochs", "r_l": "9", "eta": "3"},
}
RUNNABLE = sorted(name for name, cls in ALGORITHMS.items() if cls.supported)

PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "x",
        "parameterType": "double",
        "feasibleSpace": {"min": "0", "max": "1", "step": "0.25"},
    },
    {
        "name": "lr",
        "parameterType": "double",
        "feasibleSpace": {"min": "0.01", "max": "1", "step": "0.33", "distribution": "logUniform"},
    },
    {"name": "n", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "7", "step": "2"}},
    {
        "name": "epochs",
        "parameterType": "int",
        "feasibleSpace": {"min": "1", "max": "8", "distribution": "logUniform"},
    },
    {"name": "c", "parameterType": "categorical", "feasibleSpace": {"list": ["a", "b"]}},
    {"name": "d", "parameterType": "discrete", "feasibleSpace": {"list": ["1", "2", "4"]}},
]


def make_experiment(
    algorithm: str,
    settings: dict[str, str] | None = None,
    parameters: list[dict[str, Any]] | None = None,
    name: str = "exp",
    direction: str = "minimize",
) -> Experiment:
    settings = SETTINGS.get(algorithm, {}) if settings is None else settings
    return Experiment.model_validate(
        {
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {
                "objective": {"type": direction, "objectiveMetricName": "loss"},
                "algorithm": {
                    "algorithmName": algorithm,
                    "algorithmSettings": [{"name": k, "value": v} for k, v in settings.items()],
                },
                "parameters": parameters or PARAMETERS,
            },
        }
    )


def objective(a: dict[str, Any]) -> float:
    return (float(a["x"]) - 0.5) ** 2 + math.log(float(a["lr"])) ** 2 / 10 + float(a["n"]) / 10


def run(
    client: InProcessSuggestionClient, experiment: Experiment, total: int, batch: int = 2
) -> list[Suggestion]:
    """Ask in batches and report each batch Succeeded; returns every suggestion."""
    out: list[Suggestion] = []
    while len(out) < total:
        got = client.suggest(experiment, min(batch, total - len(out)))
        assert got, "suggestions ended early"
        for s in got:
            client.report(
                experiment,
                TrialResult(
                    s.trial_name, s.assignments, TrialPhase.SUCCEEDED, objective(s.assignments)
                ),
            )
        out.extend(got)
    return out


@pytest.fixture(params=RUNNABLE)
def algorithm(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_every_registered_algorithm_is_covered() -> None:
    assert set(RUNNABLE) == set(SETTINGS)


def test_suggestions_lie_in_the_space_and_are_typed(algorithm: str) -> None:
    experiment = make_experiment(algorithm)
    space = SearchSpace.from_specs(experiment.spec.parameters)
    suggestions = run(InProcessSuggestionClient(), experiment, total=6)
    names = [s.trial_name for s in suggestions]
    assert len(set(names)) == len(names)
    expected_type = {
        ParameterType.DOUBLE: float,
        ParameterType.INT: int,
        ParameterType.CATEGORICAL: str,
        ParameterType.DISCRETE: int,  # the list holds only integers
    }
    for s in suggestions:
        assert s.trial_name.startswith("exp-")
        suffix = s.trial_name.removeprefix("exp-")
        assert len(suffix) == 8 and suffix.isalnum() and suffix == suffix.lower()
        assert set(s.assignments) == {p.name for p in space.parameters}
        for p in space.parameters:
            value = s.assignments[p.name]
            assert type(value) is expected_type[p.type], (p.name, value)
            assert p.contains(value), (p.name, value)
        # step 0.25 / step 2 honoured exactly
        assert s.assignments["x"] in (0.0, 0.25, 0.5, 0.75, 1.0)
        assert s.assignments["n"] in (1, 3, 5, 7)
        assert 0.01 <= s.assignments["lr"] <= 1.0


def test_random_state_makes_suggestions_reproducible(algorithm: str) -> None:
    settings = {**SETTINGS[algorithm], "random_state": "7"}
    first = run(InProcessSuggestionClient(), make_experiment(algorithm, settings), total=5)
    second = run(InProcessSuggestionClient(), make_experiment(algorithm, settings), total=5)
    assert [s.assignments for s in first] == [s.assignments for s in second]


def test_reports_map_phases_to_optuna_states(algorithm: str) -> None:
    from optuna.trial import TrialState

    client = InProcessSuggestionClient()
    experiment = make_experiment(algorithm)
    s = client.suggest(experiment, 5)
    assert len(s) == 5
    assert client.counts("ns", "exp") == (5, 0)
    phases = [
        (TrialPhase.SUCCEEDED, 1.5),
        (TrialPhase.FAILED, None),
        (TrialPhase.METRICS_UNAVAILABLE, None),
        (TrialPhase.EARLY_STOPPED, None),
    ]
    for suggestion, (phase, value) in zip(s, phases, strict=False):
        result = TrialResult(suggestion.trial_name, suggestion.assignments, phase, value)
        if phase is TrialPhase.EARLY_STOPPED:
            result.intermediate = [(0, 3.0), (1, 2.0)]
        client.report(experiment, result)
    # a repeated report is ignored, not told twice
    client.report(
        experiment, TrialResult(s[0].trial_name, s[0].assignments, TrialPhase.SUCCEEDED, 9.0)
    )
    assert client.counts("ns", "exp") == (5, 4)
    state = client.state("ns", "exp")
    assert state is not None
    trials = state.study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [
        TrialState.COMPLETE,
        TrialState.FAIL,
        TrialState.FAIL,
        TrialState.PRUNED,
        TrialState.RUNNING,
    ]
    assert trials[0].value == 1.5
    assert trials[3].value == 2.0  # a pruned trial keeps its last intermediate value
    with pytest.raises(Exception, match="has not finished"):
        client.report(
            experiment, TrialResult(s[4].trial_name, s[4].assignments, TrialPhase.RUNNING)
        )


def test_restore_rebuilds_an_equivalent_state(algorithm: str) -> None:
    experiment = make_experiment(algorithm)
    original = InProcessSuggestionClient()
    done = run(original, experiment, total=4)
    pending = original.suggest(experiment, 2)
    history = [
        TrialResult(s.trial_name, s.assignments, TrialPhase.SUCCEEDED, objective(s.assignments))
        for s in done
    ] + [TrialResult(s.trial_name, s.assignments, TrialPhase.RUNNING) for s in pending]

    restored = InProcessSuggestionClient()
    restored.restore(experiment, history)
    assert restored.counts("ns", "exp") == original.counts("ns", "exp") == (6, 4)
    a, b = original.state("ns", "exp"), restored.state("ns", "exp")
    assert a is not None and b is not None
    ta, tb = a.study.get_trials(deepcopy=False), b.study.get_trials(deepcopy=False)
    assert [(t.params, t.state, t.value) for t in ta] == [(t.params, t.state, t.value) for t in tb]

    # pending trials finish normally after the restore; new names never collide
    for s in pending:
        restored.report(
            experiment, TrialResult(s.trial_name, s.assignments, TrialPhase.SUCCEEDED, 0.1)
        )
    more = restored.suggest(experiment, 2)
    assert len(more) == 2
    assert not {s.trial_name for s in more} & {t.trial_name for t in history}
    assert restored.counts("ns", "exp") == (8, 6)


def _history(suggestions: list[Suggestion]) -> list[TrialResult]:
    return [
        TrialResult(s.trial_name, s.assignments, TrialPhase.SUCCEEDED, objective(s.assignments))
        for s in suggestions
    ]


def test_a_resumed_seeded_sampler_does_not_replay_its_first_proposals(algorithm: str) -> None:
    # A seeded sampler made afresh on resume used to replay its stream: the resumed run's
    # trials repeated the first run's, assignment for assignment.
    # Without the quick settings: tpe and the GP sample at random for their first 10 trials.
    quick = ("n_startup_trials", "n_initial_points")
    settings = {k: v for k, v in SETTINGS[algorithm].items() if k not in quick}
    experiment = make_experiment(algorithm, {**settings, "random_state": "5"})
    first = run(InProcessSuggestionClient(), experiment, total=3)
    resumed = []
    for _ in range(2):
        client = InProcessSuggestionClient()
        client.restore(experiment, _history(first))
        resumed.append(run(client, experiment, total=3))
    assert [s.assignments for s in resumed[0]] != [s.assignments for s in first]
    # still reproducible: the same history resumes the same way
    assert [s.assignments for s in resumed[0]] == [s.assignments for s in resumed[1]]


@pytest.mark.parametrize("settings", [{}, {"random_state": "5"}])
def test_a_resumed_sobol_sequence_continues_where_it_stopped(settings: dict[str, str]) -> None:
    experiment = make_experiment("sobol", settings)
    original = InProcessSuggestionClient()
    first = run(original, experiment, total=4)
    client = InProcessSuggestionClient()
    client.restore(experiment, _history(first))
    continued = [s.assignments for s in run(client, experiment, total=3)]
    assert continued == [s.assignments for s in run(original, experiment, total=3)]


def test_restore_rejects_assignments_outside_the_space(algorithm: str) -> None:
    bad = {"x": 0.3, "lr": 0.5, "n": 2, "epochs": 2, "c": "z", "d": 3}
    with pytest.raises(Exception, match="outside the search space"):
        InProcessSuggestionClient().restore(
            make_experiment(algorithm),
            [TrialResult("exp-aaaaaaaa", bad, TrialPhase.SUCCEEDED, 1.0)],
        )


def test_close_forgets_the_experiment_in_its_namespace_only(algorithm: str) -> None:
    client = InProcessSuggestionClient()
    client.suggest(make_experiment(algorithm), 1)
    other = make_experiment(algorithm).model_copy(deep=True)
    other.metadata.namespace = "team-b"  # same name, another user's namespace
    client.suggest(other, 2)
    assert client.counts("ns", "exp") == (1, 0)
    client.close("ns", "exp")
    assert client.counts("ns", "exp") is None
    assert client.counts("team-b", "exp") == (2, 0)
