"""The tune and deploy components."""

# No `from __future__ import annotations`: kfp reads the components' annotations.
from pathlib import Path

import pytest
from kfp import dsl
from kfp.dsl import Dataset, Model, Output

from pipelines.components import deploy, tune
from pipelines.tasks.deploy import DeployError, deploy_model, inference_service
from tests.util import free_port


@dsl.component
def target_data(value: float, data: Output[Dataset]):
    with open(data.path, "w") as f:
        f.write(str(value))


@dsl.component
def read_model(model: dsl.Input[Model]) -> str:
    import os

    with open(os.path.join(model.path, "model.txt")) as f:
        return f"{f.read()} trial={model.metadata['trial']}"


@dsl.pipeline
def tuned(target: float = 0.3) -> str:
    data = target_data(value=target)
    best = tune(
        name="quadratic-in-pipeline",
        objective="tests.pipelines.objectives:quadratic",
        parameters={"x": {"type": "double", "min": -1.0, "max": 1.0}},
        objective_metric_name="loss",
        objective_type="minimize",
        algorithm_name="random",
        max_trial_count=4,
        parallel_trial_count=2,
        fixed={"offset": 0.5},
        dataset=data.outputs["data"],
    )
    return read_model(model=best.outputs["model"]).output


def test_tune_component_outputs_the_best_trial(run):
    from tuner.sdk import get_optimal_hyperparameters

    result = run(tuned, track=False)
    assert result.state == "SUCCEEDED", result.run.message
    outputs = result.task("tune").outputs
    best = outputs["parameters"]["best_parameters"]
    value = outputs["parameters"]["best_objective_value"]
    assert value == pytest.approx((best["x"] - 0.3) ** 2 + 0.5)
    model = outputs["artifacts"]["model"][0]
    assert model["type"]["schemaTitle"] == "system.Model"
    assert model["metadata"]["experiment"] == "quadratic-in-pipeline"
    assert model["metadata"]["objective_value"] == value
    assert result.output == f"x={best['x']} trial={model['metadata']['trial']}"
    # The experiment is stored (and was logged) like any other.
    optimal = get_optimal_hyperparameters("quadratic-in-pipeline")
    assert optimal["bestTrialName"] == model["metadata"]["trial"]


@dsl.pipeline
def tuned_ints():
    tune(
        name="ints-in-pipeline",
        objective="tests.pipelines.objectives:needs_ints",
        parameters={
            "depth": {"type": "int", "min": 2, "max": 4},
            "degree": {"type": "discrete", "values": [2, 3]},
        },
        objective_metric_name="loss",
        objective_type="minimize",
        algorithm_name="random",
        max_trial_count=3,
        parallel_trial_count=1,
        fixed={"repeat": 2},
    )


def test_literal_ints_of_a_tune_step_stay_ints(run):
    """A pipeline's constants are protobuf doubles: {"min": 2} arrived as 2.0 (an int
    space refused it) and discrete [2, 3] gave trials 2.0 (sklearn's max_depth refuses)."""
    result = run(tuned_ints, track=False)
    assert result.state == "SUCCEEDED", [(t.path, t.message) for t in result.tasks]
    best = result.task("tune").outputs["parameters"]["best_parameters"]
    assert type(best["depth"]) is int and best["degree"] in (2, 3), best


def test_a_tune_step_on_new_data_does_not_hand_back_the_old_model(run):
    # Same experiment name, another dataset: it returned the model tuned on the old data.
    first = run(tuned, {"target": 0.3}, track=False)
    assert first.state == "SUCCEEDED", first.run.message
    same = run(tuned, {"target": 0.3}, track=False)  # same data, another run: reused
    assert same.state == "SUCCEEDED", same.run.message
    assert same.output == first.output
    other = run(tuned, {"target": 0.9}, track=False, cache=False)
    assert other.state == "FAILED"
    message = other.task("tune").message
    assert "quadratic-in-pipeline was tuned on another dataset or other fixed arguments" in (
        message
    )
    assert "hyperflow experiment delete quadratic-in-pipeline" in message


@dsl.pipeline
def tuned_without_model():
    tune(
        name="saves-nothing",
        objective="tests.pipelines.objectives:saves_nothing",
        parameters={"x": {"type": "double", "min": -1.0, "max": 1.0}},
        objective_metric_name="loss",
        objective_type="minimize",
        max_trial_count=2,
    )


