"""The group commit on SQLite through the DB-API connection itself.

:meth:`tuner.store.Store.commit` runs once per turn of the controller's loop, and for short
trials once per trial. Through SQLAlchemy Core, each of its statements goes through the
engine's execution machinery (compiled-cache lookup, execution context, parameter
processing, a result object): sampled in a run of 1,500 one-millisecond trials, that
machinery was about three quarters of the commit, SQLite's own work the rest. Here the
same statements are plain SQL with ``?`` parameters, prepared once per set of columns,
run on the pooled ``sqlite3`` connection of the store's engine (its pragmas: WAL,
``synchronous=NORMAL``, foreign keys, busy timeout), in one transaction.

The rows are the ones the Core path writes: the SQL is built from the tables' metadata,
every column's value goes through the conversion its SQLAlchemy type would apply (JSON
text for ``JSON``, NUL replaced for ``Message``), and a column of any other type is
refused when the writer is built (:func:`converters`), so a new column type cannot be
written differently without a test failing. PostgreSQL keeps the Core path.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import JSON, Float, Integer, String, Table, Text
from sqlalchemy.engine import Engine

from tuner.store.batch import Batch
from tuner.store.models import Message

Convert = Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


def _json(value: Any) -> str:
    # SQLAlchemy's JSON type on SQLite: json.dumps, and None as JSON null (none_as_null
    # is off), which reads back as None either way.
    return json.dumps(value)


def _message(value: Any) -> Any:
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


def converters(table: Table) -> dict[str, Convert]:
    """Per column of ``table``, what its SQLAlchemy type does to a value bound to it on
    SQLite; ValueError for a type this writer does not know."""
    out: dict[str, Convert] = {}
    for column in table.columns:
        kind = column.type
        if isinstance(kind, JSON):
            out[column.name] = _json
        elif isinstance(kind, Message):
            out[column.name] = _message
        elif isinstance(kind, (String, Text, Integer, Float)):
            out[column.name] = _same
        else:
            raise ValueError(
                f"{table.name}.{column.name}: type {kind!r} has no conversion in the SQLite "
                "batch writer (tuner/store/sqlite_batch.py)"
            )
    return out


class SqliteBatchWriter:
    """Commits a :class:`~tuner.store.batch.Batch` as :meth:`Store.commit` describes."""

    def __init__(self, engine: Engine, trials: Table, observations: Table) -> None:
        self.engine = engine
        self.trials, self.observations = trials, observations
        self._trial_conv = converters(trials)
        observation_conv = converters(observations)
        self._observation_conv = [
            observation_conv[c] for c in ("trial_id", "name", "value", "step", "timestamp")
        ]
        self._insert_observation = (
            f"INSERT INTO {observations.name} (trial_id, name, value, step, timestamp) "
            "VALUES (?, ?, ?, ?, ?)"
        )
        self._delete = f"DELETE FROM {trials.name} WHERE id = ?"
        self._inserts: dict[tuple[str, ...], str] = {}
        self._updates: dict[tuple[tuple[str, ...], bool], str] = {}

    def _insert_sql(self, columns: tuple[str, ...]) -> str:
        sql = self._inserts.get(columns)
        if sql is None:
            sql = self._inserts[columns] = (
                f"INSERT INTO {self.trials.name} ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' * len(columns))})"
            )
        return sql

    def _update_sql(self, columns: tuple[str, ...], counts: bool) -> str:
        sql = self._updates.get((columns, counts))
        if sql is None:
            sets = [f"{c} = ?" for c in columns]
            if counts:
                sets += [
                    "observation_count = observation_count + ?",
                    "collected_count = collected_count + ?",
                ]
            sql = self._updates[(columns, counts)] = (
                f"UPDATE {self.trials.name} SET {', '.join(sets)} WHERE id = ?"
            )
        return sql

    def commit(self, batch: Batch) -> None:
        """Write ``batch`` in one transaction."""
        conv = self._trial_conv
        connection = self.engine.raw_connection()  # pooled; back to the pool on close
        try:
            cursor = connection.cursor()
            try:
                updates: list[tuple[str, list[Any]]] = []
                for change in batch.changes():
                    record = change.record
                    if change.insert:
                        values = change.insert_values()
                        columns = tuple(values)
                        cursor.execute(
                            self._insert_sql(columns), [conv[c](values[c]) for c in columns]
                        )
                        assert cursor.lastrowid is not None
                        record.id = int(cursor.lastrowid)
                        continue
                    counts = bool(change.observations)
                    if not change.values and not counts:
                        continue
                    columns = tuple(sorted(change.values))
                    params = [conv[c](change.values[c]) for c in columns]
                    if counts:
                        params += [change.observations, change.collected]
                    params.append(record.id)
                    updates.append((self._update_sql(columns, counts), params))
                observations = batch.observations()
                if observations:
                    c_id, c_name, c_value, c_step, c_time = self._observation_conv
                    cursor.executemany(
                        self._insert_observation,
                        [
                            (
                                c_id(record.id),
                                c_name(o.name),
                                c_value(o.value),
                                c_step(o.step),
                                c_time(o.timestamp),
                            )
                            for record, o in observations
                        ],
                    )
                for sql, params in updates:
                    cursor.execute(sql, params)
                for record in batch.deleted():
                    cursor.execute(self._delete, (record.id,))
                connection.commit()
            except BaseException:
                connection.rollback()
                raise
            finally:
                cursor.close()
        finally:
            connection.close()
