"""MLflow's tracking tables written with plain SQL: the writer without ``import mlflow``.

Importing mlflow costs about 2 s of CPU, and each call of its public API is several ORM
sessions (about 10 ms of CPU per run). The writer process runs beside the trials, so on a
SQL tracking store (SQLite, PostgreSQL, MySQL) it writes MLflow's rows itself, a whole
cycle of runs in one transaction: through the standard library's ``sqlite3`` for SQLite
(importing SQLAlchemy was most of what was left of the process's start-up), through
SQLAlchemy (``text()``, the same SQL and ``:name`` parameters) elsewhere.

What it writes is what MLflow's ``SqlAlchemyStore`` writes for the same calls: the
experiment (in the ``default`` workspace), its tags, runs with the ``mlflow.runName`` tag,
MLflow's ``user_id`` and artifact URI, params (a changed value is refused, as MLflow
refuses it), tags (replaced), metrics with MLflow's NaN/inf encoding, duplicates dropped,
and ``latest_metrics`` picked by MLflow's rule; MLflow's own limits and name rules are
checked first (:func:`validate`). Artifacts of a local (``file:``) artifact location are
copied into place, as MLflow's local artifact repository does. The table definitions are
read from the database; :meth:`SqlRunStore.open` returns None — and the writer then uses
MLflow's API (:mod:`tuner.tracking.mlflow_api`) — unless the store's schema revision is
one this module is tested with (:data:`TESTED_SCHEMAS`) and the one the installed MLflow
expects, and has every column written here. ``tests/tuner/test_mlflow_sql.py`` writes
runs both ways and compares what MLflow's own client reads back for them.
"""

from __future__ import annotations

import contextlib
import logging
import math
import numbers
import os
import posixpath
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote, urlparse

logger = logging.getLogger(__name__)

ARTIFACTS_FOLDER = "artifacts"  # SqlAlchemyStore.ARTIFACTS_FOLDER_NAME
RUN_NAME_TAG = "mlflow.runName"
USER_TAG = "mlflow.user"
DEFAULT_WORKSPACE = "default"

# mlflow.utils.validation's limits.
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_EXPERIMENT_TAG_VALUE_LENGTH = 20000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_KEY_LENGTH = 250
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
_KEY = re.compile(r"^[/\w.\- :]*$")  # POSIX; MLflow on Windows refuses ":"
_FLOAT_MAX = 1.7976931348623157e308

# MLflow schema revisions (alembic) whose tables this module is tested against
# (tests/tuner/test_mlflow_sql.py): MLflow 3.17's. Any other revision is written through
# MLflow's API. A new MLflow whose schema moved fails that test until it is added here.
TESTED_SCHEMAS = frozenset({"dc11669786a5"})

_TABLES = ("experiments", "experiment_tags", "runs", "tags", "params", "metrics", "latest_metrics")
# Columns written here; a store whose tables lack one is written through MLflow's API.
_NEEDED = {
    "experiments": {
        "experiment_id", "name", "artifact_location", "lifecycle_stage", "creation_time",
        "last_update_time",
    },
    "experiment_tags": {"key", "value", "experiment_id"},
    "runs": {
        "run_uuid", "name", "source_type", "source_name", "entry_point_name", "user_id",
        "status", "start_time", "end_time", "deleted_time", "source_version",
        "lifecycle_stage", "artifact_uri", "experiment_id",
    },
    "tags": {"run_uuid", "key", "value"},
    "params": {"run_uuid", "key", "value"},
    "metrics": {"run_uuid", "key", "value", "timestamp", "step", "is_nan"},
    "latest_metrics": {"run_uuid", "key", "value", "timestamp", "step", "is_nan"},
}  # fmt: skip
_METRIC_COLUMNS = ("run_uuid", "key", "value", "timestamp", "step", "is_nan")


class Metric(NamedTuple):
    """One metric value, as ``mlflow.entities.Metric``."""

    key: str
    value: float
    timestamp: int
    step: int


class TrackingRejected(Exception):
    """MLflow would refuse this request for good (``MlflowException``'s error codes)."""

    def __init__(self, message: str, error_code: str = "INVALID_PARAMETER_VALUE") -> None:
        super().__init__(message)
        self.error_code = error_code


