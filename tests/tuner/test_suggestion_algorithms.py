"""Algorithm-specific behaviour: grid exhaustion, hyperband pruning, pbt refusal, space parsing."""

from __future__ import annotations

import itertools

import pytest

from tests.tuner.test_suggestion_conformance import make_experiment
from tuner.spec.models import ParameterSpec
from tuner.suggestion import InProcessSuggestionClient
from tuner.suggestion.base import InvalidRequest, NotSupported, UnknownTrial
from tuner.suggestion.space import SearchSpace
from tuner.types import TrialPhase, TrialResult

GRID = [
    {
        "name": "x",
        "parameterType": "double",
        "feasibleSpace": {"min": "0.1", "max": "0.3", "step": "0.1"},
    },
    {"name": "n", "parameterType": "int", "feasibleSpace": {"min": "2", "max": "6", "step": "2"}},
    {"name": "c", "parameterType": "categorical", "feasibleSpace": {"list": ["a", "b"]}},
]
ALL_CELLS = set(itertools.product([0.1, 0.2, 0.3], [2, 4, 6], ["a", "b"]))


def cell(assignments: dict[str, object]) -> tuple[object, ...]:
    return (assignments["x"], assignments["n"], assignments["c"])


def test_grid_covers_every_combination_once_then_ends() -> None:
    client = InProcessSuggestionClient()
    experiment = make_experiment("grid", parameters=GRID)
    seen = [cell(s.assignments) for s in client.suggest(experiment, 5)]  # 5 pending, none told
    while batch := client.suggest(experiment, 4):
        seen += [cell(s.assignments) for s in batch]
    assert len(seen) == len(ALL_CELLS) == 18
    assert set(seen) == ALL_CELLS
    assert client.suggest(experiment, 3) == []


def test_grid_after_restore_never_repeats_finished_or_pending_cells() -> None:
    experiment = make_experiment("grid", parameters=GRID)
    first = InProcessSuggestionClient()
    given = first.suggest(experiment, 7)
    history = [
        TrialResult(s.trial_name, s.assignments, TrialPhase.SUCCEEDED, 1.0) for s in given[:4]
    ] + [TrialResult(s.trial_name, s.assignments, TrialPhase.RUNNING) for s in given[4:]]
    restored = InProcessSuggestionClient()
    restored.restore(experiment, history)
    rest = restored.suggest(experiment, 100)
    assert len(rest) == 11
    cells = [cell(s.assignments) for s in [*given, *rest]]
    assert sorted(cells, key=repr) == sorted(ALL_CELLS, key=repr)


def test_grid_partial_batch_signals_the_end() -> None:
    client = InProcessSuggestionClient()
    experiment = make_experiment("grid", parameters=GRID)
    assert len(client.suggest(experiment, 16)) == 16
    assert len(client.suggest(experiment, 5)) == 2  # fewer than asked: the space is exhausted


def test_hyperband_prunes_trials_that_fall_behind() -> None:
    client = InProcessSuggestionClient()
    experiment = make_experiment("hyperband")  # r_l 9, eta 3, resource "epochs" (max 8)
    pruned = 0
    for i in range(30):
        [s] = client.suggest(experiment, 1)
        assert s.assignments["epochs"] == 8  # the resource parameter gets the full budget
        stopped_at = None
        for step in range(1, 10):
            # later trials are worse at every step: the pruner must stop some of them
            if client.report_intermediate(experiment, s.trial_name, step, float(i) + 1 / step):
                stopped_at = step
                break
        if stopped_at is None:
            client.report(
                experiment, TrialResult(s.trial_name, s.assignments, TrialPhase.SUCCEEDED, float(i))
            )
        else:
            pruned += 1
            client.report(
                experiment, TrialResult(s.trial_name, s.assignments, TrialPhase.EARLY_STOPPED)
            )
    assert pruned >= 10


def test_algorithms_without_a_pruner_never_stop_trials() -> None:
    client = InProcessSuggestionClient()
    experiment = make_experiment("tpe")
    for i in range(8):
        [s] = client.suggest(experiment, 1)
        for step in range(5):
            assert client.report_intermediate(experiment, s.trial_name, step, 100.0 * i) is False
        client.report(
            experiment, TrialResult(s.trial_name, s.assignments, TrialPhase.SUCCEEDED, float(i))
        )
    with pytest.raises(UnknownTrial):
        client.report_intermediate(experiment, "exp-nosuchtr", 0, 1.0)


