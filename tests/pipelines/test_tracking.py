"""A pipeline run in MLflow: parent run, one nested run per task, params, metrics, artifacts."""

# No `from __future__ import annotations`: kfp reads the components' annotations.
import json
from pathlib import Path
from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, ClassificationMetrics, Dataset, Metrics, Model, Output


@dsl.component
def make_data(rows: int, data: Output[Dataset]):
    with open(data.path, "w") as f:
        f.write("x\n" * rows)


@dsl.component
def evaluate(data: dsl.Input[Dataset], metrics: Output[Metrics], model: Output[Model]) -> float:
    # A Model output beside the Metrics does not rename them (it made them metrics.accuracy).
    with open(model.path, "w") as f:
        f.write("weights")
    with open(data.path) as f:
        rows = len(f.readlines())
    metrics.log_metric("accuracy", rows / 10)
    metrics.log_metric("rows", rows)
    return rows / 10


@dsl.pipeline(name="tracked")
def tracked(rows: int = 9) -> float:
    return evaluate(data=make_data(rows=rows).outputs["data"]).outputs["Output"]


def test_run_and_tasks_are_mlflow_runs(run, mlflow_db: Path):
    from mlflow import MlflowClient

    first = run(tracked, track=True)
    second = run(tracked, track=True)  # every task a cache hit
    assert first.output == 0.9 and second.output == 0.9
    client = MlflowClient(tracking_uri=f"sqlite:///{mlflow_db}")
    experiment = client.get_experiment_by_name("tracked")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    parents = {r.info.run_name: r for r in runs if "mlflow.parentRunId" not in r.data.tags}
    assert set(parents) == {first.name, second.name}
    parent = parents[first.name]
    assert parent.info.status == "FINISHED"
    assert parent.info.run_id == first.run.mlflow_run_id
    assert parent.data.params["arg.rows"] == "9"
    assert "pipeline.yaml" in [a.path for a in client.list_artifacts(parent.info.run_id)]
    children = {
        r.info.run_name: r
        for r in runs
        if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
    }
    assert set(children) == {"make-data", "evaluate"}
    evaluated = children["evaluate"]
    assert evaluated.info.status == "FINISHED"
    # the Metrics artifact's metrics, and the number it returned by its output name
    assert evaluated.data.metrics == {"accuracy": 0.9, "rows": 9.0, "Output": 0.9}
    assert evaluated.data.params["data"].endswith("/make-data/artifacts/data")
    assert children["make-data"].data.params == {"rows": "9"}
    files = [a.path for a in client.list_artifacts(children["make-data"].info.run_id)]
    assert "trial.log" in files and "data" in files
    # The cache hits of the second run are runs too, with the metrics they reused.
    cached = {
        r.info.run_name: r
        for r in runs
        if r.data.tags.get("mlflow.parentRunId") == parents[second.name].info.run_id
    }
    assert cached["evaluate"].data.tags["hyperflow.cached"] == "true"
    assert cached["evaluate"].data.metrics == {"accuracy": 0.9, "rows": 9.0, "Output": 0.9}


@dsl.component
def fail(message: str):
    raise ValueError(message)


@dsl.pipeline(name="tracked-failure")
def tracked_failure(rows: int = 3) -> float:
    made = make_data(rows=rows)
    fail(message="no").after(made)
    return evaluate(data=made.outputs["data"]).outputs["Output"]