@dataclass
class FinishedRun:
    """A run that is complete when it is first written."""

    run_name: str
    start_ms: int
    end_ms: int
    status: str  # an MLflow RunStatus name: FINISHED, FAILED, KILLED
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ExperimentInfo:
    experiment_id: str
    lifecycle_stage: str
    artifact_location: str


@dataclass(frozen=True, slots=True)
class FoundRun:
    run_id: str
    status: str
    artifact_uri: str
    params: dict[str, str]
    tags: dict[str, str]


def new_run_id() -> str:
    return uuid.uuid4().hex  # as SqlAlchemyStore.create_run


def run_artifact_uri(experiment_artifact_location: str, run_id: str) -> str:
    """``mlflow.utils.uri.append_to_uri_path(location, run_id, "artifacts")``."""
    if "?" in experiment_artifact_location or "#" in experiment_artifact_location:
        from mlflow.utils.uri import append_to_uri_path  # rare: keep MLflow's exact rule

        return str(append_to_uri_path(experiment_artifact_location, run_id, ARTIFACTS_FOLDER))
    return f"{experiment_artifact_location.rstrip('/')}/{run_id}/{ARTIFACTS_FOLDER}"


def local_path(uri: str) -> Path | None:
    """The folder of a local artifact location (``file:`` URI or plain path), else None."""
    if uri.startswith("file:///") and "?" not in uri and "#" not in uri:
        return Path(unquote(uri[7:]))  # what urlparse gives (every run's location: the fast way)
    parsed = urlparse(uri)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return Path(unquote(parsed.path))
    if parsed.scheme == "" and uri:
        return Path(uri)
    return None


def sanitize_metric_value(value: float) -> tuple[bool, float]:
    """MLflow's storage of a metric value: (is_nan, value), +-inf as +-max float."""
    if math.isnan(value):
        return True, 0.0
    if math.isinf(value):
        return False, _FLOAT_MAX if value > 0 else -_FLOAT_MAX
    return False, value


# Names that passed _check_key (a pure check): most are the same for every run (the
# trial tags, the parameters), so each is checked once. Bounded, in case names vary freely.
_VALID_KEYS: set[str] = set()
_VALID_KEYS_MAX = 10_000


def _check_key(kind: str, key: object) -> str:
    """MLflow's name rules (``mlflow.utils.validation``, POSIX): characters, a path that
    resolves to itself, at most 250 characters."""
    if not isinstance(key, str):
        raise TrackingRejected(f"Invalid {kind} name: {key!r}. Expected a string")
    if key in _VALID_KEYS:
        return key
    if not _KEY.match(key):
        raise TrackingRejected(
            f"Invalid {kind} name: {key!r}. Names may only contain alphanumerics, "
            "underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."
        )
    norm = posixpath.normpath(key)
    if norm != key or norm == "." or norm.startswith("..") or norm.startswith("/"):
        raise TrackingRejected(
            f"Invalid {kind} name: {key!r}. Names may be treated as files in certain cases, "
            f"and must not resolve to other names when treated as such. This name would "
            f"resolve to {norm!r}"
        )
    if len(key) > MAX_KEY_LENGTH:
        raise TrackingRejected(f"{kind} name {key[:40]!r}... exceeds {MAX_KEY_LENGTH} characters")
    if len(_VALID_KEYS) < _VALID_KEYS_MAX:
        _VALID_KEYS.add(key)
    return key


def _truncate_long_values() -> bool:
    """``MLFLOW_TRUNCATE_LONG_VALUES`` (default true), read as MLflow reads it."""
    value = os.environ.get("MLFLOW_TRUNCATE_LONG_VALUES")
    if value is None:
        return True
    lowered = value.strip().lower()
    if lowered not in ("true", "false", "1", "0"):
        raise TrackingRejected(
            f"MLFLOW_TRUNCATE_LONG_VALUES value must be one of ['true', 'false', '1', '0'] "
            f"(case-insensitive), but got {value}"
        )
    return lowered in ("true", "1")


def _limited(kind: str, key: str, value: str, limit: int) -> str:
    if len(value) <= limit:
        return value
    if _truncate_long_values():
        logger.warning(
            "%s %r (%d characters) of %r is truncated to %d characters to meet MLflow's "
            "length limit",
            kind,
            value[:100] + "...",
            len(value),
            key,
            limit,
        )
        return value[:limit]
    raise TrackingRejected(f"{kind} of {key!r} exceeds the maximum length of {limit}")


