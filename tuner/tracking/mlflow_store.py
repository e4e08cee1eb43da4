"""A local SQLite MLflow store, created so that a ``kill -9`` cannot damage it.

MLflow creates its schema in place: tables, then some 60 migrations, each committed on its
own. A process killed in between leaves a database at an intermediate revision, which
MLflow then refuses for good ("out-of-date database schema", or a failing migration). So
the schema is built in a temporary file next to the store and hard-linked into place only
when complete (``link`` fails rather than replace a store another process created first);
a kill leaves at most a stray temporary file, removed by the next creation. A store that
an older hyperflow (or anything else) left half-created is rebuilt if it holds no runs,
and left alone, for MLflow to report, if it does.

Imports mlflow only to create a store: used by the tracking writer process only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from pathlib import Path

from serving.private import make_private_dirs
from tuner.pids import pid_alive
from tuner.tracking.probe import sqlite_state

logger = logging.getLogger(__name__)

_SUFFIXES = ("", "-wal", "-shm", "-journal")


def _remove(path: Path) -> None:
    for suffix in _SUFFIXES:
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()


def _state(path: Path) -> tuple[str | None, bool]:
    """(alembic schema version or None, whether it holds a run) of an existing database."""
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        return sqlite_state(db)


def _remove_stale_builds(path: Path) -> None:
    for stray in path.parent.glob(f".{path.name}.*.creating"):
        pid = stray.name.removeprefix(f".{path.name}.").removesuffix(".creating")
        if pid.isdigit() and not pid_alive(int(pid)):
            _remove(stray)


def prepare_sqlite_store(path: Path) -> None:
    """Make ``path`` a complete MLflow store (created atomically if it is not one yet)."""
    make_private_dirs(path.parent)
    _remove_stale_builds(path)  # left by a creation that was killed
    if path.exists():
        version, runs = _state(path)
        # Holding runs: MLflow itself says what it thinks of it. Only a store without runs
        # needs the installed MLflow's newest revision (reading its ~70 migration scripts:
        # milliseconds of every tracked experiment's writer otherwise).
        if runs or version == _head():
            return
        logger.warning(
            "tracking: MLflow store %s was left half-created (schema %s, no runs): rebuilding it",
            path,
            version,
        )
        _remove(path)
    build = path.parent / f".{path.name}.{os.getpid()}.creating"
    _remove(build)
    _create_schema(build)
    try:
        os.link(build, path)
    except FileExistsError:
        pass  # another process created the store meanwhile: use theirs
    finally:
        _remove(build)


def _head() -> str | None:
    """The installed MLflow's newest schema revision."""
    from tuner.tracking.probe import migration_heads

    head, _ = migration_heads()  # from the scripts' text: an existing store needs no mlflow
    if head is None:  # scripts not where they used to be: ask MLflow itself
        from mlflow.store.db.utils import _get_latest_schema_revision

        head = _get_latest_schema_revision()
    return head


def _create_schema(build: Path) -> None:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    with contextlib.closing(sqlite3.connect(build)) as db:
        db.execute("PRAGMA journal_mode=WAL")  # several times faster migrations
    store = SqlAlchemyStore(f"sqlite:///{build}", str(build.parent / "mlartifacts"))
    store.engine.dispose()
    with contextlib.closing(sqlite3.connect(build)) as db:
        # Everything into the main file, which is the one that gets linked into place.
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("PRAGMA journal_mode=DELETE")
