"""MLflow's tracking tables written with SQLAlchemy Core: the writer without ``import mlflow``.

Importing mlflow costs about 2 s of CPU, and each call of its public API is several ORM
sessions (about 10 ms of CPU per run). The writer process runs beside the trials, so on a
SQL tracking store (SQLite, PostgreSQL, MySQL) it writes MLflow's rows itself: this module
needs SQLAlchemy only, and a whole cycle of runs is one transaction.

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

import logging
import math
import numbers
import os
import posixpath
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote, urlparse

from sqlalchemy import MetaData, Table, and_, create_engine, delete, event, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

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


def _check_key(kind: str, key: object) -> str:
    """MLflow's name rules (``mlflow.utils.validation``, POSIX): characters, a path that
    resolves to itself, at most 250 characters."""
    if not isinstance(key, str):
        raise TrackingRejected(f"Invalid {kind} name: {key!r}. Expected a string")
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


def _sqlite_normal_sync(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class SqlRunStore:
    """MLflow's tables in one SQL tracking store (see the module docstring). Not
    thread-safe: owned by the writer."""

    def __init__(self, engine: Engine, tables: dict[str, Table], user: str) -> None:
        self.engine = engine
        self._t = tables
        self._user = user
        self._workspace = "workspace" in tables["experiments"].c

    @classmethod
    def open(cls, uri: str, *, user: str, sqlite_wal: bool = True) -> SqlRunStore | None:
        """The store at ``uri``, or None if its tables are not the ones this writes.

        Raises what connecting raises (e.g. ``OperationalError``: retried by the caller).
        """
        engine = create_engine(uri)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_normal_sync)
            if sqlite_wal:
                with engine.connect() as connection:
                    connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        metadata = MetaData()
        try:
            with engine.connect() as connection:
                version = connection.exec_driver_sql(
                    "SELECT version_num FROM alembic_version"
                ).scalar()
            metadata.reflect(engine, only=list(_TABLES))
        except Exception:
            engine.dispose()
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
            engine.dispose()
            return None
        for name, columns in _NEEDED.items():
            table = metadata.tables.get(name)
            missing = columns - set(table.c.keys()) if table is not None else columns
            if missing:
                logger.debug("tracking: MLflow's %s lacks %s; using MLflow's API", name, missing)
                engine.dispose()
                return None
        return cls(engine, {name: metadata.tables[name] for name in _TABLES}, user)

    def close(self) -> None:
        self.engine.dispose()

    # -- experiments -----------------------------------------------------------------

    def experiment_by_name(self, name: str) -> ExperimentInfo | None:
        e = self._t["experiments"]
        query = select(e.c.experiment_id, e.c.lifecycle_stage, e.c.artifact_location).where(
            e.c.name == name
        )
        if self._workspace:
            query = query.where(e.c.workspace == DEFAULT_WORKSPACE)
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            return None
        return ExperimentInfo(str(row[0]), row[1], row[2])

    def create_experiment(self, name: str, artifact_location: str, tags: dict[str, str]) -> str:
        """A new active experiment; :class:`TrackingRejected` (RESOURCE_ALREADY_EXISTS)
        when the name is taken."""
        if not name or len(name) > MAX_EXPERIMENT_NAME_LENGTH:
            raise TrackingRejected(f"Invalid experiment name: {name!r}")
        _validate_experiment_tags(tags)
        e, et = self._t["experiments"], self._t["experiment_tags"]
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
            with self.engine.begin() as connection:
                key = connection.execute(insert(e), values).inserted_primary_key
                assert key is not None
                experiment_id = int(key[0])
                if tags:
                    connection.execute(
                        insert(et),
                        [
                            {"experiment_id": experiment_id, "key": k, "value": v}
                            for k, v in tags.items()
                        ],
                    )
        except IntegrityError:
            raise TrackingRejected(
                f"Experiment '{name}' already exists.", "RESOURCE_ALREADY_EXISTS"
            ) from None
        return str(experiment_id)

    def experiment_location(self, experiment_id: str) -> str:
        e = self._t["experiments"]
        with self.engine.connect() as connection:
            location = connection.execute(
                select(e.c.artifact_location).where(e.c.experiment_id == int(experiment_id))
            ).scalar()
        return str(location)

    # -- runs --------------------------------------------------------------------------

    def find_runs(self, experiment_id: str, tag: str, value: str) -> list[FoundRun]:
        """Active runs of the experiment whose tag ``tag`` is ``value``, newest first."""
        r, t, p = self._t["runs"], self._t["tags"], self._t["params"]
        tagged = select(t.c.run_uuid).where(t.c.key == tag, t.c.value == value)
        query = (
            select(r.c.run_uuid, r.c.status, r.c.artifact_uri)
            .where(
                r.c.experiment_id == int(experiment_id),
                r.c.lifecycle_stage == "active",
                r.c.run_uuid.in_(tagged),
            )
            .order_by(r.c.start_time.desc(), r.c.run_uuid)
        )
        with self.engine.connect() as connection:
            runs = connection.execute(query).all()
            ids = [row[0] for row in runs]
            tags: dict[str, dict[str, str]] = {i: {} for i in ids}
            params: dict[str, dict[str, str]] = {i: {} for i in ids}
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                for run_id, key, val in connection.execute(
                    select(t.c.run_uuid, t.c.key, t.c.value).where(t.c.run_uuid.in_(chunk))
                ):
                    tags[run_id][key] = val
                for run_id, key, val in connection.execute(
                    select(p.c.run_uuid, p.c.key, p.c.value).where(p.c.run_uuid.in_(chunk))
                ):
                    params[run_id][key] = val
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
        with self.engine.begin() as connection:
            self._check_experiment_active(connection, experiment.experiment_id)
            connection.execute(
                insert(self._t["runs"]),
                self._run_row(run_id, run_name, experiment, "RUNNING", start_ms, None, all_tags),
            )
            connection.execute(
                insert(self._t["tags"]),
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

    def _check_experiment_active(self, connection: Connection, experiment_id: str) -> None:
        e = self._t["experiments"]
        stage = connection.execute(
            select(e.c.lifecycle_stage).where(e.c.experiment_id == int(experiment_id))
        ).scalar()
        if stage != "active":
            raise TrackingRejected(
                f"The experiment {experiment_id} must be in the 'active' state; "
                f"it is {stage or 'missing'}",
                "INVALID_STATE",
            )

    def _check_run_active(self, connection: Connection, run_id: str) -> None:
        r = self._t["runs"]
        stage = connection.execute(
            select(r.c.lifecycle_stage).where(r.c.run_uuid == run_id)
        ).scalar()
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
        t, p = self._t["tags"], self._t["params"]
        with self.engine.begin() as connection:
            self._check_run_active(connection, run_id)
            if params:
                existing = dict(
                    connection.execute(
                        select(p.c.key, p.c.value).where(
                            p.c.run_uuid == run_id, p.c.key.in_(list(params))
                        )
                    ).all()
                )
                changed = {k: v for k, v in params.items() if k in existing and existing[k] != v}
                if changed:
                    key = next(iter(changed))
                    raise TrackingRejected(
                        f"Changing param values is not allowed. Param with key='{key}' was "
                        f"already logged with value='{existing[key]}' for run ID='{run_id}'. "
                        f"Attempted logging new value '{changed[key]}'."
                    )
                new = [
                    {"run_uuid": run_id, "key": k, "value": v}
                    for k, v in params.items()
                    if k not in existing
                ]
                if new:
                    connection.execute(insert(p), new)
            if tags:
                connection.execute(delete(t).where(t.c.run_uuid == run_id, t.c.key.in_(list(tags))))
                connection.execute(
                    insert(t), [{"run_uuid": run_id, "key": k, "value": v} for k, v in tags.items()]
                )
            if metrics:
                self._insert_metrics(connection, run_id, metrics)

    def _insert_metrics(self, connection: Connection, run_id: str, metrics: list[Metric]) -> None:
        m, lm = self._t["metrics"], self._t["latest_metrics"]
        rows, latest = _metric_rows(run_id, metrics)
        # Rows already stored (a re-sent observation) are not inserted again.
        stored = {
            (row.key, row.timestamp, row.step, bool(row.is_nan), row.value)
            for row in connection.execute(
                select(m.c.key, m.c.timestamp, m.c.step, m.c.is_nan, m.c.value).where(
                    m.c.run_uuid == run_id, m.c.key.in_(list(latest))
                )
            )
        }
        new = [
            row
            for row in rows
            if (row["key"], row["timestamp"], row["step"], row["is_nan"], row["value"])
            not in stored
        ]
        if new:
            connection.execute(insert(m), new)
        current = {
            row.key: row._mapping
            for row in connection.execute(
                select(lm.c.key, lm.c.step, lm.c.timestamp, lm.c.value).where(
                    lm.c.run_uuid == run_id, lm.c.key.in_(list(latest))
                )
            )
        }
        for key, row in latest.items():
            before = current.get(key)
            if before is None:
                connection.execute(insert(lm), row)
            elif _newer(row, before):
                connection.execute(
                    update(lm)
                    .where(and_(lm.c.run_uuid == run_id, lm.c.key == key))
                    .values(
                        value=row["value"],
                        timestamp=row["timestamp"],
                        step=row["step"],
                        is_nan=row["is_nan"],
                    )
                )

    def set_status(self, run_id: str, status: str, end_ms: int | None) -> None:
        """As ``SqlAlchemyStore.update_run_info`` (status and end time)."""
        r = self._t["runs"]
        with self.engine.begin() as connection:
            self._check_run_active(connection, run_id)
            connection.execute(
                update(r).where(r.c.run_uuid == run_id).values(status=status, end_time=end_ms)
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
        with self.engine.begin() as connection:
            self._check_experiment_active(connection, experiment.experiment_id)
            connection.execute(insert(self._t["runs"]), run_rows)
            for name, rows in (
                ("tags", tag_rows),
                ("params", param_rows),
                ("metrics", metric_rows),
                ("latest_metrics", latest_rows),
            ):
                if rows:
                    connection.execute(insert(self._t[name]), rows)

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
        root.mkdir(parents=True, exist_ok=True)
        if file is not None:
            shutil.copy2(file, root / file.name)
        if folder is not None:
            shutil.copytree(folder, root, dirs_exist_ok=True)


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
