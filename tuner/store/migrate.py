"""Schema migrations (alembic) for every package that owns tables in the store.

Each package owns its tables and their history: a :class:`Schema` names the package's
migration scripts (an alembic script folder with ``env.py`` and ``versions/``), the
version table alembic records its revision in (one per package, so packages upgrade
independently and a lower layer never needs to know the revisions of a higher one), and
its ``MetaData`` (what ``alembic revision --autogenerate`` compares against). The
composition root lists the schemas of every package it runs and calls
:func:`upgrade_all`; the tuner's :class:`~tuner.store.Store` upgrades the tuner's own
schema when it opens a store, so ``experiment run`` and ``tune()`` work without a server.

Stores made before migrations existed (tables created by ``create_all``, no version
table) are recognised by ``Schema.baseline_table`` and stamped at ``Schema.baseline``
(the first migration, which creates exactly those tables), then upgraded in place.

Opening an up-to-date store costs one ``SELECT`` of the version table: alembic is
imported only when something has to change. Two processes opening a fresh store at once
are serialised by a lock (a lock file next to a SQLite database, an advisory lock on
PostgreSQL), so neither sees the other's half-made schema.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError


@dataclass(frozen=True)
class Schema:
    """One package's tables and their migrations."""

    name: str
    script_location: Path
    version_table: str
    metadata: MetaData
    # The newest revision: checked against the scripts by a test, used for the fast path.
    head: str
    # The revision that created the tables a store made before migrations already has,
    # and a table whose presence (without a version table) says the store is such a one.
    baseline: str | None = None
    baseline_table: str | None = None


class MigrationError(RuntimeError):
    """The store's schema is newer than this code, or an upgrade failed."""


def current_revision(connection: Connection, schema: Schema) -> str | None:
    """The revision recorded in the store, None if it has none (new, or pre-migrations)."""
    if not inspect(connection).has_table(schema.version_table):
        return None
    row = connection.execute(text(f"SELECT version_num FROM {schema.version_table}")).first()
    return None if row is None else str(row[0])


def upgrade(engine: Engine, schema: Schema) -> None:
    """Bring ``schema`` to its head revision in the store behind ``engine``."""
    if _at_head(engine, schema):
        return
    with _migration_lock(engine, schema), engine.connect() as connection:
        revision = current_revision(connection, schema)
        if revision == schema.head:  # another process upgraded it while we waited
            return
        _run_upgrade(connection, schema, revision)


def upgrade_all(engine: Engine, schemas: Sequence[Schema]) -> None:
    """Upgrade each schema in order (lower layers first: higher ones may refer to them)."""
    for schema in schemas:
        upgrade(engine, schema)


def _at_head(engine: Engine, schema: Schema) -> bool:
    try:
        with engine.connect() as connection:
            row = connection.execute(
                text(f"SELECT version_num FROM {schema.version_table}")
            ).first()
    except DBAPIError:  # no version table yet
        return False
    return row is not None and row[0] == schema.head


def _run_upgrade(connection: Connection, schema: Schema, revision: str | None) -> None:
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    config = Config()
    config.set_main_option("script_location", str(schema.script_location))
    config.attributes["connection"] = connection
    config.attributes["schema"] = schema
    script = ScriptDirectory.from_config(config)
    try:
        known = revision is None or script.get_revision(revision) is not None
    except CommandError:
        known = False
    if not known:
        raise MigrationError(
            f"the store's {schema.name} schema is at revision {revision}, which this version "
            "of hyperflow does not know (the store was made by a newer version)"
        )
    if (
        revision is None
        and schema.baseline is not None
        and schema.baseline_table is not None
        and inspect(connection).has_table(schema.baseline_table)
    ):
        # Made before migrations: its tables are the baseline revision's.
        command.stamp(config, schema.baseline)
        connection.commit()
    # alembic says each step at INFO (a dozen lines on a server's first start); one line
    # here instead, at DEBUG-quiet INFO of our own logger.
    steps = logging.getLogger("alembic.runtime.migration")
    level = steps.level
    steps.setLevel(logging.WARNING)
    try:
        command.upgrade(config, "head")
    finally:
        steps.setLevel(level)
    connection.commit()
    logging.getLogger(__name__).info(
        "store: %s tables upgraded from %s to %s", schema.name, revision or "nothing", schema.head
    )


@contextlib.contextmanager
def _migration_lock(engine: Engine, schema: Schema) -> Iterator[None]:
    url = engine.url
    if url.get_backend_name() == "sqlite":
        database = url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            yield
            return
        lock_path = f"{os.path.abspath(database)}.migrate-lock"
        with open(lock_path, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return
    if url.get_backend_name() == "postgresql":
        key = zlib.crc32(f"hyperflow-migrate-{schema.name}".encode())
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                connection.commit()
        return
    yield


def run_env(metadata: MetaData, version_table: str) -> None:
    """The body of a package's alembic ``env.py``.

    Programmatic upgrades hand their connection in ``config.attributes["connection"]``;
    the ``alembic`` command line (for writing new revisions) passes the store's URL with
    ``-x url=sqlite:///...``.
    """
    from alembic import context

    config = context.config
    connection = config.attributes.get("connection")
    include = own_tables(metadata)
    if connection is not None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table=version_table,
            include_object=include,
            render_as_batch=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    from sqlalchemy import create_engine

    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise MigrationError("pass the store's URL: alembic -x url=sqlite:///path/hyperflow.db ...")
    engine = create_engine(url)
    with engine.connect() as conn:
        context.configure(
            connection=conn,
            target_metadata=metadata,
            version_table=version_table,
            include_object=include,
            render_as_batch=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        conn.commit()


def own_tables(metadata: MetaData):
    """Autogenerate compares only this package's tables: the others share the database."""
    own = set(metadata.tables)

    def include(obj, name, type_, reflected, compare_to):
        if type_ == "table":
            return name in own
        table = getattr(obj, "table", None)
        return table is None or table.name in own

    return include
