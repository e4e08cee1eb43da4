"""KatibSearcher: Ray Tune's own ``Tuner.fit()`` on a real local Ray, searched by hyperflow's
suggestion service and recorded in hyperflow's store (the one the CLI reads)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tuner.integrations.ray_tune import KatibSearcher, katib_parameters


def trainable(config: dict[str, Any]) -> None:
    from ray import tune

    loss = (config["lr"] - 0.03) ** 2 + config["layers"] + (0 if config["act"] == "relu" else 1)
    seen = [config["lr"], config["layers"], config["act"], config["fixed"]]
    # An intermediate result first (better than the last: Tune ranks by the last one).
    tune.report({"loss": loss - 0.5, "acc": 0.1, "seen": seen})
    tune.report({"loss": loss, "acc": 0.2, "seen": seen})


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

    # The store the CLI reads has the experiment, its trials and their metrics.
    name = searcher.experiment_name
    got = _cli("get", name, "-o", "json")
    status = got["status"]
    assert got["spec"]["algorithm"]["algorithmName"] == "grid"
    assert status["trials"] == 4 == status["trialsSucceeded"]
    assert {c["type"]: c["status"] for c in status["conditions"]}["Succeeded"] == "True"
    assert status["conditions"][-1]["reason"] == "ExperimentSuggestionEndReached"
    trials = {t["metadata"]["name"]: t for t in _cli("trials", name, "-o", "json")}
    by_params = {}
    for trial in trials.values():
        assignments = {a["name"]: a["value"] for a in trial["spec"]["parameterAssignments"]}
        metrics = {m["name"]: m for m in trial["status"]["observation"]["metrics"]}
        by_params[(int(assignments["layers"]), int(assignments["act"]))] = metrics
    tune_values = {
        (r.config["layers"], ["relu", ("tanh", 2)].index(r.config["act"])): r.metrics["loss"]
        for r in results
    }
    assert sorted(by_params) == sorted(tune_values)
    for key, metrics in by_params.items():
        # Final and intermediate values as reported to Tune: latest, min, max.
        assert float(metrics["loss"]["latest"]) == tune_values[key]
        assert float(metrics["loss"]["min"]) == tune_values[key] - 0.5
        assert float(metrics["acc"]["latest"]) == 0.2 and float(metrics["acc"]["min"]) == 0.1
    best = results.get_best_result()
    optimal = status["currentOptimalTrial"]
    best_assignments = {a["name"]: a["value"] for a in optimal["parameterAssignments"]}
    assert int(best_assignments["layers"]) == best.config["layers"] == 1
    assert int(best_assignments["act"]) == 0 and best.config["act"] == "relu"
    [loss] = [m for m in optimal["observation"]["metrics"] if m["name"] == "loss"]
    assert float(loss["latest"]) == best.metrics["loss"]


def _cli(*args: str) -> Any:
    from typer.testing import CliRunner

    from hyperflow.cli import app

    result = CliRunner().invoke(app, ["experiment", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_save_restore_takes_up_the_stored_experiment(tmp_path: Path) -> None:
    """Ray Tune's resume: the searcher's checkpoint, then a new searcher restored from it
    while a trial was running (Tune runs it again from its start)."""
    from ray import tune

    from tuner.settings import TunerSettings
    from tuner.store import Store

    def searcher() -> KatibSearcher:
        return KatibSearcher(name="resumed", algorithm_settings={"random_state": 3})

    first = searcher()
    first.set_search_properties("loss", "min", {"x": tune.uniform(0, 1)}, num_samples=2)
    a = first.suggest("t1")
    first.on_trial_result("t1", {"loss": a["x"], "training_iteration": 1})
    first.on_trial_complete("t1", {"loss": a["x"], "training_iteration": 1})
    b = first.suggest("t2")
    first.on_trial_result("t2", {"loss": 5.0, "training_iteration": 1})
    first.on_trial_result("t2", {"loss": 4.0, "training_iteration": 2})
    checkpoint = tmp_path / "searcher.pkl"
    first.save(str(checkpoint))
    first.on_trial_result("t2", {"loss": 3.0, "training_iteration": 3})  # after the save
    del first  # the driver dies; its claim on the experiment goes with it

    second = searcher()
    second.restore(str(checkpoint))
    # Tune runs t2 again from iteration 2's checkpoint.
    second.on_trial_result("t2", {"loss": 2.5, "training_iteration": 3})
    second.on_trial_complete("t2", {"loss": 2.0, "training_iteration": 4})

    store = Store(TunerSettings().store_url)  # HYPERFLOW_HOME's, as the CLI reads it
    record = store.get_experiment("default", "resumed")
    assert record is not None and record.phase.value == "Succeeded"
    trials = store.trials(record.uid)
    assert [t.assignments["x"] for t in trials] == [a["x"], b["x"]]
    assert [t.objective_value for t in trials] == [a["x"], 2.0]
    steps = [(o.step, o.value) for o in store.observations(trials[1].id) if o.name == "loss"]
    assert steps == [(1, 5.0), (2, 4.0), (3, 2.5), (4, 2.0)]
    told = second.get_state()["told"]
    assert [t.objective_value for t in told] == [a["x"], 2.0]
    store.close()


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