def test_pbt_validates_but_refuses_to_run() -> None:
    experiment = make_experiment(
        "pbt",
        {"suggestion_trial_dir": "/tmp/x", "n_population": "10", "truncation_threshold": "0.2"},
    )
    with pytest.raises(NotSupported, match="pbt is not supported by the local suggestion service"):
        InProcessSuggestionClient().suggest(experiment, 1)


def test_invalid_settings_refuse_to_run() -> None:
    with pytest.raises(InvalidRequest, match="unknown setting 'bogus' for tpe"):
        InProcessSuggestionClient().suggest(make_experiment("tpe", {"bogus": "1"}), 1)
    with pytest.raises(InvalidRequest, match="unknown algorithm 'nope'"):
        InProcessSuggestionClient().suggest(make_experiment("nope", {}), 1)


def test_maximize_direction_is_used() -> None:
    client = InProcessSuggestionClient()
    experiment = make_experiment("random", direction="maximize")
    for i, s in enumerate(client.suggest(experiment, 3)):
        client.report(
            experiment, TrialResult(s.trial_name, s.assignments, TrialPhase.SUCCEEDED, float(i))
        )
    state = client.state("ns", "exp")
    assert state is not None and state.study.best_value == 2.0


def test_unknown_finished_trial_is_added_as_history() -> None:
    client = InProcessSuggestionClient()
    experiment = make_experiment("grid", parameters=GRID)
    client.report(
        experiment,
        TrialResult("exp-external", {"x": 0.1, "n": 2, "c": "a"}, TrialPhase.SUCCEEDED, 1.0),
    )
    assert client.counts("ns", "exp") == (1, 1)
    cells = {cell(s.assignments) for s in client.suggest(experiment, 100)}
    assert len(cells) == 17 and (0.1, 2, "a") not in cells


@pytest.mark.parametrize(
    ("feasible", "kind", "expected"),
    [
        (
            {"min": "0.01", "max": "0.05", "distribution": "normal"},
            "double",
            "FloatDistribution(high=0.05, log=False, low=0.01, step=None)",
        ),
        (
            {"min": "0.001", "max": "1", "distribution": "logNormal"},
            "double",
            "FloatDistribution(high=1.0, log=True, low=0.001, step=None)",
        ),
        (
            {"min": "0", "max": "1", "step": "0.3"},
            "double",
            "FloatDistribution(high=0.9, log=False, low=0.0, step=0.3)",
        ),
        (
            {"min": "0", "max": "100", "distribution": "logUniform"},
            "int",
            "IntDistribution(high=100, log=True, low=1, step=1)",
        ),
        (
            {"min": "1", "max": "10", "step": "4"},
            "int",
            "IntDistribution(high=9, log=False, low=1, step=4)",
        ),
        ({"list": ["1", "2", "8"]}, "discrete", "CategoricalDistribution(choices=(1, 2, 8))"),
        ({"list": ["1", "2.5"]}, "discrete", "CategoricalDistribution(choices=(1.0, 2.5))"),
        (
            {"list": ["relu", "tanh"]},
            "categorical",
            "CategoricalDistribution(choices=('relu', 'tanh'))",
        ),
    ],
)
def test_search_space_mapping(feasible: dict[str, object], kind: str, expected: str) -> None:
    spec = ParameterSpec.model_validate(
        {"name": "p", "parameterType": kind, "feasibleSpace": feasible}
    )
    [param] = SearchSpace.from_specs([spec]).parameters
    assert repr(param.distribution()) == expected


def test_concurrent_calls_are_thread_safe() -> None:
    import threading

    client = InProcessSuggestionClient()
    experiments = [make_experiment("tpe", name=f"e{i}") for i in range(2)]
    names: list[str] = []
    errors: list[BaseException] = []

    def work(experiment_index: int) -> None:
        experiment = experiments[experiment_index]
        try:
            for _ in range(15):
                [s] = client.suggest(experiment, 1)
                names.append(s.trial_name)
                client.report_intermediate(experiment, s.trial_name, 0, 1.0)
                client.report(
                    experiment,
                    TrialResult(s.trial_name, s.assignments, TrialPhase.SUCCEEDED, 1.0),
                )
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i % 2,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(names) == len(set(names)) == 60
    assert client.counts("ns", "e0") == client.counts("ns", "e1") == (30, 30)
