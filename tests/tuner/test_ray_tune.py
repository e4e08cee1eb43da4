"""KatibSearcher: Ray Tune's own ``Tuner.fit()`` on a real local Ray, searched by hyperflow's
suggestion service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tuner.integrations.ray_tune import KatibSearcher, katib_parameters


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


def test_tuner_fit_searched_by_a_katib_algorithm(ray_address: str, tmp_path: Path) -> None:
    from ray import tune

    # Katib's grid over Tune's space: 2 x 2 points. Tune asks for 10 samples; the
    # service has 4 and then says FINISHED.
    space = {
        "lr": 0.03,
        "layers": tune.randint(1, 3),
        "act": tune.choice(["relu", ("tanh", 2)]),
        "fixed": "constant",
    }
    searcher = KatibSearcher(algorithm_name="grid", algorithm_settings={"random_state": 1})
    results = fit(tmp_path, searcher, space, samples=10)
    assert len(results) == 4 and not results.errors
    seen = sorted((r.metrics["seen"][1], str(r.metrics["seen"][2])) for r in results)
    # Tune's exclusive upper bound; the original choice values, not Katib's strings.
    assert seen == [(1, "('tanh', 2)"), (1, "relu"), (2, "('tanh', 2)"), (2, "relu")]
    assert {r.metrics["seen"][3] for r in results} == {"constant"}
    # Every trial was told back to the service, with its objective.
    told = searcher.get_state()["told"]
    assert sorted(t.objective_value for t in told) == sorted(r.metrics["loss"] for r in results)
    assert results.get_best_result().metrics["loss"] == min(t.objective_value for t in told) == 1


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
