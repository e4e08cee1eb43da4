"""The store's schema through alembic: fresh stores, stores made before migrations, races."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from tuner.store import Store
from tuner.store.migrate import MigrationError, current_revision, own_tables
from tuner.store.models import Base
from tuner.store.schema import SCHEMA
from tuner.types import ExperimentPhase, Observation, TrialPhase

OLD_STORE = Path(__file__).parent.parent / "data" / "store-before-alembic.sql"


def _old_store(path: Path) -> str:
    """A store file as hyperflow made it before migrations (tables by create_all)."""
    with sqlite3.connect(path) as db:
        db.executescript(OLD_STORE.read_text())
    return f"sqlite:///{path}"


def _schema_diff(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": own_tables(Base.metadata)}
            )
            return list(compare_metadata(ctx, Base.metadata))
    finally:
        engine.dispose()


def test_head_constant_is_the_newest_migration() -> None:
    config = Config()
    config.set_main_option("script_location", str(SCHEMA.script_location))
    assert ScriptDirectory.from_config(config).get_heads() == [SCHEMA.head]


def test_migrations_build_exactly_the_tables_of_the_models(database_url: str) -> None:
    url = database_url
    Store(url).close()
    assert _schema_diff(url) == []


def test_a_store_made_before_migrations_upgrades_in_place(tmp_path: Path) -> None:
    url = _old_store(tmp_path / "hyperflow.db")
    with sqlite3.connect(tmp_path / "hyperflow.db") as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert SCHEMA.version_table not in tables and "tuner_experiments" in tables
    assert _schema_diff(url) != []  # the old schema lacks what 0002 adds

    store = Store(url)
    try:
        [record] = store.list_experiments()
        assert (record.name, record.phase, record.owner) == ("old", ExperimentPhase.RUNNING, None)
        first, second = store.trials(record.uid)
        assert first.phase is TrialPhase.SUCCEEDED and first.objective_value == 0.25
        assert second.phase is TrialPhase.RUNNING
        assert store.observations(first.id) == [Observation("loss", 0.25, 0, 1700000000.0)]
        # The push key committed by the old version still makes its retry a duplicate.
        assert not store.add_observations(
            first.id, [Observation("loss", 0.1, 1, 1.0)], collected=False, request_key="key-1"
        )
        third = store.add_trial(record.uid, "old-cccccccc", 2, {"x": 0.75}, "/tmp/c", "t")
        assert [t.name for t in store.trials(record.uid)][-1] == third.name
    finally:
        store.close()
    assert _schema_diff(url) == []
    engine = create_engine(url)
    with engine.connect() as conn:
        assert current_revision(conn, SCHEMA) == SCHEMA.head
    engine.dispose()


def test_a_store_from_a_newer_version_is_refused(database_url: str) -> None:
    url = database_url
    Store(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {SCHEMA.version_table} SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(MigrationError, match="9999"):
        Store(url)


def test_processes_opening_a_new_store_at_once_do_not_trip_over_each_other(
    database_url: str,
) -> None:
    url = database_url
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_store() -> None:
        barrier.wait()
        try:
            Store(url).close()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _schema_diff(url) == []


def test_a_store_of_the_previous_release_upgrades_and_keeps_its_experiments(
    database_url: str,
) -> None:
    """The previous release's schema is revision 0002 (0003 widens steps to 64 bits on
    PostgreSQL): a store taken back there, data included, upgrades in place."""
    url = database_url
    store = Store(url)
    try:
        exp = store.create_experiment("default", "kept", {"spec": {}}, None, "local")
        trial = store.add_trial(exp.uid, "kept-aaaaaaaa", 0, {"x": 0.5}, "/tmp/a", "t")
        store.add_observations(trial.id, [Observation("loss", 0.5, 7, 1.0)], collected=True)
    finally:
        store.close()
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            from alembic import command

            config = Config()
            config.set_main_option("script_location", str(SCHEMA.script_location))
            config.attributes["connection"] = connection
            config.attributes["schema"] = SCHEMA
            command.downgrade(config, "0002")
            connection.commit()
            assert current_revision(connection, SCHEMA) == "0002"
    finally:
        engine.dispose()
    store = Store(url)  # upgrades to head
    try:
        [record] = store.list_experiments()
        assert (record.namespace, record.name) == ("default", "kept")
        [kept] = store.trials(record.uid)
        assert kept.name == "kept-aaaaaaaa" and kept.assignments == {"x": 0.5}
        assert store.observations(kept.id) == [Observation("loss", 0.5, 7, 1.0)]
        # What 0003 is for: a step beyond 32 bits (a global step counter in nanoseconds).
        big = Observation("loss", 0.25, 2**40, 2.0)
        store.add_observations(kept.id, [big], collected=True)
        assert store.observations(kept.id)[-1] == big
    finally:
        store.close()
    assert _schema_diff(url) == []