def _is_number(value: object, *, bool_ok: bool) -> bool:
    return isinstance(value, numbers.Number) and (bool_ok or not isinstance(value, bool))


def validate(
    metrics: list[Metric], params: dict[str, str], tags: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """MLflow's checks of one ``log_batch``'s data (``_validate_batch_log_data``): raises
    :class:`TrackingRejected` where MLflow raises; returns the params and tags as MLflow
    stores them (values over the limit truncated, as MLflow does by default)."""
    for m in metrics:
        _check_key("metric", m.key)
        if m.value is None or not _is_number(m.value, bool_ok=False):
            raise TrackingRejected(
                f"Got invalid value {m.value!r} for metric {m.key!r}: "
                "expected a valid double (64-bit floating point)"
            )
        if not _is_number(m.timestamp, bool_ok=True) or m.timestamp < 0:
            raise TrackingRejected(
                f"Got invalid timestamp {m.timestamp!r} for metric {m.key!r}: "
                "expected a nonnegative long (64-bit integer)"
            )
        if not _is_number(m.step, bool_ok=True):
            raise TrackingRejected(
                f"Got invalid step {m.step!r} for metric {m.key!r}: "
                "expected a valid long (64-bit integer)"
            )
    checked_params = {
        _check_key("param", key): _limited("Param value", key, value, MAX_PARAM_VALUE_LENGTH)
        for key, value in params.items()
    }
    checked_tags = {
        _check_key("tag", key): _limited("Tag value", key, value, MAX_TAG_VALUE_LENGTH)
        for key, value in tags.items()
    }
    return checked_params, checked_tags


def _validate_experiment_tags(tags: dict[str, str]) -> None:
    """``_validate_experiment_tag``: no truncation, values up to 20,000 characters."""
    for key, value in tags.items():
        _check_key("tag", key)
        if len(value) > MAX_EXPERIMENT_TAG_VALUE_LENGTH:
            raise TrackingRejected(
                f"Tag value of {key!r} exceeds the maximum length of "
                f"{MAX_EXPERIMENT_TAG_VALUE_LENGTH}"
            )


def _metric_rows(run_id: str, metrics: list[Metric]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Metric rows without repeats, and the latest row per key (MLflow's rule: highest
    (step, timestamp, value))."""
    seen: set[tuple[str, int, int, bool, float]] = set()
    rows: list[dict[str, Any]] = []
    latest: dict[str, dict[str, Any]] = {}
    for metric in metrics:
        is_nan, value = sanitize_metric_value(float(metric.value))
        identity = (metric.key, metric.timestamp, metric.step, is_nan, value)
        if identity in seen:  # the metrics table's primary key: MLflow drops repeats too
            continue
        seen.add(identity)
        row = {
            "run_uuid": run_id,
            "key": metric.key,
            "value": value,
            "timestamp": metric.timestamp,
            "step": metric.step,
            "is_nan": is_nan,
        }
        rows.append(row)
        current = latest.get(metric.key)
        if current is None or _newer(row, current):
            latest[metric.key] = row
    return rows, latest


def _newer(row: dict[str, Any], than: Any) -> bool:
    return bool(
        (row["step"], row["timestamp"], row["value"])
        > (than["step"], than["timestamp"], than["value"])
    )


class _Tx:
    """One connection's statements: SQL text with ``:name`` parameters (both sqlite3 and
    SQLAlchemy's ``text()`` take them), identifiers written ``"quoted"``."""

    def __init__(self, execute: Any, executemany: Any) -> None:
        self._execute = execute
        self._executemany = executemany

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._execute(sql, params or {})]

    def scalar(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        found = self.rows(sql, params)
        return found[0][0] if found else None

    def run(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        return self._execute(sql, params or {})

    def many(self, sql: str, rows: list[dict[str, Any]]) -> None:
        if rows:
            self._executemany(sql, rows)


def _in(name: str, values: list[Any], params: dict[str, Any]) -> str:
    """``:name0, :name1, ...`` for an ``IN (...)`` list, the values added to ``params``."""
    keys = [f"{name}{i}" for i in range(len(values))]
    params.update(zip(keys, values, strict=True))
    return ", ".join(f":{k}" for k in keys)


def _insert_sql(table: str, columns: list[str]) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    values = ", ".join(f":{c}" for c in columns)
    return f'INSERT INTO "{table}" ({names}) VALUES ({values})'


# Held while a _SqliteDb of this process is inside SQLite (connecting, a read, a
# transaction, closing): every os.fork of the process (a pipeline's forked workers, while
# the run's MLflow writer thread writes) waits for it, at most _FORK_WAIT seconds. A
# forked child inherits SQLite's process-wide mutexes (its allocator's, its table of open
# files) as the fork found them; one held by the writer at that moment would never be
# released in the child, whose first SQLite call would hang. Past the bound (SQLite
# sleeping in its busy wait for another process's write lock, which holds none of those
# mutexes) the fork goes on.
_IN_SQLITE = threading.RLock()
_FORK_WAIT = 2.0
_forking = threading.local()


def _before_fork() -> None:
    _forking.held = False  # a Ctrl-C in the wait below: the fork goes on, nothing held
    _forking.held = _IN_SQLITE.acquire(timeout=_FORK_WAIT)


def _after_fork() -> None:
    if getattr(_forking, "held", False):
        _forking.held = False
        _IN_SQLITE.release()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork, after_in_child=_after_fork
    )


class _SqliteDb:
    """A SQLite store through the standard library's sqlite3 (no SQLAlchemy import: most
    of the writer process's start-up). One connection, owned by the writer. Every call
    into SQLite holds ``_IN_SQLITE`` (see above)."""

    dialect = "sqlite"

    def __init__(self, path: str, *, wal: bool) -> None:
        import sqlite3

        self._sqlite3 = sqlite3
        self.integrity_errors: tuple[type[BaseException], ...] = (sqlite3.IntegrityError,)
        with _IN_SQLITE:
            # Autocommit mode: transactions are this class's own BEGIN IMMEDIATE ... COMMIT.
            self._conn = sqlite3.connect(
                path, timeout=30, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA busy_timeout=30000")
            if wal:
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")

    def columns(self, table: str) -> set[str]:
        with _IN_SQLITE:
            return {row[1] for row in self._conn.execute(f'PRAGMA table_info("{table}")')}

    @contextlib.contextmanager
    def read(self) -> Iterator[_Tx]:
        with _IN_SQLITE:
            yield _Tx(self._conn.execute, self._conn.executemany)

    @contextlib.contextmanager
    def write(self) -> Iterator[_Tx]:
        with _IN_SQLITE:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield _Tx(self._conn.execute, self._conn.executemany)
                self._conn.execute("COMMIT")  # may fail too (busy): then nothing is kept
            except BaseException:
                if self._conn.in_transaction:
                    with contextlib.suppress(self._sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                raise

    def insert_id(self, tx: _Tx, table: str, row: dict[str, Any], key: str) -> int:
        return int(tx.run(_insert_sql(table, list(row)), row).lastrowid)

    def close(self) -> None:
        with _IN_SQLITE:
            self._conn.close()


class _AlchemyDb:
    """Any other SQL store (PostgreSQL, MySQL, ...) through SQLAlchemy."""

    def __init__(self, uri: str) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.exc import IntegrityError

        self.engine = create_engine(uri)
        self.dialect = self.engine.dialect.name
        self.integrity_errors = (IntegrityError,)

    def _sql(self, sql: str) -> Any:
        from sqlalchemy import text

        if self.dialect in ("mysql", "mariadb"):
            sql = sql.replace('"', "`")
        return text(sql)

    def _tx(self, connection: Any) -> _Tx:
        return _Tx(
            lambda sql, params: connection.execute(self._sql(sql), params),
            lambda sql, rows: connection.execute(self._sql(sql), rows),
        )

    def columns(self, table: str) -> set[str]:
        from sqlalchemy import inspect

        try:
            return {c["name"] for c in inspect(self.engine).get_columns(table)}
        except Exception:  # no such table
            return set()

    @contextlib.contextmanager
    def read(self) -> Iterator[_Tx]:
        with self.engine.connect() as connection:
            yield self._tx(connection)

    @contextlib.contextmanager
    def write(self) -> Iterator[_Tx]:
        with self.engine.begin() as connection:
            yield self._tx(connection)

    def insert_id(self, tx: _Tx, table: str, row: dict[str, Any], key: str) -> int:
        sql = _insert_sql(table, list(row))
        if self.dialect == "postgresql":
            return int(tx.scalar(f'{sql} RETURNING "{key}"', row))
        return int(tx.run(sql, row).lastrowid)  # MySQL

    def close(self) -> None:
        self.engine.dispose()


class SqlRunStore:
    """MLflow's tables in one SQL tracking store (see the module docstring). Not
    thread-safe: owned by the writer."""

    def __init__(self, db: _SqliteDb | _AlchemyDb, user: str, workspace: bool) -> None:
        self._db = db
        self._user = user
        self._workspace = workspace

    @classmethod
    def open(cls, uri: str, *, user: str, sqlite_wal: bool = True) -> SqlRunStore | None:
        """The store at ``uri``, or None if its tables are not the ones this writes.

        Raises what connecting raises (e.g. ``OperationalError``: retried by the caller).
        """
        from tuner.tracking.probe import sqlite_path

        path = sqlite_path(uri) if uri.startswith("sqlite:") else None
        db: _SqliteDb | _AlchemyDb = (
            _SqliteDb(str(path), wal=sqlite_wal) if path is not None else _AlchemyDb(uri)
        )
        try:
            if not db.columns("alembic_version"):
                # No MLflow tables yet (a new database, e.g. PostgreSQL): MLflow's API
                # creates them, and writes from then on.
                db.close()
                return None
            with db.read() as tx:
                version = tx.scalar("SELECT version_num FROM alembic_version")
            columns = {name: db.columns(name) for name in _TABLES}
        except Exception:
            db.close()
            raise
        from tuner.tracking.probe import migration_heads

        head, _ = migration_heads()
        if version not in TESTED_SCHEMAS or version != head:
            # Not a schema these writes are tested with, or not the one the installed
            # MLflow expects (which then refuses the store itself, as it should).
            logger.debug(
                "tracking: MLflow schema %s (installed MLflow: %s) is not one the SQL writer "
                "is tested with; using MLflow's API",
                version,
                head,
            )
            db.close()
            return None
        for name, needed in _NEEDED.items():
            missing = needed - columns[name]
            if missing:
                logger.debug("tracking: MLflow's %s lacks %s; using MLflow's API", name, missing)
                db.close()
                return None
        return cls(db, user, "workspace" in columns["experiments"])

    def close(self) -> None:
        self._db.close()

    # -- experiments -----------------------------------------------------------------

    def experiment_by_name(self, name: str) -> ExperimentInfo | None:
        sql = (
            'SELECT "experiment_id", "lifecycle_stage", "artifact_location" FROM "experiments" '
            'WHERE "name" = :name'
        )
        params: dict[str, Any] = {"name": name}
        if self._workspace:
            sql += ' AND "workspace" = :workspace'
            params["workspace"] = DEFAULT_WORKSPACE
        with self._db.read() as tx:
            found = tx.rows(sql, params)
        if not found:
            return None
        row = found[0]
        return ExperimentInfo(str(row[0]), row[1], row[2])

    def create_experiment(self, name: str, artifact_location: str, tags: dict[str, str]) -> str:
        """A new active experiment; :class:`TrackingRejected` (RESOURCE_ALREADY_EXISTS)
        when the name is taken."""
        if not name or len(name) > MAX_EXPERIMENT_NAME_LENGTH:
            raise TrackingRejected(f"Invalid experiment name: {name!r}")
        _validate_experiment_tags(tags)
        now = int(time.time() * 1000)
        values: dict[str, Any] = {
            "name": name,
            "artifact_location": artifact_location,
            "lifecycle_stage": "active",
            "creation_time": now,
            "last_update_time": now,
        }
        if self._workspace:
            values["workspace"] = DEFAULT_WORKSPACE
        try:
            with self._db.write() as tx:
                experiment_id = self._db.insert_id(tx, "experiments", values, "experiment_id")
                tx.many(
                    _insert_sql("experiment_tags", ["experiment_id", "key", "value"]),
                    [
                        {"experiment_id": experiment_id, "key": k, "value": v}
                        for k, v in tags.items()
                    ],
                )
        except self._db.integrity_errors:
            raise TrackingRejected(
                f"Experiment '{name}' already exists.", "RESOURCE_ALREADY_EXISTS"
            ) from None
        return str(experiment_id)

    def experiment_location(self, experiment_id: str) -> str:
        with self._db.read() as tx:
            location = tx.scalar(
                'SELECT "artifact_location" FROM "experiments" WHERE "experiment_id" = :id',
                {"id": int(experiment_id)},
            )
        return str(location)

    # -- runs --------------------------------------------------------------------------

    def find_runs(self, experiment_id: str, tag: str, value: str) -> list[FoundRun]:
        """Active runs of the experiment whose tag ``tag`` is ``value``, newest first."""
        with self._db.read() as tx:
            runs = tx.rows(
                'SELECT "run_uuid", "status", "artifact_uri" FROM "runs" '
                'WHERE "experiment_id" = :experiment AND "lifecycle_stage" = :active '
                'AND "run_uuid" IN (SELECT "run_uuid" FROM "tags" '
                'WHERE "key" = :tag AND "value" = :value) '
                'ORDER BY "start_time" DESC, "run_uuid"',
                {"experiment": int(experiment_id), "active": "active", "tag": tag, "value": value},
            )
            ids = [row[0] for row in runs]
            tags: dict[str, dict[str, str]] = {i: {} for i in ids}
            params: dict[str, dict[str, str]] = {i: {} for i in ids}
            for start in range(0, len(ids), 500):
                chunk: dict[str, Any] = {}
                where = _in("r", ids[start : start + 500], chunk)
                for table, into in (("tags", tags), ("params", params)):
                    for run_id, key, val in tx.rows(
                        f'SELECT "run_uuid", "key", "value" FROM "{table}" '
                        f'WHERE "run_uuid" IN ({where})',
                        chunk,
                    ):
                        into[run_id][key] = val
        return [FoundRun(i, status, uri, params[i], tags[i]) for i, status, uri in runs]

    def create_run(
        self,
        experiment: ExperimentInfo,
        run_name: str,
        start_ms: int,
        tags: dict[str, str],
    ) -> tuple[str, str]:
        """A RUNNING run, as ``MlflowClient.create_run``; (run id, artifact URI)."""
        run_id = new_run_id()
        _, all_tags = validate([], {}, {RUN_NAME_TAG: run_name, **tags})
        artifact_uri = run_artifact_uri(experiment.artifact_location, run_id)
        row = self._run_row(run_id, run_name, experiment, "RUNNING", start_ms, None, all_tags)
        with self._db.write() as tx:
            self._check_experiment_active(tx, experiment.experiment_id)
            tx.run(_insert_sql("runs", list(row)), row)
            tx.many(
                _insert_sql("tags", ["run_uuid", "key", "value"]),
                [{"run_uuid": run_id, "key": k, "value": v} for k, v in all_tags.items()],
            )
        return run_id, artifact_uri

    def _run_row(
        self,
        run_id: str,
        run_name: str,
        experiment: ExperimentInfo,
        status: str,
        start_ms: int,
        end_ms: int | None,
        tags: dict[str, str],
    ) -> dict[str, Any]:
        return {
            "run_uuid": run_id,
            "name": run_name,
            "source_type": "UNKNOWN",
            "source_name": "",
            "entry_point_name": "",
            # What MlflowClient.create_run passes: the deprecated user_id column holds
            # the mlflow.user tag, "unknown" without one.
            "user_id": tags.get(USER_TAG, "unknown"),
            "status": status,
            "start_time": start_ms,
            "end_time": end_ms,
            "deleted_time": None,
            "source_version": "",
            "lifecycle_stage": "active",
            "artifact_uri": run_artifact_uri(experiment.artifact_location, run_id),
            "experiment_id": int(experiment.experiment_id),
        }

    def _check_experiment_active(self, tx: _Tx, experiment_id: str) -> None:
        stage = tx.scalar(
            'SELECT "lifecycle_stage" FROM "experiments" WHERE "experiment_id" = :id',
            {"id": int(experiment_id)},
        )
        if stage != "active":
            raise TrackingRejected(
                f"The experiment {experiment_id} must be in the 'active' state; "
                f"it is {stage or 'missing'}",
                "INVALID_STATE",
            )

    def _check_run_active(self, tx: _Tx, run_id: str) -> None:
        stage = tx.scalar(
            'SELECT "lifecycle_stage" FROM "runs" WHERE "run_uuid" = :id', {"id": run_id}
        )
        if stage is None:
            raise TrackingRejected(f"Run with id={run_id} not found", "RESOURCE_DOES_NOT_EXIST")
        if stage != "active":
            raise TrackingRejected(
                f"The run {run_id} must be in the 'active' state. Current state is {stage}.",
                "INVALID_STATE",
            )

    def log_batch(
        self, run_id: str, metrics: list[Metric], params: dict[str, str], tags: dict[str, str]
    ) -> None:
        """As ``MlflowClient.log_batch``: params are written once (a different value for
        one already logged is refused, nothing of the batch is written), tags replaced."""
        params, tags = validate(metrics, params, tags)
        with self._db.write() as tx:
            self._check_run_active(tx, run_id)
            if params:
                query: dict[str, Any] = {"run": run_id}
                keys = _in("k", list(params), query)
                existing = dict(
                    tx.rows(
                        'SELECT "key", "value" FROM "params" '
                        f'WHERE "run_uuid" = :run AND "key" IN ({keys})',
                        query,
                    )
                )
                changed = {k: v for k, v in params.items() if k in existing and existing[k] != v}
                if changed:
                    key = next(iter(changed))
                    raise TrackingRejected(
                        f"Changing param values is not allowed. Param with key='{key}' was "
                        f"already logged with value='{existing[key]}' for run ID='{run_id}'. "
                        f"Attempted logging new value '{changed[key]}'."
                    )
                tx.many(
                    _insert_sql("params", ["run_uuid", "key", "value"]),
                    [
                        {"run_uuid": run_id, "key": k, "value": v}
                        for k, v in params.items()
                        if k not in existing
                    ],
                )
            if tags:
                query = {"run": run_id}
                keys = _in("k", list(tags), query)
                tx.run(f'DELETE FROM "tags" WHERE "run_uuid" = :run AND "key" IN ({keys})', query)
                tx.many(
                    _insert_sql("tags", ["run_uuid", "key", "value"]),
                    [{"run_uuid": run_id, "key": k, "value": v} for k, v in tags.items()],
                )
            if metrics:
                self._insert_metrics(tx, run_id, metrics)

    def _insert_metrics(self, tx: _Tx, run_id: str, metrics: list[Metric]) -> None:
        rows, latest = _metric_rows(run_id, metrics)
        query: dict[str, Any] = {"run": run_id}
        keys = _in("k", list(latest), query)
        # Rows already stored (a re-sent observation) are not inserted again.
        stored = {
            (key, timestamp, step, bool(is_nan), value)
            for key, timestamp, step, is_nan, value in tx.rows(
                'SELECT "key", "timestamp", "step", "is_nan", "value" FROM "metrics" '
                f'WHERE "run_uuid" = :run AND "key" IN ({keys})',
                query,
            )
        }
        tx.many(
            _insert_sql("metrics", list(_METRIC_COLUMNS)),
            [
                row
                for row in rows
                if (row["key"], row["timestamp"], row["step"], row["is_nan"], row["value"])
                not in stored
            ],
        )
        current = {
            key: {"step": step, "timestamp": timestamp, "value": value}
            for key, step, timestamp, value in tx.rows(
                'SELECT "key", "step", "timestamp", "value" FROM "latest_metrics" '
                f'WHERE "run_uuid" = :run AND "key" IN ({keys})',
                query,
            )
        }
        for key, row in latest.items():
            before = current.get(key)
            if before is None:
                tx.run(_insert_sql("latest_metrics", list(_METRIC_COLUMNS)), row)
            elif _newer(row, before):
                tx.run(
                    'UPDATE "latest_metrics" SET "value" = :value, "timestamp" = :timestamp, '
                    '"step" = :step, "is_nan" = :is_nan WHERE "run_uuid" = :run_uuid AND '
                    '"key" = :key',
                    row,
                )

    def set_status(self, run_id: str, status: str, end_ms: int | None) -> None:
        """As ``SqlAlchemyStore.update_run_info`` (status and end time)."""
        with self._db.write() as tx:
            self._check_run_active(tx, run_id)
            tx.run(
                'UPDATE "runs" SET "status" = :status, "end_time" = :end WHERE "run_uuid" = :id',
                {"status": status, "end": end_ms, "id": run_id},
            )

    def insert_finished(self, experiment: ExperimentInfo, runs: dict[str, FinishedRun]) -> None:
        """Insert whole ``runs`` (by run id) in one transaction: all of them or none."""
        run_rows: list[dict[str, Any]] = []
        tag_rows: list[dict[str, Any]] = []
        param_rows: list[dict[str, Any]] = []
        metric_rows: list[dict[str, Any]] = []
        latest_rows: list[dict[str, Any]] = []
        for run_id, run in runs.items():
            tags = {RUN_NAME_TAG: run.run_name, **run.tags}
            run_rows.append(
                self._run_row(
                    run_id, run.run_name, experiment, run.status, run.start_ms, run.end_ms, tags
                )
            )
            tag_rows.extend({"run_uuid": run_id, "key": k, "value": v} for k, v in tags.items())
            param_rows.extend(
                {"run_uuid": run_id, "key": k, "value": v} for k, v in run.params.items()
            )
            rows, latest = _metric_rows(run_id, run.metrics)
            metric_rows.extend(rows)
            latest_rows.extend(latest.values())
        with self._db.write() as tx:
            self._check_experiment_active(tx, experiment.experiment_id)
            if run_rows:
                tx.many(_insert_sql("runs", list(run_rows[0])), run_rows)
            kv = ["run_uuid", "key", "value"]
            tx.many(_insert_sql("tags", kv), tag_rows)
            tx.many(_insert_sql("params", kv), param_rows)
            tx.many(_insert_sql("metrics", list(_METRIC_COLUMNS)), metric_rows)
            tx.many(_insert_sql("latest_metrics", list(_METRIC_COLUMNS)), latest_rows)

    # -- artifacts ---------------------------------------------------------------------

    @staticmethod
    def log_text(run_id: str, artifact_uri: str | None, text: str, name: str) -> None:
        """Write ``text`` as the run's artifact ``name`` (a relative path)."""
        assert artifact_uri is not None
        folder = local_path(artifact_uri)
        if folder is None:
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                staged = Path(tmp) / Path(name).name
                staged.write_text(text, encoding="utf-8")
                log_to_repository(artifact_uri, staged, None, posixpath.dirname(name) or None)
            return
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")

    @staticmethod
    def log_files(
        run_id: str, artifact_uri: str | None, file: Path | None, folder: Path | None
    ) -> None:
        """Copy ``file`` and the contents of ``folder`` into the run's artifacts, as
        MLflow's local repository does (``log_artifact``, ``log_artifacts``); through
        MLflow's artifact repositories where the location is not local."""
        assert artifact_uri is not None
        root = local_path(artifact_uri)
        if root is None:
            log_to_repository(artifact_uri, file, folder)
            return
        os.makedirs(root, exist_ok=True)  # (no failed mkdir first, as pathlib's does)
        if file is not None:
            link_or_copy(file, root / file.name)
        if folder is not None:
            shutil.copytree(folder, root, dirs_exist_ok=True)


def link_or_copy(file: Path, target: Path) -> None:
    """``target`` with ``file``'s content: a hard link where the file system allows one (a
    finished trial's log is never written again, and the link survives the trial folder's
    removal), else a copy (``shutil.copy2``, as MLflow's local repository copies)."""
    try:
        os.link(file, target)
        return
    except FileExistsError:  # re-sent after a resume: the file is replaced, as a copy would
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)
        with contextlib.suppress(OSError):
            os.link(file, target)
            return
    except OSError:  # another file system, or one without hard links
        pass
    shutil.copy2(file, target)


def log_to_repository(
    artifact_uri: str, file: Path | None, folder: Path | None, artifact_path: str | None = None
) -> None:
    """``file`` and the contents of ``folder`` through MLflow's artifact repository for
    ``artifact_uri`` (imports mlflow: remote locations only)."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repo = get_artifact_repository(artifact_uri)
    if file is not None:
        repo.log_artifact(str(file), artifact_path)
    if folder is not None:
        repo.log_artifacts(str(folder), artifact_path)
