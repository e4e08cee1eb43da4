"""The bulk run writer against MLflow's public API, on a real MLflow SQLite store.

The bulk writer inserts rows into MLflow's tables itself (for speed), so these tests write
the same runs through it and through ``MlflowClient`` and compare everything the public
read API returns; an MLflow upgrade that changes what a run is shows up here.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, Run
from sqlalchemy.exc import OperationalError, ProgrammingError

from tests.tuner.test_tracking import EXPERIMENT, UID, make_trial_dir
from tuner.tracking.events import (
    ExperimentEnded,
    ExperimentStarted,
    ObservationsLogged,
    TrialEnded,
    TrialStarted,
)
from tuner.tracking.mlflow_bulk import BulkRunWriter, FinishedRun, new_run_id
from tuner.tracking.mlflow_writer import MlflowWriter
from tuner.types import ExperimentPhase, ExperimentReason, Observation, TrialPhase

pytestmark = [pytest.mark.timeout(120), pytest.mark.filterwarnings("ignore:::mlflow.*")]

T0 = 1_700_000_000_000


def finished_run(name: str) -> FinishedRun:
    return FinishedRun(
        run_name=name,
        start_ms=T0,
        end_ms=T0 + 5_000,
        status="FAILED",
        params={"lr": "0.01", "optimizer": "adam"},
        tags={"hyperflow.trial": name, "team": "vision", "mlflow.user": "ada"},
        metrics=[
            Metric("loss", 0.9, T0 + 1_000, 0),
            Metric("loss", 0.5, T0 + 2_000, 1),
            Metric("loss", 0.5, T0 + 2_000, 1),  # an exact repeat: stored once
            Metric("loss", 0.7, T0 + 3_000, 1),  # same step, later: the latest value
            Metric("loss", 0.2, T0 + 500, 0),
            Metric("accuracy", float("nan"), T0 + 1_000, 0),
            Metric("grad", float("inf"), T0 + 1_000, 3),
            Metric("grad", float("-inf"), T0 + 1_000, 2),
        ],
    )


def via_api(client: MlflowClient, experiment_id: str, run: FinishedRun) -> str:
    created = client.create_run(
        experiment_id, start_time=run.start_ms, tags=run.tags, run_name=run.run_name
    )
    run_id = created.info.run_id
    client.log_batch(
        run_id,
        metrics=run.metrics,
        params=[Param(k, v) for k, v in run.params.items()],
    )
    client.set_terminated(run_id, status=run.status, end_time=run.end_ms)
    return run_id


def comparable(client: MlflowClient, run: Run) -> dict[str, object]:
    info = run.info
    histories = {
        key: sorted(
            (m.step, m.timestamp, "nan" if math.isnan(m.value) else m.value)
            for m in client.get_metric_history(info.run_id, key)
        )
        for key in run.data.metrics
    }
    latest = {k: "nan" if math.isnan(v) else v for k, v in run.data.metrics.items()}
    return {
        "run_name": info.run_name,
        "status": info.status,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "lifecycle_stage": info.lifecycle_stage,
        "user_id": info.user_id,
        "artifact_uri": info.artifact_uri.replace(info.run_id, "<id>"),
        "params": run.data.params,
        "tags": run.data.tags,
        "latest": latest,
        "histories": histories,
        "inputs": run.inputs.dataset_inputs if run.inputs else [],
    }


def test_a_bulk_run_reads_back_exactly_like_one_written_through_the_api(
    store: tuple[str, Path],
) -> None:
    uri, root = store
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment("bulk", artifact_location=(root / "bulk").as_uri())
    location = client.get_experiment(experiment_id).artifact_location
    writer = BulkRunWriter.for_client(client)
    assert writer is not None, "the installed MLflow's tables are not what the writer expects"

    api_id = via_api(client, experiment_id, finished_run("trial-a"))
    bulk_ids = [new_run_id() for _ in range(3)]
    writer.insert(
        experiment_id,
        location,
        {run_id: BulkRunWriter.validate(finished_run("trial-a")) for run_id in bulk_ids},
    )

    expected = comparable(client, client.get_run(api_id))
    assert expected["latest"] == {"loss": 0.7, "accuracy": "nan", "grad": 1.7976931348623157e308}
    for run_id in bulk_ids:
        assert comparable(client, client.get_run(run_id)) == expected

    # Search, which reads other tables and columns than get_run, sees the bulk runs too.
    found = client.search_runs(
        [experiment_id], "params.optimizer = 'adam' and metrics.loss > 0.6 and tags.team = 'vision'"
    )
    assert {r.info.run_id for r in found} == {api_id, *bulk_ids}
    # And they are ordinary runs: deleted, restored and logged to like any other.
    client.delete_run(bulk_ids[0])
    assert len(client.search_runs([experiment_id])) == 3
    client.restore_run(bulk_ids[0])
    client.set_tag(bulk_ids[0], "reviewed", "yes")
    assert client.get_run(bulk_ids[0]).data.tags["reviewed"] == "yes"


def test_bulk_insert_is_all_or_nothing_and_refuses_a_deleted_experiment(
    store: tuple[str, Path],
) -> None:
    uri, _ = store
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment("gone")
    location = client.get_experiment(experiment_id).artifact_location
    writer = BulkRunWriter.for_client(client)
    assert writer is not None
    taken = new_run_id()
    writer.insert(experiment_id, location, {taken: finished_run("first")})
    with pytest.raises(Exception, match=r"UNIQUE|unique|IntegrityError"):
        # The second run's id collides: neither of the two runs is written.
        writer.insert(
            experiment_id,
            location,
            {new_run_id(): finished_run("second"), taken: finished_run("again")},
        )
    assert [r.info.run_name for r in client.search_runs([experiment_id])] == ["first"]
    client.delete_experiment(experiment_id)
    with pytest.raises(Exception, match="active") as refused:
        writer.insert(experiment_id, location, {new_run_id(): finished_run("late")})
    assert getattr(refused.value, "error_code", None) == "INVALID_STATE"


def test_mlflow_validation_applies_to_bulk_runs() -> None:
    bad = finished_run("x")
    bad.metrics.append(Metric("loss", 1.0, T0, step="one"))  # type: ignore[arg-type]
    with pytest.raises(Exception, match="step"):
        BulkRunWriter.validate(bad)


def short_experiment(writer: MlflowWriter, tmp_path: Path, trials: int) -> None:
    """Every trial starts and ends before the writer's next cycle, as fast trials do."""
    writer.apply(ExperimentStarted(EXPERIMENT, UID, T0))
    for i in range(trials):
        name = f"digits-{i}"
        writer.apply(TrialStarted(name, {"lr": 0.01 * (i + 1), "optimizer": "sgd"}, T0))
        writer.apply(ObservationsLogged(name, (Observation("accuracy", i / 10, 0, 1e9),), T0))
        trial_dir = make_trial_dir(tmp_path, name, with_model=i == 0)
        writer.apply(TrialEnded(name, TrialPhase.SUCCEEDED, {"accuracy": i / 10}, trial_dir, T0))
    writer.apply(
        ExperimentEnded(
            ExperimentPhase.SUCCEEDED,
            ExperimentReason.MAX_TRIALS_REACHED,
            f"digits-{trials - 1}",
            {},
            T0 + 1,
        )
    )