@dsl.pipeline
def tuned_badly():
    tune(name="bad", objective="no_such_module:f", parameters={"x": {"type": "double"}},
         objective_metric_name="loss")  # fmt: skip


def test_tune_failures_are_task_failures(run):
    result = run(tuned_without_model, track=False)
    assert result.state == "FAILED"
    assert "saved no model" in result.task("tune").message
    result = run(tuned_badly, track=False)
    assert result.state == "FAILED"
    assert "tune" in result.run.message and "ValueError" in result.task("tune").message
    # Its output: why there is none (it said "the pipeline has 0 outputs").
    with pytest.raises(
        AttributeError, match=r"pipeline run \S+ FAILED: .*tune.*; it has no outputs"
    ):
        _ = result.output


def test_deploy_without_a_server_says_to_start_one(run, tmp_path, monkeypatch):
    port = free_port()  # nothing listens there
    monkeypatch.setenv("HYPERFLOW_SERVER", f"http://127.0.0.1:{port}")
    with pytest.raises(DeployError, match=f"no hyperflow server at http://127.0.0.1:{port}: "
                       "start one with `hyperflow server`"):  # fmt: skip
        deploy_model(storage_uri=str(tmp_path), name="m", timeout=1)

    @dsl.pipeline
    def deploys() -> str:
        model = dsl.importer(artifact_uri=str(tmp_path), artifact_class=Model)
        return deploy(model=model.output, name="digits", timeout=1.0).output

    result = run(deploys)
    assert result.state == "FAILED"
    assert "start one with `hyperflow server`" in result.task("deploy").message


def test_inference_service_object_is_kserve_v1beta1():
    service = inference_service("digits", "team-a", "/models/digits", "sklearn", max_replicas=2)
    assert service == {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "digits", "namespace": "team-a"},
        "spec": {
            "predictor": {
                "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "/models/digits"},
                "maxReplicas": 2,
            }
        },
    }


def test_digits_example_loads_and_compiles():
    from pipelines.spec import load_pipeline

    root = Path(__file__).resolve().parents[2] / "examples" / "pipelines" / "digits.py"
    spec, _ = load_pipeline(root)
    assert spec["pipelineInfo"]["name"] == "digits"
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    assert inputs["deploy"] == {
        "defaultValue": False,
        "isOptional": True,
        "parameterType": "BOOLEAN",
    }
    tasks = spec["root"]["dag"]["tasks"]
    assert {"load-data", "for-loop-2", "pick-best", "train", "evaluate"} <= set(tasks)


def test_deploy_creates_a_service_on_a_real_server_that_answers_v2(
    run, iris_models, hyperflow_home, monkeypatch
):
    import httpx

    from tests.hyperflow.conftest import V2_BODY, serve_plane, server_settings

    def deploying(version: str):
        model_dir = str(iris_models / "model" / version)

        @dsl.pipeline
        def deploys() -> str:
            model = dsl.importer(artifact_uri=model_dir, artifact_class=Model)
            return deploy(model=model.output, name="iris-from-pipeline", timeout=120.0).output

        return deploys, model_dir

    path = "/apis/v1/namespaces/default/inferenceservices/iris-from-pipeline"
    with serve_plane(server_settings(hyperflow_home)) as server:
        monkeypatch.setenv("HYPERFLOW_SERVER", server.url)
        url = f"http://127.0.0.1:{server.plane.settings.serving_port}/v2/models/iris-from-pipeline"
        for generation, version in enumerate(["v1", "v2"], start=1):
            pipeline, model_dir = deploying(version)
            result = run(pipeline)  # v1 creates the service, v2 replaces it (a new revision)
            assert result.state == "SUCCEEDED", result.run.message
            assert result.output == url
            service = server.http.get(path).json()
            assert service["metadata"]["generation"] == generation
            assert service["spec"]["predictor"]["model"] == {
                "modelFormat": {"name": "sklearn"},
                "storageUri": model_dir,
            }
            assert service["status"]["conditions"][-1]["status"] == "True"
            answer = httpx.post(f"{url}/infer", json=V2_BODY, timeout=60)
            assert answer.status_code == 200, answer.text
            assert answer.json()["model_name"] == "iris-from-pipeline"
            assert answer.json()["outputs"][0]["data"] == [2]
            revision = f"iris-from-pipeline-predictor-0000{generation}"
            assert answer.headers["x-hyperflow-revision"] == revision
