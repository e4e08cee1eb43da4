"""Every package's tables through its alembic migrations, on SQLite and on PostgreSQL.

What ``hyperflow server`` upgrades on start (``hyperflow.store.schema.SCHEMAS``) must
build exactly each package's models, record each package's head revision, and take a
store made before a package had migrations (tables from ``create_all``) in place.
"""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from hyperflow.store.schema import SCHEMAS, upgrade_store
from tuner.store import create_store_engine
from tuner.store.migrate import Schema, current_revision, own_tables


def _diff(url: str, schema: Schema) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn,
                opts={"compare_type": True, "include_object": own_tables(schema.metadata)},
            )
            return list(compare_metadata(ctx, schema.metadata))
    finally:
        engine.dispose()


def test_every_package_of_the_composition_root_has_a_schema() -> None:
    assert [s.name for s in SCHEMAS] == ["tuner", "pipelines", "hyperflow"]
    assert len({s.version_table for s in SCHEMAS}) == len(SCHEMAS)
    tables = [t for s in SCHEMAS for t in s.metadata.tables]
    assert len(tables) == len(set(tables))  # no table owned twice


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.name)
def test_head_constant_is_the_newest_migration(schema: Schema) -> None:
    config = Config()
    config.set_main_option("script_location", str(schema.script_location))
    assert ScriptDirectory.from_config(config).get_heads() == [schema.head]


def test_the_server_upgrade_builds_exactly_every_packages_models(database_url: str) -> None:
    engine = create_store_engine(database_url)
    try:
        upgrade_store(engine)
        upgrade_store(engine)  # at head: nothing to do, nothing breaks
        with engine.connect() as conn:
            for schema in SCHEMAS:
                assert current_revision(conn, schema) == schema.head, schema.name
    finally:
        engine.dispose()
    for schema in SCHEMAS:
        assert _diff(database_url, schema) == [], schema.name


def test_a_pipeline_store_made_before_its_migrations_is_stamped_and_kept(
    database_url: str,
) -> None:
    from sqlalchemy.orm import Session

    from pipelines.models import Base, PipelineRunRow
    from pipelines.schema import SCHEMA
    from pipelines.store import PipelineStore

    engine = create_store_engine(database_url)
    Base.metadata.create_all(engine)  # what PipelineStore did before migrations
    with Session(engine) as s, s.begin():
        s.add(
            PipelineRunRow(
                uid="u1",
                name="old-run",
                pipeline_name="p",
                spec={"root": {}},
                arguments={"n": 1},
                resume_key="k",
                parallelism=1,
                pipeline_root="/tmp/x",
                state="SUCCEEDED",
            )
        )
    with engine.connect() as conn:
        assert not inspect(conn).has_table(SCHEMA.version_table)
    engine.dispose()
    store = PipelineStore(database_url)
    try:
        old = store.get_run("old-run")
        assert old is not None and (old.uid, old.state, old.arguments) == (
            "u1",
            "SUCCEEDED",
            {"n": 1},
        )
        store.save_task("u1", "step", name="step", kind="container", state="SUCCEEDED")
        assert [t.path for t in store.tasks("u1")] == ["step"]
    finally:
        store.close()
    engine = create_store_engine(database_url)
    with engine.connect() as conn:
        assert current_revision(conn, SCHEMA) == SCHEMA.head
    engine.dispose()
    assert _diff(database_url, SCHEMA) == []
