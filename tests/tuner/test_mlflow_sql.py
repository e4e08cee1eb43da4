"""The SQL run store (:mod:`tuner.tracking.mlflow_sql`) against MLflow's own client.

The writer process writes MLflow's tables itself (no ``import mlflow``: seconds of CPU
beside the trials), so these tests do every write both ways — through ``SqlRunStore`` and
through ``MlflowClient`` — on a real MLflow SQLite store, and compare everything MLflow's
client reads back; an MLflow upgrade that changes its schema fails the schema test until
the new revision is checked here and added to ``TESTED_SCHEMAS``.
"""

from __future__ import annotations

import json
import logging
import math
import pickle
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric as MlflowMetric
from mlflow.entities import Param, Run, RunTag
from mlflow.exceptions import MlflowException
from mlflow.store.db.utils import _get_latest_schema_revision
from sqlalchemy.exc import OperationalError, ProgrammingError

from tests.tuner.test_tracking import EXPERIMENT, UID, make_trial_dir
from tuner.tracking.events import (
    ExperimentEnded,
    ExperimentStarted,
    ObservationsLogged,
    TrialEnded,
    TrialStarted,
)
from tuner.tracking.layout import PlainLayout
from tuner.tracking.mlflow_sql import (
    TESTED_SCHEMAS,
    ExperimentInfo,
    FinishedRun,
    Metric,
    SqlRunStore,
    TrackingRejected,
    new_run_id,
    validate,
)
from tuner.tracking.mlflow_writer import MlflowWriter
from tuner.tracking.probe import migration_heads
from tuner.types import ExperimentPhase, ExperimentReason, Observation, TrialPhase

pytestmark = [pytest.mark.timeout(120), pytest.mark.filterwarnings("ignore:::mlflow.*")]

T0 = 1_700_000_000_000
USER = "ada"


