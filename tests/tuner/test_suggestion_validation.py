"""validate_algorithm: Katib's algorithm names, settings and search-space rules."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.util import SHARED, needs_shared
from tuner.spec.models import AlgorithmSpec, Experiment, ParameterSpec
from tuner.suggestion import ALGORITHMS, get_algorithm, validate_algorithm
from tuner.suggestion.algorithms import UnknownAlgorithm
from tuner.suggestion.space import SearchSpace

KATIB_EXAMPLES = sorted((SHARED / "katib-examples").rglob("*.yaml"))


def params(*specs: dict[str, object]) -> list[ParameterSpec]:
    return [ParameterSpec.model_validate(s) for s in specs]


def algo(name: str, **settings: str) -> AlgorithmSpec:
    return AlgorithmSpec.model_validate(
        {
            "algorithmName": name,
            "algorithmSettings": [{"name": k, "value": v} for k, v in settings.items()],
        }
    )


X = {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}
Y = {"name": "y", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "4"}}
C = {"name": "c", "parameterType": "categorical", "feasibleSpace": {"list": ["a", "b", "c"]}}
XS = {
    "name": "x",
    "parameterType": "double",
    "feasibleSpace": {"min": "0", "max": "1", "step": "0.5"},
}


@needs_shared("katib-examples")
@pytest.mark.parametrize("path", KATIB_EXAMPLES, ids=lambda p: p.name)
def test_katib_example_files_validate(path: Path) -> None:
    assert KATIB_EXAMPLES, "katib examples missing"
    for doc in yaml.safe_load_all(path.read_text()):
        if not doc or doc.get("kind") != "Experiment":
            continue
        spec = Experiment.model_validate(doc).spec
        assert validate_algorithm(spec.algorithm, spec.parameters, spec.max_trial_count) == []


def test_unknown_algorithm_lists_the_valid_names() -> None:
    [(path, message)] = validate_algorithm(algo("foo"), params(X), None)
    assert path == "algorithm.algorithmName"
    assert message.startswith("unknown algorithm 'foo'; valid: bayesianoptimization, cmaes, grid")
    for name in ("hyperband", "multivariate-tpe", "pbt", "random", "sobol", "tpe"):
        assert name in message
    with pytest.raises(UnknownAlgorithm, match="unknown algorithm 'foo'"):
        get_algorithm("foo")


def test_unknown_setting_lists_the_valid_settings() -> None:
    problems = validate_algorithm(
        algo("tpe", foo="1", n_ei_candidates="0", n_startup_trials="x"), params(X), None
    )
    assert problems == [
        (
            "algorithm.algorithmSettings[0].name",
            "unknown setting 'foo' for tpe; valid settings: n_startup_trials, n_ei_candidates, "
            "gamma, prior_weight, n_EI_candidates, random_state",
        ),
        (
            "algorithm.algorithmSettings[1].value",
            "n_ei_candidates must be an integer >= 1; got '0'",
        ),
        (
            "algorithm.algorithmSettings[2].value",
            "n_startup_trials must be an integer >= 0; got 'x'",
        ),
    ]


VALID_SETTINGS: list[tuple[str, dict[str, str]]] = [
    ("random", {"random_state": "3"}),
    ("grid", {"random_state": "3"}),
    ("tpe", {"n_startup_trials": "5", "n_ei_candidates": "24", "random_state": "1"}),
    # Katib's own tpe service is hyperopt's: its settings' names
    ("tpe", {"gamma": "0.25", "prior_weight": "1.0", "n_EI_candidates": "24", "random_state": "1"}),
    ("multivariate-tpe", {"n_startup_trials": "0", "n_ei_candidates": "8"}),
    ("cmaes", {"sigma": "0.5", "restart_strategy": "ipop", "random_state": "2"}),
    (
        "bayesianoptimization",
        {
            "base_estimator": "GP",
            "n_initial_points": "5",
            "acq_func": "gp_hedge",
            "acq_optimizer": "lbfgs",
            "random_state": "0",
        },
    ),
    ("sobol", {"random_state": "4", "scramble": "true"}),
    ("hyperband", {"resource_name": "y", "eta": "3", "r_l": "9"}),
    (
        "pbt",
        {
            "suggestion_trial_dir": "/tmp/ckpt",
            "n_population": "40",
            "truncation_threshold": "0.2",
            "resample_probability": "0.5",
        },
    ),
]


@pytest.mark.parametrize(("name", "settings"), VALID_SETTINGS)
def test_valid_settings_of_every_algorithm(name: str, settings: dict[str, str]) -> None:
    assert validate_algorithm(algo(name, **settings), params(XS, Y), 4) == []


@pytest.mark.filterwarnings("ignore::FutureWarning")  # optuna 4.9 deprecated both settings
def test_the_tpe_of_katibs_hyperopt_settings_runs_as_told() -> None:
    from optuna.samplers import TPESampler

    from tuner.suggestion.algorithms._tpe import hyperopt_gamma
    from tuner.suggestion.settings import parse_settings

    tpe = get_algorithm("tpe")
    given = algo("tpe", gamma="0.5", prior_weight="2", n_EI_candidates="7").algorithm_settings
    settings, problems = parse_settings("tpe", tpe.settings, given)
    assert problems == []
    sampler = tpe.create_sampler(settings, SearchSpace.from_specs(params(XS, Y)))
    assert isinstance(sampler, TPESampler)
    assert sampler._parzen_estimator_parameters.prior_weight == 2.0
    assert sampler._n_ei_candidates == 7
    assert sampler._gamma(100) == hyperopt_gamma(0.5, 100) == 5
    assert hyperopt_gamma(0.25, 10**6) == 25  # hyperopt's linear_forgetting cap


def test_the_table_above_covers_every_algorithm() -> None:
    assert {name for name, _ in VALID_SETTINGS} == set(ALGORITHMS)


@pytest.mark.parametrize(
    ("name", "settings", "expected"),
    [
        ("cmaes", {"sigma": "0"}, ("algorithm.algorithmSettings[0].value", "must be a number > 0")),
        (
            "cmaes",
            {"restart_strategy": "foo"},
            ("algorithm.algorithmSettings[0].value", "must be one of: None, ipop, bipop"),
        ),
        (
            "random",
            {"random_state": "-1"},
            ("algorithm.algorithmSettings[0].value", "must be an integer >= 0"),
        ),
        (
            "bayesianoptimization",
            {"base_estimator": "SVR"},
            ("algorithm.algorithmSettings[0].value", "must be one of: GP, RF, ET, GBRT"),
        ),
        (
            "bayesianoptimization",
            {"acq_func": "UCB"},
            (
                "algorithm.algorithmSettings[0].value",
                "must be one of: gp_hedge, LCB, EI, PI, EIps, PIps",
            ),
        ),
        (
            "bayesianoptimization",
            {"n_startup_trials": "3"},
            (
                "algorithm.algorithmSettings[0].name",
                "unknown setting 'n_startup_trials' for bayesianoptimization; valid settings: "
                "base_estimator, n_initial_points, acq_func, acq_optimizer, random_state",
            ),
        ),
        (
            "bayesianoptimization",
            {"base_estimator": "RF", "acq_optimizer": "lbfgs"},
            (
                "algorithm.algorithmSettings",
                "acq_optimizer lbfgs needs gradients: only base_estimator GP has them (got RF); "
                "use acq_optimizer sampling or auto",
            ),
        ),
        (
            "hyperband",
            {"r_l": "9"},
            ("algorithm.algorithmSettings", "hyperband needs the setting 'resource_name'"),
        ),
        (
            "hyperband",
            {"resource_name": "nope", "r_l": "9"},
            ("algorithm.algorithmSettings", "resource_name 'nope' must be one of the parameters"),
        ),
        (
            "hyperband",
            {"resource_name": "y", "r_l": "9", "eta": "1"},
            ("algorithm.algorithmSettings[2].value", "must be an integer >= 2"),
        ),
        (
            "pbt",
            {"suggestion_trial_dir": "/d", "n_population": "4", "truncation_threshold": "0.2"},
            ("algorithm.algorithmSettings[1].value", "must be an integer >= 5"),
        ),
        (
            "pbt",
            {"suggestion_trial_dir": "/d", "n_population": "5", "truncation_threshold": "1.5"},
            ("algorithm.algorithmSettings[2].value", "must be a number between 0 and 1"),
        ),
        (
            "pbt",
            {"n_population": "5", "truncation_threshold": "0.5"},
            ("algorithm.algorithmSettings", "pbt needs the setting 'suggestion_trial_dir'"),
        ),
        (
            "tpe",
            {"gamma": "1"},
            ("algorithm.algorithmSettings[0].value", "must be a number strictly between 0 and 1"),
        ),
        (
            "tpe",
            {"n_EI_candidates": "8", "n_ei_candidates": "8"},
            (
                "algorithm.algorithmSettings",
                "n_EI_candidates (hyperopt's name) and n_ei_candidates are one setting: give one",
            ),
        ),
        (
            "multivariate-tpe",
            {"gamma": "0.25"},
            (
                "algorithm.algorithmSettings[0].name",
                "unknown setting 'gamma' for multivariate-tpe; valid settings: "
                "n_startup_trials, n_ei_candidates, random_state",
            ),
        ),
        (
            "sobol",
            {"scramble": "maybe"},
            ("algorithm.algorithmSettings[0].value", "must be true or false"),
        ),
    ],
)
def test_invalid_settings(name: str, settings: dict[str, str], expected: tuple[str, str]) -> None:
    path, message = expected
    if path.endswith("].value"):  # the message names the setting and quotes its value
        key, value = list(settings.items())[int(path.rpartition("[")[2][:-7])]
        message = f"{key} {message}; got {value!r}"
    assert validate_algorithm(algo(name, **settings), params(XS, Y), None) == [(path, message)]


def test_duplicate_setting() -> None:
    spec = AlgorithmSpec.model_validate(
        {
            "algorithmName": "random",
            "algorithmSettings": [
                {"name": "random_state", "value": "1"},
                {"name": "random_state", "value": "2"},
            ],
        }
    )
    assert validate_algorithm(spec, params(X), None) == [
        ("algorithm.algorithmSettings[1].name", "duplicate setting 'random_state'")
    ]


def test_grid_rules() -> None:
    # doubles need a step (Katib's rule); ints and lists count as they are
    assert validate_algorithm(algo("grid"), params(X, Y), None) == [
        ("parameters[0].feasibleSpace.step", "grid needs a step for double parameter 'x'")
    ]
    # 3 (x) * 4 (y) * 3 (c) = 36 combinations
    assert validate_algorithm(algo("grid"), params(XS, Y, C), 36) == []
    assert validate_algorithm(algo("grid"), params(XS, Y, C), 40) == [
        ("maxTrialCount", "grid needs maxTrialCount (40) <= number of grid combinations (36)")
    ]
    stepped_int = {
        "name": "n",
        "parameterType": "int",
        "feasibleSpace": {"min": "1", "max": "10", "step": "3"},
    }
    discrete = {"name": "d", "parameterType": "discrete", "feasibleSpace": {"list": ["1", "2.5"]}}
    # n: 1, 4, 7, 10 -> 4; d: 2 -> 8 combinations
    assert validate_algorithm(algo("grid"), params(stepped_int, discrete), 9) == [
        ("maxTrialCount", "grid needs maxTrialCount (9) <= number of grid combinations (8)")
    ]
    # Katib's grid example: 9 * 5 = 45 combinations despite float steps
    lr = {
        "name": "lr",
        "parameterType": "double",
        "feasibleSpace": {"min": "0.01", "max": "0.05", "step": "0.005"},
    }
    mom = {
        "name": "m",
        "parameterType": "double",
        "feasibleSpace": {"min": "0.5", "max": "0.9", "step": "0.1"},
    }
    assert validate_algorithm(algo("grid"), params(lr, mom), 45) == []
    assert validate_algorithm(algo("grid"), params(lr, mom), 46) != []


def test_cmaes_needs_two_numeric_parameters() -> None:
    assert validate_algorithm(algo("cmaes"), params(X, C), None) == [
        ("parameters", "cmaes needs at least 2 double/int parameters")
    ]
    assert validate_algorithm(algo("cmaes"), params(X, Y, C), None) == []