def check_runs(uri: str, trials: int, tmp_path: Path) -> None:
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("digits")
    assert experiment is not None
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert len(runs) == trials + 1
    parent = runs.pop("digits")
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["hyperflow.best_run_id"] == runs[f"digits-{trials - 1}"].info.run_id
    for name, run in runs.items():
        i = int(name.removeprefix("digits-"))
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["hyperflow.status"] == "Succeeded"
        assert run.data.params["lr"] == str(0.01 * (i + 1))
        assert run.data.metrics == {"accuracy": i / 10, "final_accuracy": i / 10}
        files = {f.path for f in client.list_artifacts(run.info.run_id)}
        assert files == ({"trial.log", "model"} if i == 0 else {"trial.log"})
        log = client.download_artifacts(run.info.run_id, "trial.log", str(tmp_path / name))
        assert Path(log).read_text() == f"{name}: accuracy=0.9\n"


def test_the_writer_inserts_trials_that_ended_since_the_last_cycle_in_bulk(
    store: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri, root = store
    created: list[object] = []
    original = MlflowClient.create_run

    def counting(self: MlflowClient, *args: Any, **kwargs: Any) -> Any:
        created.append(kwargs.get("run_name"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "create_run", counting)
    writer = MlflowWriter(uri, root)
    writer.apply(ExperimentStarted(EXPERIMENT, UID, T0))
    writer.apply(TrialStarted("digits-long", {"lr": 0.5, "optimizer": "sgd"}, T0))
    writer.sync()  # a trial still running at a cycle gets its run through the API at once
    assert created == ["digits", "digits-long"]
    writer.apply(TrialEnded("digits-long", TrialPhase.KILLED, {}, None, T0 + 9))
    short_experiment(writer, tmp_path, trials=20)
    writer.sync()
    assert created == ["digits", "digits-long"], "short trials went through the API one by one"
    client = MlflowClient(tracking_uri=uri)
    long_id = writer.run_id("digits-long")
    assert long_id is not None
    assert client.get_run(long_id).info.status == "KILLED"
    client.delete_run(long_id)  # out of the way of check_runs' count
    check_runs(uri, 20, tmp_path)


@pytest.mark.parametrize("failure", ["schema", "locked"])
def test_a_failed_bulk_insert_falls_back_to_the_api_or_is_retried(
    store: tuple[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    failure: str,
) -> None:
    uri, root = store
    calls = 0
    original = BulkRunWriter.insert

    def failing(self: BulkRunWriter, *args: Any) -> None:
        nonlocal calls
        calls += 1
        if failure == "schema":  # an MLflow whose tables differ: every insert fails
            raise ProgrammingError("INSERT", {}, Exception("no such column: runs.name"))
        if calls == 1:  # a locked database: the next attempt works
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        original(self, *args)

    monkeypatch.setattr(BulkRunWriter, "insert", failing)
    writer = MlflowWriter(uri, root)
    short_experiment(writer, tmp_path, trials=5)
    with caplog.at_level(logging.WARNING, logger="tuner.tracking"):
        if failure == "schema":
            writer.sync()  # falls back within the same cycle
            assert any("using its API" in r.getMessage() for r in caplog.records)
        else:
            with pytest.raises(OperationalError):
                writer.sync()  # the tracker retries a cycle that raised
            writer.sync()
    assert calls == (1 if failure == "schema" else 2)
    check_runs(uri, 5, tmp_path)