def finished_run(name: str) -> FinishedRun:
    return FinishedRun(
        run_name=name,
        start_ms=T0,
        end_ms=T0 + 5_000,
        status="FAILED",
        params={"lr": "0.01", "optimizer": "adam"},
        tags={"hyperflow.trial": name, "team": "vision", "mlflow.user": USER},
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


def mlflow_metrics(metrics: list[Metric]) -> list[MlflowMetric]:
    return [MlflowMetric(m.key, m.value, m.timestamp, m.step) for m in metrics]


def via_api(client: MlflowClient, experiment_id: str, run: FinishedRun) -> str:
    created = client.create_run(
        experiment_id, start_time=run.start_ms, tags=run.tags, run_name=run.run_name
    )
    run_id = created.info.run_id
    client.log_batch(
        run_id,
        metrics=mlflow_metrics(run.metrics),
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


def open_sql(uri: str) -> SqlRunStore:
    sql = SqlRunStore.open(uri, user=USER)
    assert sql is not None, "the SQL writer refused the installed MLflow's store"
    return sql


def experiment_info(client: MlflowClient, experiment_id: str) -> ExperimentInfo:
    found = client.get_experiment(experiment_id)
    return ExperimentInfo(found.experiment_id, found.lifecycle_stage, found.artifact_location)


def test_the_installed_mlflow_schema_is_one_the_sql_writer_is_tested_with() -> None:
    head = _get_latest_schema_revision()
    assert migration_heads()[0] == head  # read from the scripts' text, without mlflow
    assert head in TESTED_SCHEMAS, (
        f"MLflow's schema is now {head}: check tuner/tracking/mlflow_sql.py's writes against "
        "it (this file's tests), then add it to TESTED_SCHEMAS"
    )


@pytest.mark.parametrize("revision", ["0123456789ab", "previous"])
def test_a_store_at_another_schema_revision_is_written_through_mlflows_api(
    store: tuple[str, Path], revision: str
) -> None:
    uri, root = store
    db = uri.removeprefix("sqlite:///")
    if revision == "previous":  # a store one migration behind the installed MLflow
        script = next(
            p
            for p in (
                Path(sys.modules["mlflow"].__file__).parent / "store" / "db_migrations" / "versions"
            ).glob("*.py")
            if f'revision = "{_get_latest_schema_revision()}"' in p.read_text()
        )
        revision = script.read_text().split('down_revision = "', 1)[1].split('"', 1)[0]
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    assert SqlRunStore.open(uri, user=USER) is None
    writer = MlflowWriter(uri, root)
    writer.apply(ExperimentStarted(EXPERIMENT, UID, T0))
    with pytest.raises(MlflowException, match="schema"):
        writer.sync()  # MLflow itself refuses the store, and says why
    assert writer._bulk is None


def test_an_experiment_created_in_sql_reads_back_like_one_created_by_mlflow(
    store: tuple[str, Path],
) -> None:
    uri, root = store
    client = MlflowClient(tracking_uri=uri)
    sql = open_sql(uri)
    tags = {"hyperflow.uid": "u1", "team": "vision"}
    api_id = client.create_experiment("by-api", artifact_location=(root / "a").as_uri(), tags=tags)
    sql_id = sql.create_experiment("by-sql", (root / "b").as_uri(), tags)
    api, mine = client.get_experiment(api_id), client.get_experiment(sql_id)
    assert client.get_experiment_by_name("by-sql").experiment_id == sql_id
    assert mine.tags == api.tags
    assert mine.lifecycle_stage == api.lifecycle_stage == "active"
    assert mine.artifact_location == (root / "b").as_uri()
    assert abs(mine.creation_time - api.creation_time) < 60_000
    assert mine.last_update_time == mine.creation_time
    assert sql.experiment_by_name("by-api") == experiment_info(client, api_id)
    assert sql.experiment_location(sql_id) == mine.artifact_location
    with pytest.raises(TrackingRejected) as taken:
        sql.create_experiment("by-api", (root / "c").as_uri(), {})
    assert taken.value.error_code == "RESOURCE_ALREADY_EXISTS"
    client.delete_experiment(sql_id)
    assert sql.experiment_by_name("by-sql").lifecycle_stage == "deleted"
    # MLflow can use it like its own.
    client.restore_experiment(sql_id)
    client.set_experiment_tag(sql_id, "reviewed", "yes")
    assert client.get_experiment(sql_id).tags["reviewed"] == "yes"


def test_a_run_written_call_by_call_in_sql_reads_back_like_one_written_by_mlflow(
    store: tuple[str, Path], tmp_path: Path
) -> None:
    uri, root = store
    client = MlflowClient(tracking_uri=uri)
    sql = open_sql(uri)
    experiment_id = client.create_experiment("calls", artifact_location=(root / "calls").as_uri())
    experiment = experiment_info(client, experiment_id)
    run = finished_run("trial-a")
    first, second = run.metrics[:4], run.metrics[4:]
    tags = dict(run.tags)

    api_id = client.create_run(
        experiment_id, start_time=T0, tags=tags, run_name="trial-a"
    ).info.run_id
    client.log_batch(
        api_id,
        metrics=mlflow_metrics(first),
        params=[Param("lr", "0.01")],
        tags=[RunTag("stage", "1")],
    )
    client.log_batch(
        api_id,
        metrics=mlflow_metrics(second + first[:1]),  # a re-sent value: stored once
        params=[Param("lr", "0.01"), Param("optimizer", "adam")],  # same value again: fine
        tags=[RunTag("stage", "2")],
    )
    client.update_run(api_id, status="RUNNING")
    client.set_terminated(api_id, status="FAILED", end_time=T0 + 5_000)

    sql_id, artifact_uri = sql.create_run(experiment, "trial-a", T0, tags)
    sql.log_batch(sql_id, first, {"lr": "0.01"}, {"stage": "1"})
    sql.log_batch(sql_id, second + first[:1], {"lr": "0.01", "optimizer": "adam"}, {"stage": "2"})
    sql.set_status(sql_id, "RUNNING", None)
    sql.set_status(sql_id, "FAILED", T0 + 5_000)

    expected = comparable(client, client.get_run(api_id))
    assert expected["latest"] == {"loss": 0.7, "accuracy": "nan", "grad": 1.7976931348623157e308}
    assert comparable(client, client.get_run(sql_id)) == expected
    assert client.get_run(sql_id).info.artifact_uri == artifact_uri

    # A changed param is refused, as MLflow refuses it, and nothing of that batch is kept.
    with pytest.raises(MlflowException) as theirs:
        client.log_batch(
            api_id, metrics=mlflow_metrics([Metric("x", 1.0, T0, 0)]), params=[Param("lr", "9")]
        )
    with pytest.raises(TrackingRejected) as mine:
        sql.log_batch(sql_id, [Metric("x", 1.0, T0, 0)], {"lr": "9"}, {})
    assert mine.value.error_code == theirs.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "x" not in client.get_run(sql_id).data.metrics

    # Artifacts land where MLflow's client lists and downloads them.
    trial_dir = make_trial_dir(tmp_path, "trial-a", with_model=True)
    sql.log_text(sql_id, artifact_uri, "hello", "notes/readme.txt")
    sql.log_files(sql_id, artifact_uri, trial_dir / "trial.log", trial_dir / "artifacts")
    client.log_text(api_id, "hello", "notes/readme.txt")
    client.log_artifact(api_id, str(trial_dir / "trial.log"))
    client.log_artifacts(api_id, str(trial_dir / "artifacts"))

    def artifacts(run_id: str, path: str | None = None) -> list[tuple[str, bool]]:
        found = []
        for f in client.list_artifacts(run_id, path):
            found.append((f.path, f.is_dir))
            if f.is_dir:
                found.extend(artifacts(run_id, f.path))
        return sorted(found)

    assert artifacts(sql_id) == artifacts(api_id)
    got = client.download_artifacts(sql_id, "model/weights.txt", str(tmp_path / "dl"))
    assert Path(got).read_text() == "w"

    # find_runs sees what MLflow's search sees.
    found = {r.run_id: r for r in sql.find_runs(experiment_id, "team", "vision")}
    searched = client.search_runs([experiment_id], "tags.team = 'vision'")
    assert set(found) == {r.info.run_id for r in searched} == {api_id, sql_id}
    for r in searched:
        assert found[r.info.run_id].params == r.data.params
        assert found[r.info.run_id].tags == r.data.tags
        assert found[r.info.run_id].status == r.info.status

    # A deleted run is refused, as MLflow refuses it.
    client.delete_run(sql_id)
    with pytest.raises(TrackingRejected) as refused:
        sql.set_status(sql_id, "FINISHED", T0)
    assert refused.value.error_code == "INVALID_STATE"
    assert sql.find_runs(experiment_id, "team", "vision")[0].run_id == api_id


def test_whole_runs_inserted_in_sql_read_back_like_ones_written_by_mlflow(
    store: tuple[str, Path],
) -> None:
    uri, root = store
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment("bulk", artifact_location=(root / "bulk").as_uri())
    sql = open_sql(uri)

    api_id = via_api(client, experiment_id, finished_run("trial-a"))
    bulk_ids = [new_run_id() for _ in range(3)]
    sql.insert_finished(
        experiment_info(client, experiment_id),
        {run_id: finished_run("trial-a") for run_id in bulk_ids},
    )

    expected = comparable(client, client.get_run(api_id))
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
    experiment = experiment_info(client, experiment_id)
    sql = open_sql(uri)
    taken = new_run_id()
    sql.insert_finished(experiment, {taken: finished_run("first")})
    with pytest.raises(Exception, match=r"UNIQUE|unique|IntegrityError"):
        # The second run's id collides: neither of the two runs is written.
        sql.insert_finished(
            experiment, {new_run_id(): finished_run("second"), taken: finished_run("again")}
        )
    assert [r.info.run_name for r in client.search_runs([experiment_id])] == ["first"]
    client.delete_experiment(experiment_id)
    with pytest.raises(TrackingRejected, match="active") as refused:
        sql.insert_finished(experiment, {new_run_id(): finished_run("late")})
    assert refused.value.error_code == "INVALID_STATE"


BAD_BATCHES: list[tuple[list[Metric], dict[str, str], dict[str, str]]] = [
    ([Metric("loss", 1.0, T0, "one")], {}, {}),  # type: ignore[arg-type]
    ([Metric("loss", "high", T0, 0)], {}, {}),  # type: ignore[arg-type]
    ([Metric("bad|name", 1.0, T0, 0)], {}, {}),
    ([Metric("../up", 1.0, T0, 0)], {}, {}),
    ([Metric("/abs", 1.0, T0, 0)], {}, {}),
    ([Metric("loss", 1.0, -1, 0)], {}, {}),
    ([Metric("loss", True, T0, 0)], {}, {}),  # type: ignore[arg-type]
    ([Metric("m" * 251, 1.0, T0, 0)], {}, {}),
    ([], {"k" * 251: "v"}, {}),
    ([], {"": "v"}, {}),
    ([], {".": "v"}, {}),
    ([], {}, {"a//b": "v"}),
]
GOOD_BATCHES: list[tuple[list[Metric], dict[str, str], dict[str, str]]] = [
    ([Metric("a/b.c-d e_f:g", 1, T0, 0), Metric("n", float("nan"), T0, -1)], {}, {}),
    ([Metric("loss", 1.0, 1.5, 2.5)], {}, {}),  # type: ignore[arg-type]  # MLflow takes numbers
    ([], {"k" * 250: "v" * 6000}, {"t": "v" * 8000}),
    ([], {"p": "v" * 6001}, {"t": "v" * 8001}),  # truncated, as MLflow does by default
]


@pytest.mark.parametrize("batch", BAD_BATCHES + GOOD_BATCHES)
def test_the_sql_writer_refuses_exactly_what_mlflow_refuses(
    batch: tuple[list[Metric], dict[str, str], dict[str, str]],
) -> None:
    from mlflow.utils.validation import _validate_batch_log_data

    metrics, params, tags = batch
    theirs: Any
    try:
        _, p, t = _validate_batch_log_data(
            mlflow_metrics(metrics),
            [Param(k, v) for k, v in params.items()],
            [RunTag(k, v) for k, v in tags.items()],
        )
        theirs = ({x.key: x.value for x in p}, {x.key: x.value for x in t})
    except MlflowException as error:
        theirs = error.error_code
    mine: Any
    try:
        mine = validate(metrics, params, tags)
    except TrackingRejected as error:
        mine = error.error_code
    assert mine == theirs
    assert isinstance(mine, tuple) == (batch in GOOD_BATCHES)


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
    original = SqlRunStore.create_run

    def counting(self: SqlRunStore, experiment: Any, run_name: str, *args: Any) -> Any:
        created.append(run_name)
        return original(self, experiment, run_name, *args)

    monkeypatch.setattr(SqlRunStore, "create_run", counting)
    writer = MlflowWriter(uri, root)
    writer.apply(ExperimentStarted(EXPERIMENT, UID, T0))
    writer.apply(TrialStarted("digits-long", {"lr": 0.5, "optimizer": "sgd"}, T0))
    writer.sync()  # a trial still running at a cycle gets its run at once
    assert created == ["digits", "digits-long"]
    writer.apply(TrialEnded("digits-long", TrialPhase.KILLED, {}, None, T0 + 9))
    short_experiment(writer, tmp_path, trials=20)
    writer.sync()
    assert created == ["digits", "digits-long"], "short trials were written one by one"
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
    original = SqlRunStore.insert_finished

    def failing(self: SqlRunStore, *args: Any) -> None:
        nonlocal calls
        calls += 1
        if failure == "schema":  # an MLflow whose tables differ: every insert fails
            raise ProgrammingError("INSERT", {}, Exception("no such column: runs.name"))
        if calls == 1:  # a locked database: the next attempt works
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        original(self, *args)

    monkeypatch.setattr(SqlRunStore, "insert_finished", failing)
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


def test_the_writer_never_imports_mlflow_sqlalchemy_or_the_spec_on_a_sqlite_store(
    store: tuple[str, Path], tmp_path: Path
) -> None:
    uri, root = store
    trial_dir = make_trial_dir(tmp_path, "light-0", with_model=True)
    # Only tuner modules here: the tests' helpers import mlflow themselves.
    script = f"""
import json, pickle, sys
from pathlib import Path
from tuner.tracking.events import *
from tuner.tracking.mlflow_store import prepare_sqlite_store
from tuner.tracking.mlflow_writer import MlflowWriter
from tuner.types import *
EXPERIMENT = pickle.loads(bytes.fromhex({pickle.dumps(PlainLayout.of(EXPERIMENT, UID)).hex()!r}))
prepare_sqlite_store(Path({uri.removeprefix("sqlite:///")!r}))
writer = MlflowWriter({uri!r}, Path({str(root)!r}))
writer.apply(ExperimentStarted(EXPERIMENT, {UID!r}, {T0}))
writer.apply(TrialStarted("light-0", {{"lr": 0.5}}, {T0}))
writer.sync()  # one run the slow way (created, then logged to), one whole
writer.apply(ObservationsLogged("light-0", (Observation("accuracy", 0.5, 0, 1e9),), {T0}))
writer.apply(TrialEnded("light-0", TrialPhase.SUCCEEDED, {{}}, Path({str(trial_dir)!r}), {T0}))
writer.apply(TrialStarted("light-1", {{"lr": 0.25}}, {T0}))
writer.apply(TrialEnded("light-1", TrialPhase.FAILED, {{}}, None, {T0}))
writer.apply(
    ExperimentEnded(ExperimentPhase.SUCCEEDED, ExperimentReason.MAX_TRIALS_REACHED, "light-0", {{}}, {T0 + 1})
)
writer.sync()
heavy = ("mlflow", "pydantic", "tuner.spec", "sqlalchemy")
print(json.dumps(sorted(m for m in sys.modules if m.startswith(heavy))))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(done.stdout.splitlines()[-1]) == []
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("digits")
    assert experiment is not None
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert {name: r.info.status for name, r in runs.items()} == {
        "digits": "FINISHED",
        "light-0": "FINISHED",
        "light-1": "FAILED",
    }
    assert runs["light-0"].data.metrics["accuracy"] == 0.5
    assert runs["light-1"].data.params == {"lr": "0.25"}
    assert {f.path for f in client.list_artifacts(runs["light-0"].info.run_id)} == {
        "trial.log",
        "model",
    }


def test_through_mlflows_api_the_writer_writes_the_same_runs(
    store: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the SQL writer may not write (another schema, a server), MLflow's API does."""
    uri, root = store
    monkeypatch.setattr(SqlRunStore, "open", classmethod(lambda cls, *a, **k: None))
    writer = MlflowWriter(uri, root)
    writer.apply(ExperimentStarted(EXPERIMENT, UID, T0))
    writer.apply(TrialStarted("digits-long", {"lr": 0.5, "optimizer": "sgd"}, T0))
    writer.sync()
    writer.apply(TrialEnded("digits-long", TrialPhase.KILLED, {}, None, T0 + 9))
    short_experiment(writer, tmp_path, trials=4)
    writer.sync()
    from tuner.tracking.mlflow_api import ApiRunStore

    assert isinstance(writer._store, ApiRunStore)
    client = MlflowClient(tracking_uri=uri)
    long_id = writer.run_id("digits-long")
    assert long_id is not None
    assert client.get_run(long_id).info.status == "KILLED"
    client.delete_run(long_id)
    check_runs(uri, 4, tmp_path)


def test_a_commit_sqlite_refuses_keeps_nothing_and_the_next_write_works(
    store: tuple[str, Path],
) -> None:
    uri, _ = store
    db = uri.removeprefix("sqlite:///")
    with sqlite3.connect(db) as connection:
        connection.execute("PRAGMA journal_mode=DELETE")
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment("busy")
    experiment = experiment_info(client, experiment_id)
    sql = SqlRunStore.open(uri, user=USER, sqlite_wal=False)  # rollback journal: readers block
    assert sql is not None
    sql._db._conn.execute("PRAGMA busy_timeout=50")  # type: ignore[union-attr]
    reader = sqlite3.connect(db, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM runs").fetchall()  # holds a shared lock
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            sql.insert_finished(experiment, {new_run_id(): finished_run("blocked")})
    finally:
        reader.execute("ROLLBACK")
        reader.close()
    sql.insert_finished(experiment, {new_run_id(): finished_run("after")})
    assert [r.info.run_name for r in client.search_runs([experiment_id])] == ["after"]
    sql.close()


def test_a_trial_log_is_linked_into_the_artifacts_and_copied_where_links_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's ``trial.log`` artifact has the log's content: a hard link on the same file
    system (no copy of the data), replaced when a resumed experiment sends it again, and a
    copy where no link can be made (another file system: EXDEV)."""
    import errno
    import os

    import tuner.tracking.mlflow_sql as mlflow_sql

    log = tmp_path / "trial" / "trial.log"
    log.parent.mkdir()
    log.write_text("loss=0.5\n")
    artifacts = tmp_path / "mlartifacts" / "1" / "run" / "artifacts"
    SqlRunStore.log_files("run", artifacts.as_uri(), log, None)
    linked = artifacts / "trial.log"
    assert linked.read_text() == "loss=0.5\n"
    assert linked.stat().st_ino == log.stat().st_ino
    again = tmp_path / "again.log"
    again.write_text("loss=0.25\n")
    mlflow_sql.link_or_copy(again, linked)  # a re-send replaces it
    assert linked.read_text() == "loss=0.25\n"

    def cross_device(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(mlflow_sql.os, "link", cross_device)
    other = tmp_path / "other" / "1" / "run" / "artifacts"
    SqlRunStore.log_files("run", other.as_uri(), log, None)
    copied = other / "trial.log"
    assert copied.read_text() == "loss=0.5\n"
    assert copied.stat().st_ino != log.stat().st_ino


@pytest.mark.parametrize(
    "uri",
    [
        "file:///tmp/mlartifacts/1/abc/artifacts",
        "file:///tmp/with%20space/r%C3%A9sum%C3%A9/artifacts",
        "file:///tmp/x;y/z",
        "file:///tmp/q?x=1",
        "file://localhost/tmp/a",
        "/tmp/plain/path",
    ],
)
def test_a_local_artifact_location_is_the_folder_mlflow_reads(uri: str) -> None:
    """The fast way for ``file:///`` locations (every run's) gives what MLflow gives."""
    from mlflow.utils.file_utils import local_file_uri_to_path

    from tuner.tracking import mlflow_sql

    assert mlflow_sql.local_path(uri) == Path(local_file_uri_to_path(uri))


def test_only_valid_names_are_remembered_and_not_without_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tuner.tracking import mlflow_sql

    monkeypatch.setattr(mlflow_sql, "_VALID_KEYS", set())
    monkeypatch.setattr(mlflow_sql, "_VALID_KEYS_MAX", 3)
    for name in ("a", "b/c", "d", "e", "a"):
        assert mlflow_sql._check_key("tag", name) == name
    assert {"a", "b/c", "d"} == mlflow_sql._VALID_KEYS
    for bad in ("../x", "/abs", "a//b", "x" * 251, "bad*char", 7):
        for _ in range(2):  # a refused name is refused again: never remembered
            with pytest.raises(TrackingRejected):
                mlflow_sql._check_key("tag", bad)
    assert {"a", "b/c", "d"} == mlflow_sql._VALID_KEYS