def test_a_run_is_in_mlflow_when_it_returns_written_by_a_thread_of_its_process(
    run, mlflow_db: Path, monkeypatch
):
    """On a complete SQLite store the run's process writes MLflow itself (no writer process
    to start), and a failed run is FAILED there, with its failed task, before run() returns."""
    from mlflow import MlflowClient

    from tuner.tracking.mlflow_tracker import MlflowTracker

    spawned = []
    spawn = MlflowTracker._spawn
    monkeypatch.setattr(MlflowTracker, "_spawn", lambda self: spawned.append(1) or spawn(self))
    result = run(tracked_failure, track=True, cache=False)
    assert result.state == "FAILED" and spawned == []
    client = MlflowClient(tracking_uri=f"sqlite:///{mlflow_db}")
    parent = client.get_run(result.run.mlflow_run_id)
    assert parent.info.status == "FAILED"
    assert parent.data.tags["hyperflow.status"] == "Failed"
    children = {
        r.info.run_name: r
        for r in client.search_runs(
            [parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
        )
    }
    assert {name: r.info.status for name, r in children.items()} == {
        "make-data": "FINISHED",
        "fail": "FAILED",
        "evaluate": "FINISHED",
    }
    log = client.download_artifacts(children["fail"].info.run_id, "trial.log")
    assert "ValueError: no" in Path(log).read_text()


@dsl.component
def report(page: Output[HTML]):
    with open(page.path, "w") as f:
        f.write("<h1>report</h1>")


@dsl.pipeline(name="reported")
def reported():
    report()


def test_an_html_output_is_an_html_file_in_mlflow(run, mlflow_db: Path):
    from mlflow import MlflowClient

    done = run(reported, track=True)
    client = MlflowClient(tracking_uri=f"sqlite:///{mlflow_db}")
    [task] = client.search_runs(
        [client.get_experiment_by_name("reported").experiment_id],
        filter_string="tags.mlflow.runName = 'report'",
    )
    files = [a.path for a in client.list_artifacts(task.info.run_id)]
    assert "page.html" in files, files
    assert done.task("report").outputs["artifacts"]["page"][0]["uri"].endswith("page.html")


@dsl.component
def classify(matrix: Output[ClassificationMetrics]) -> NamedTuple("Scored", label=str, score=float):
    from collections import namedtuple

    matrix.log_confusion_matrix(["cat", "dog"], [[8, 2], [1, 9]])
    return namedtuple("Scored", ["label", "score"])("dog", 0.85)


@dsl.pipeline(name="classified")
def classified():
    classify()


def test_classification_metrics_and_string_outputs_are_json_artifacts(run, mlflow_db: Path):
    import json

    from mlflow import MlflowClient

    run(classified, track=True)
    client = MlflowClient(tracking_uri=f"sqlite:///{mlflow_db}")
    [task] = client.search_runs(
        [client.get_experiment_by_name("classified").experiment_id],
        filter_string="tags.mlflow.runName = 'classify'",
    )
    assert task.data.metrics == {"score": 0.85}  # a number stays a metric
    files = [a.path for a in client.list_artifacts(task.info.run_id)]
    assert {"matrix.json", "output-parameters.json"} <= set(files), files
    matrix = json.loads(
        Path(client.download_artifacts(task.info.run_id, "matrix.json")).read_text()
    )
    assert matrix["confusionMatrix"]["rows"] == [{"row": [8, 2]}, {"row": [1, 9]}]
    outputs = json.loads(
        Path(client.download_artifacts(task.info.run_id, "output-parameters.json")).read_text()
    )
    assert outputs == {"label": "dog", "score": 0.85}


def test_output_json_is_strict_and_never_overwrites_an_output():
    from pipelines.tracking import PARAMETERS_ARTIFACT, _json_texts

    roc = {"confidenceMetrics": [{"confidenceThreshold": float("inf"), "recall": 0.0}]}
    texts = _json_texts(
        {"outputs": [{"type": {"schemaTitle": "system.ClassificationMetrics"}, "metadata": roc}]},
        {"Output": float("nan"), "n": 3},
    )
    assert set(texts) == {"outputs.json", PARAMETERS_ARTIFACT}
    # NaN and infinity are no JSON: jq and JSON.parse refuse the bare words.
    assert json.loads(texts["outputs.json"])["confidenceMetrics"][0]["confidenceThreshold"] == (
        "Infinity"
    )
    assert json.loads(texts[PARAMETERS_ARTIFACT]) == {"Output": "NaN", "n": 3}
    assert "NaN" not in texts[PARAMETERS_ARTIFACT].replace('"NaN"', "")
    assert _json_texts({}, {"a": 1, "b": 0.5}) == {}  # metrics alone: no file
