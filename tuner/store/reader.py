"""Read-only access to a SQLite store without SQLAlchemy: the read commands' path.

``hyperflow experiment list|get|describe|trials|best|logs`` only read, and importing
SQLAlchemy (its ORM) takes longer than everything else they do. On the default SQLite
store they read through :mod:`sqlite3` instead, into the very same records
(:mod:`tuner.store.records`); any other database URL goes through :class:`Store`.
``tests/tuner/test_store.py`` checks that both give equal records.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any, Protocol

from tuner.store.records import ExperimentRecord, TrialRecord, experiment_record, trial_record

_EXPERIMENTS = "tuner_experiments"
_CONDITIONS = "tuner_experiment_conditions"
_TRIALS = "tuner_trials"
_JSON = frozenset({"spec", "assignments", "metrics"})


class Reader(Protocol):
    def get_experiment(self, namespace: str, name: str) -> ExperimentRecord | None: ...

    def list_experiments(self, namespace: str | None = None) -> list[ExperimentRecord]: ...

    def trials(self, experiment_uid: str) -> list[TrialRecord]: ...

    def close(self) -> None: ...


class _Row:
    """A sqlite3 row with attribute access and JSON columns decoded (as the ORM gives)."""

    def __init__(self, row: sqlite3.Row) -> None:
        for key in row.keys():  # noqa: SIM118 - sqlite3.Row is not a mapping
            value = row[key]
            if key in _JSON and isinstance(value, str | bytes):
                value = json.loads(value)
            setattr(self, key, value)

    def __getattr__(self, name: str) -> Any:  # only reached for a column the row lacks
        raise AttributeError(name)


class SqliteReader:
    """The store's read methods over one SQLite file, opened read-only."""

    def __init__(self, path: Path) -> None:
        self._db: sqlite3.Connection | None = None
        if path.exists():
            self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
            self._db.row_factory = sqlite3.Row

    def _rows(self, sql: str, *args: Any) -> list[_Row]:
        if self._db is None:
            return []
        try:
            return [_Row(r) for r in self._db.execute(sql, args)]
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []  # a store nothing was ever written to
            raise

    def _experiment(self, row: _Row) -> ExperimentRecord:
        conditions = self._rows(
            f"SELECT * FROM {_CONDITIONS} WHERE experiment_uid = ? ORDER BY id", row.uid
        )
        return experiment_record(row, conditions)

    def get_experiment(self, namespace: str, name: str) -> ExperimentRecord | None:
        rows = self._rows(
            f"SELECT * FROM {_EXPERIMENTS} WHERE namespace = ? AND name = ?", namespace, name
        )
        return self._experiment(rows[0]) if rows else None

    def list_experiments(self, namespace: str | None = None) -> list[ExperimentRecord]:
        if namespace is None:
            rows = self._rows(f"SELECT * FROM {_EXPERIMENTS} ORDER BY created_at")
        else:
            rows = self._rows(
                f"SELECT * FROM {_EXPERIMENTS} WHERE namespace = ? ORDER BY created_at", namespace
            )
        return [self._experiment(r) for r in rows]

    def trials(self, experiment_uid: str) -> list[TrialRecord]:
        rows = self._rows(
            f"SELECT * FROM {_TRIALS} WHERE experiment_uid = ? ORDER BY seq", experiment_uid
        )
        return [trial_record(r) for r in rows]

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None


def open_reader(url: str) -> Reader:
    """A reader for the store at ``url``: :class:`SqliteReader` for a SQLite file."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and "?" not in url and url != prefix + ":memory:":
        return SqliteReader(Path(url[len(prefix) :]))
    from tuner.store.store import Store

    return Store(url)
