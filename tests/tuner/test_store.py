"""The store against a real SQLite file and a real PostgreSQL database (``database_url``
runs each test on both): records, counts, claims, cascade deletes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tuner.store import ExperimentExists, Store, StoreError
from tuner.types import ExperimentPhase, Observation, TrialPhase


@pytest.fixture
def store(database_url: str) -> Store:
    s = Store(database_url)
    yield s
    s.close()


def _experiment(store: Store, name: str = "exp") -> str:
    return store.create_experiment("default", name, {"spec": {"x": 1}}, None, "local").uid


def test_experiment_lifecycle_records_conditions(store: Store) -> None:
    uid = _experiment(store)
    store.set_experiment_phase(uid, ExperimentPhase.RUNNING, "ExperimentRunning", "running")
    store.set_experiment_phase(uid, ExperimentPhase.RUNNING, "ExperimentRunning", "running")
    store.set_experiment_phase(uid, ExperimentPhase.SUCCEEDED, "ExperimentMaxTrialsReached", "done")
    record = store.get_experiment("default", "exp")
    assert record is not None
    assert record.phase is ExperimentPhase.SUCCEEDED
    assert [c.type for c in record.conditions] == ["Created", "Running", "Succeeded"]
    assert record.started_at is not None and record.completed_at is not None


def test_names_are_unique_per_namespace(store: Store) -> None:
    _experiment(store)
    store.create_experiment("other", "exp", {}, None, "local")
    with pytest.raises(ExperimentExists, match="default/exp already exists"):
        _experiment(store)


def test_trials_and_observations(store: Store) -> None:
    uid = _experiment(store)
    t = store.add_trial(uid, "exp-a", 0, {"lr": 0.1}, "/tmp/x", "tok")
    assert t.phase is TrialPhase.CREATED
    store.add_observations(
        t.id, [Observation("loss", 1.0, 0, 1.0), Observation("loss", 0.5, 1, 2.0)], collected=True
    )
    store.add_observations(t.id, [Observation("acc", 0.9, None, 3.0)], collected=False)
    store.set_trial_phase(t.id, TrialPhase.RUNNING, "TrialRunning")
    store.set_trial_phase(
        t.id,
        TrialPhase.SUCCEEDED,
        "TrialSucceeded",
        exit_code=0,
        metrics={"loss": {}},
        objective_value=0.5,
    )
    [record] = store.trials(uid)
    assert record.observation_count == 3 and record.collected_count == 2
    assert record.phase is TrialPhase.SUCCEEDED and record.objective_value == 0.5
    assert record.started_at is not None and record.completed_at is not None
    assert [o.value for o in store.observations(t.id)] == [1.0, 0.5, 0.9]
    store.delete_experiment(uid)
    assert store.trials(uid) == []
    assert store.observations(t.id) == []


def test_claim_refuses_a_live_other_controller(store: Store) -> None:
    uid = _experiment(store)
    store.claim(uid, os.getppid())  # a live process that is not us
    with pytest.raises(StoreError, match="being run by another process"):
        store.claim(uid, os.getpid())
    store.release(uid, os.getppid())
    store.claim(uid, os.getpid())


def test_claim_takes_over_from_a_dead_controller(store: Store) -> None:
    uid = _experiment(store)
    store.claim(uid, 2**22 + 12345)  # no such pid
    store.claim(uid, os.getpid())
    assert store.get_experiment_by_uid(uid).controller_pid == os.getpid()


def test_a_push_request_key_stores_its_observations_once(database_url: str) -> None:
    url = database_url
    store = Store(url)
    uid = _experiment(store)
    t = store.add_trial(uid, "exp-a", 0, {}, "/tmp/x", "tok")
    other = store.add_trial(uid, "exp-b", 1, {}, "/tmp/y", "tok")
    loss = [Observation("loss", 0.5, 0, 1.0)]
    assert store.add_observations(t.id, loss, collected=False, request_key="k1")
    assert not store.add_observations(t.id, loss, collected=False, request_key="k1")
    assert store.add_observations(other.id, loss, collected=False, request_key="k1")  # per trial
    store.close()
    # The retry reaches a restarted controller: the key was committed with the values.
    store = Store(url)
    assert not store.add_observations(t.id, loss, collected=False, request_key="k1")
    assert store.add_observations(t.id, loss, collected=False, request_key="k2")
    [a, b] = store.trials(uid)
    assert (a.observation_count, b.observation_count) == (2, 1)
    assert len(store.observations(t.id)) == 2
    # not mistaken for a duplicate (SQLite: FOREIGN KEY ..., PostgreSQL: ... foreign key ...)
    with pytest.raises(Exception, match=r"(?i)foreign key"):
        store.add_observations(999, loss, collected=False, request_key="k1")
    store.delete_experiment(uid)
    with store.engine.connect() as conn:  # keys go with their trials
        assert conn.exec_driver_sql("SELECT count(*) FROM tuner_push_requests").scalar() == 0
    store.close()


def test_reset_trial_observations(store: Store) -> None:
    uid = _experiment(store)
    t = store.add_trial(uid, "exp-a", 0, {}, "/tmp/x", "tok")
    store.add_observations(t.id, [Observation("loss", 1.0, 0, 1.0)], collected=True)
    store.reset_trial_observations(t.id)
    [record] = store.trials(uid)
    assert (
        store.observations(t.id) == [] and record.observation_count == record.collected_count == 0
    )


def test_the_sqlite_reader_gives_the_stores_own_records(tmp_path: Path) -> None:
    """The read commands read a SQLite store without SQLAlchemy: same records, field by field."""
    from tuner.store.reader import SqliteReader, open_reader

    path = tmp_path / "store.db"
    store = Store(f"sqlite:///{path}")
    try:
        a = store.create_experiment("default", "a", {"spec": {"x": [1, 2]}}, "/base", "local").uid
        store.create_experiment("team", "b", {"spec": {}}, None, "function")
        store.set_experiment_phase(a, ExperimentPhase.RUNNING, "ExperimentRunning", "running")
        store.set_experiment_phase(a, ExperimentPhase.FAILED, "ExperimentFailed", "boom")
        trial = store.add_trial(a, "a-1", 0, {"lr": 0.1, "opt": "sgd", "n": 3}, "/t/a-1", "tok")
        store.add_trial(a, "a-2", 1, {"lr": 0.2, "opt": "adam", "n": 1}, "/t/a-2", "tok2")
        store.set_trial_phase(trial.id, TrialPhase.RUNNING, "TrialRunning")
        store.set_trial_phase(
            trial.id,
            TrialPhase.SUCCEEDED,
            "TrialSucceeded",
            "ok",
            exit_code=0,
            metrics={"loss": {"min": 0.1, "max": 0.3, "latest": 0.2}},
            objective_value=0.2,
        )
        store.add_observations(trial.id, [Observation("loss", 0.2, 0, 1.0)], collected=True)
        reader = open_reader(f"sqlite:///{path}")
        assert isinstance(reader, SqliteReader)
        try:
            assert reader.list_experiments() == store.list_experiments()
            assert reader.list_experiments("team") == store.list_experiments("team")
            assert reader.get_experiment("default", "a") == store.get_experiment("default", "a")
            assert reader.get_experiment("default", "nope") is None
            assert reader.trials(a) == store.trials(a)
            assert reader.trials(a)[0].metrics == {"loss": {"min": 0.1, "max": 0.3, "latest": 0.2}}
        finally:
            reader.close()
    finally:
        store.close()
    assert SqliteReader(tmp_path / "absent.db").list_experiments() == []


def test_the_sqlite_group_commit_writes_the_rows_the_core_path_writes(tmp_path: Path) -> None:
    """On SQLite, ``Store.commit`` runs its statements on the DB-API connection
    (``tuner/store/sqlite_batch.py``); the same batches through SQLAlchemy Core
    (``commit_core``) store the very same values."""
    import sqlite3

    from tuner.store import TrialRecord
    from tuner.store.batch import Batch

    def batches(store: Store, commit: Any) -> None:
        uid = _experiment(store)
        trials = [
            TrialRecord(
                id=0,
                experiment_uid=uid,
                name=f"t{i}",
                seq=i,
                assignments={"x": 0.5 + i, "opt": 'a"b'},
                phase=TrialPhase.CREATED,
                reason="TrialCreated",
                message="Trial is created",
                trial_dir=f"/trials/t{i}",
                push_token=f"tok{i}",
                exit_code=None,
                metrics=None,
                objective_value=None,
                observation_count=0,
                collected_count=0,
                created_at=100.0 + i,
                started_at=None,
                completed_at=None,
            )
            for i in range(4)
        ]
        first = Batch()
        first.add_trial(trials[0])
        first.add_trial(trials[1])
        first.set_trial_phase(
            trials[1], TrialPhase.FAILED, "TrialFailed", "out: \x00 bad", at=101.5, exit_code=3
        )
        first.add_observations(
            trials[0], [Observation("loss", 0.75, 0, 102.0), Observation("acc", 1.0, None, 102.5)],
            collected=True,
        )  # fmt: skip
        commit(first)
        running = Batch()
        running.set_trial_phase(trials[0], TrialPhase.RUNNING, "TrialRunning", "Trial is running", at=103.0, lazy=True)  # fmt: skip
        commit(running)
        last = Batch()
        last.add_observations(trials[0], [Observation("loss", 0.25, 1, 104.0)], collected=False)
        last.set_trial_phase(
            trials[0], TrialPhase.SUCCEEDED, "TrialSucceeded", "done", at=105.0, exit_code=0,
            metrics={"loss": {"latest": 0.25, "min": 0.25}}, objective_value=0.25,
        )  # fmt: skip
        last.add_trial(trials[2])
        commit(last)
        assert [t.id for t in trials] == [1, 2, 3, 0]
        withdrawn = Batch()
        withdrawn.remove_trial(trials[2])  # stored: its row is deleted
        withdrawn.add_trial(trials[3])
        withdrawn.remove_trial(trials[3])  # never stored: not inserted at all
        assert withdrawn and trials[3].id == 0
        commit(withdrawn)
        assert trials[3].id == 0

    tables = {}
    for name in ("raw", "core"):
        store = Store(f"sqlite:///{tmp_path / name}.db")
        assert store._sqlite_batches is not None  # commit() takes the DB-API path
        try:
            batches(store, store.commit if name == "raw" else store.commit_core)
        finally:
            store.close()
        with sqlite3.connect(tmp_path / f"{name}.db") as db:
            tables[name] = [
                db.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
                for table in ("tuner_trials", "tuner_observations")
            ]
    raw_trials, raw_observations = tables["raw"]
    core_trials, core_observations = tables["core"]
    # The experiments' uids differ (random); everything else is the same, value for value.
    assert [r[:1] + r[2:] for r in raw_trials] == [r[:1] + r[2:] for r in core_trials]
    assert raw_observations == core_observations
    assert [r[0] for r in raw_trials] == [1, 2] and len(raw_observations) == 3
    assert any("\ufffd" in str(v) for v in raw_trials[1])  # the NUL replaced, as Message does


def test_the_sqlite_batch_writer_refuses_a_column_type_it_does_not_convert() -> None:
    from sqlalchemy import Column, DateTime, Integer, MetaData, Table

    from tuner.store.sqlite_batch import converters

    table = Table("t", MetaData(), Column("id", Integer), Column("at", DateTime))
    with pytest.raises(ValueError, match=r"t\.at: type DateTime"):
        converters(table)


def test_a_new_home_is_its_owners_alone(tmp_path: Path) -> None:
    """It holds every namespace's store, logs, models and push tokens (0755 before)."""
    from tuner.settings import TunerSettings

    home = tmp_path / "deep" / "home"
    TunerSettings(home=home).ensure_home()
    assert home.stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "deep").stat().st_mode & 0o777 == 0o700  # each folder made on the way
    # Whichever command comes first: the store's engine makes it so too.
    other = tmp_path / "other"
    Store(TunerSettings(home=other).store_url).close()
    assert other.stat().st_mode & 0o777 == 0o700
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o750)
    shared.chmod(0o750)
    TunerSettings(home=shared).ensure_home()
    assert shared.stat().st_mode & 0o777 == 0o750  # an existing one keeps its mode
