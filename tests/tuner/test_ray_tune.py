"""KatibSearcher: Ray Tune's own ``Tuner.fit()`` on a real local Ray, searched by hyperflow's
suggestion service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tuner.integrations.ray_tune import KatibSearcher, katib_parameters
from tuner.sdk import search


def trainable(config: dict[str, Any]) -> dict[str, Any]:
    loss = (config["lr"] - 0.03) ** 2 + config["layers"] + (0 if config["act"] == "relu" else 1)
    return {"loss": loss, "seen": [config["lr"], config["layers"], config["act"], config["fixed"]]}


def fit(tmp_path: Path, searcher: KatibSearcher, space: dict[str, Any], samples: int) -> Any:
    from ray import tune

    tuner = tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(
            metric="loss", mode="min", num_samples=samples, search_alg=searcher
        ),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "ray-results"), verbose=0),
    )
    return tuner.fit()


def test_tuner_fit_with_a_katib_algorithm(ray_address: str, tmp_path: Path) -> None:
    from ray import tune

    space = {
        "lr": tune.loguniform(1e-4, 1e-1),
        "layers": tune.randint(1, 4),
        "act": tune.choice(["relu", ("tanh", 2)]),
        "fixed": "constant",
    }
    searcher = KatibSearcher(algorithm_name="tpe", algorithm_settings={"n_startup_trials": 2})
    results = fit(tmp_path, searcher, space, samples=5)
    assert len(results) == 5 and not results.errors
    for result in results:
        lr, layers, act, fixed = result.metrics["seen"]
        assert 1e-4 <= lr <= 1e-1
        assert layers in (1, 2, 3)  # Tune's exclusive upper bound
        assert act in ("relu", ("tanh", 2))  # the original values, not Katib's strings
        assert fixed == "constant"
    # Every trial was told back to the service, with its objective.
    told = searcher.get_state()["told"]
    assert len(told) == 5
    assert sorted(t.objective_value for t in told) == sorted(r.metrics["loss"] for r in results)
    best = results.get_best_result()
    assert best.metrics["loss"] == min(t.objective_value for t in told)


def test_the_algorithm_ends_the_search(ray_address: str, tmp_path: Path) -> None:
    # A grid of 3 points: Tune asks for 10 samples, the service has 3 and says FINISHED.
    searcher = KatibSearcher(parameters={"layers": search.int(min=1, max=3)}, algorithm_name="grid")
    space = {"lr": 0.03, "act": "relu", "fixed": "constant"}
    results = fit(tmp_path, searcher, space, samples=10)
    assert sorted(r.metrics["seen"][1] for r in results) == [1, 2, 3]


def test_search_space_conversion() -> None:
    from ray import tune

    parameters, choices = katib_parameters(
        {
            "a": tune.uniform(0, 1),
            "b": tune.quniform(0, 1, 0.25),
            "c": tune.randint(2, 5),
            "d": tune.qrandint(0, 10, 5),
            "e": tune.choice([1, "x"]),
            "f": 3,
        }
    )
    spaces = {k: (v.parameter_type.value, v.feasible_space) for k, v in parameters.items()}
    assert spaces["a"][0] == "double" and (spaces["a"][1].min, spaces["a"][1].max) == ("0", "1")
    assert spaces["b"][1].step == "0.25"
    assert spaces["c"][0] == "int" and (spaces["c"][1].min, spaces["c"][1].max) == ("2", "4")
    assert (spaces["d"][1].max, spaces["d"][1].step) == ("10", "5")
    assert spaces["e"][0] == "categorical" and choices["e"] == [1, "x"]
    assert "f" not in parameters
    with pytest.raises(ValueError, match=r"param_space\['n'\]: nested"):
        katib_parameters({"n": {"x": tune.uniform(0, 1)}})
