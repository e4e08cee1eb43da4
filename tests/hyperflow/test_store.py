"""The control plane's own schema: its migrations build exactly its models' tables, and a
store of the previous version (tokens only, revision 0001) upgrades in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from hyperflow.store.models import Base
from hyperflow.store.schema import HYPERFLOW, SCHEMAS, upgrade_store
from hyperflow.store.services import ServiceStore
from tuner.store.migrate import current_revision, own_tables, upgrade


def _diff(url: str) -> list[object]:
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
    config.set_main_option("script_location", str(HYPERFLOW.script_location))
    assert ScriptDirectory.from_config(config).get_heads() == [HYPERFLOW.head]


def test_migrations_build_exactly_the_tables_of_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    engine = create_engine(url)
    try:
        upgrade_store(engine)
    finally:
        engine.dispose()
    assert _diff(url) == []


def test_a_store_of_the_previous_version_upgrades_in_place(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hyperflow.db'}"
    engine = create_engine(url)
    try:
        for schema in SCHEMAS[:-1]:
            upgrade(engine, schema)
        # What the previous version made: hyperflow's schema at 0001 (tokens), one token.
        from alembic import command

        config = Config()
        config.set_main_option("script_location", str(HYPERFLOW.script_location))
        with engine.connect() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0001")
            conn.commit()
            assert current_revision(conn, HYPERFLOW) == "0001"
        with sqlite3.connect(tmp_path / "hyperflow.db") as db:
            db.execute(
                "INSERT INTO hyperflow_tokens VALUES ('abc', 'hash', '[\"a\"]', 0, 'old', 1.0)"
            )
        upgrade_store(engine)
        with engine.connect() as conn:
            assert current_revision(conn, HYPERFLOW) == HYPERFLOW.head
        assert ServiceStore(engine).all() == []
        with sqlite3.connect(tmp_path / "hyperflow.db") as db:
            assert db.execute("SELECT id, description FROM hyperflow_tokens").fetchall() == [
                ("abc", "old")
            ]
    finally:
        engine.dispose()
    assert _diff(url) == []
