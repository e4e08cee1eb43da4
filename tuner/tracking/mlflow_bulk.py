"""Finished trial runs into a SQL MLflow store, many runs in one transaction.

MLflow's public API writes one run at a time, and each call is several ORM sessions
(``create_run``, ``log_batch`` = params + metrics + tags, ``update_run_info``): about 10 ms
of CPU per run. With trials shorter than that, writing their runs costs more CPU than
running them. A trial that started and ended between two writer cycles is complete
before its run exists, so its whole run can be inserted at once: this module inserts all
such runs of one cycle with a single ``executemany`` per table (well under 1 ms a run).

What it writes is what the public API would write for the same run: MLflow's own
validation (``_validate_batch_log_data``) and NaN/inf handling, the ``mlflow.runName``
tag, ``latest_metrics`` rows picked by MLflow's rule, duplicate metric rows dropped, the
artifact URI MLflow would give the run. It uses MLflow's own table definitions
(``mlflow.store.tracking.dbmodels``), so it follows the installed MLflow's schema, but
that module is internal: :meth:`BulkRunWriter.for_client` returns ``None`` unless the store
is MLflow's ``SqlAlchemyStore`` with the expected tables, and the caller falls back to the
public API; ``tests/tuner/test_mlflow_bulk.py`` reads runs written both ways back through
the public API and compares them.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_STATE
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME, MLFLOW_USER
from mlflow.utils.uri import append_to_uri_path
from mlflow.utils.validation import _validate_batch_log_data
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine

logger = logging.getLogger(__name__)

_ARTIFACTS_FOLDER = "artifacts"  # SqlAlchemyStore.ARTIFACTS_FOLDER_NAME

# Columns this module writes; the capability check requires each of them.
_RUN_COLUMNS = {
    "run_uuid", "name", "source_type", "source_name", "entry_point_name", "user_id",
    "status", "start_time", "end_time", "deleted_time", "source_version",
    "lifecycle_stage", "artifact_uri", "experiment_id",
}  # fmt: skip
_METRIC_COLUMNS = {"run_uuid", "key", "value", "timestamp", "step", "is_nan"}
_KV_COLUMNS = {"run_uuid", "key", "value"}


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


def new_run_id() -> str:
    return uuid.uuid4().hex  # as SqlAlchemyStore.create_run


def run_artifact_uri(experiment_artifact_location: str, run_id: str) -> str:
    return append_to_uri_path(experiment_artifact_location, run_id, _ARTIFACTS_FOLDER)


class BulkRunWriter:
    """Inserts :class:`FinishedRun` s into one MLflow experiment of a SQL store."""

    def __init__(self, engine: Engine, tables: dict[str, Any], store: Any) -> None:
        self._engine = engine
        self._store = store  # for MLflow's own NaN/inf handling of metric values
        self._t = tables

    @classmethod
    def for_client(cls, client: Any) -> BulkRunWriter | None:
        """The writer for ``client``'s store, or None where only the public API is safe."""
        try:
            from mlflow.store.tracking.dbmodels import models
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

            store = client._tracking_client.store
            if not isinstance(store, SqlAlchemyStore):
                return None
            tables = {
                "runs": models.SqlRun.__table__,
                "tags": models.SqlTag.__table__,
                "params": models.SqlParam.__table__,
                "metrics": models.SqlMetric.__table__,
                "latest_metrics": models.SqlLatestMetric.__table__,
                "experiments": models.SqlExperiment.__table__,
            }
            needed = {
                "runs": _RUN_COLUMNS,
                "tags": _KV_COLUMNS,
                "params": _KV_COLUMNS,
                "metrics": _METRIC_COLUMNS,
                "latest_metrics": _METRIC_COLUMNS,
                "experiments": {"experiment_id", "lifecycle_stage"},
            }
            for name, columns in needed.items():
                missing = columns - set(tables[name].columns.keys())
                if missing:
                    logger.debug("tracking: no bulk writes, %s lacks %s", name, missing)
                    return None
            return cls(store.engine, tables, store)
        except Exception as error:  # an MLflow without these internals
            logger.debug("tracking: no bulk writes: %s", error)
            return None

    @staticmethod
    def validate(run: FinishedRun) -> FinishedRun:
        """MLflow's own checks of the run's data; raises MlflowException as log_batch would."""
        params = [Param(k, v) for k, v in run.params.items()]
        tags = [RunTag(k, v) for k, v in run.tags.items()]
        checked = _validate_batch_log_data(run.metrics, params, tags)
        if checked is not None:  # newer MLflow returns the (possibly normalised) lists
            metrics, params, tags = checked
            run.metrics = list(metrics)
            run.params = {p.key: p.value for p in params}
            run.tags = {t.key: t.value for t in tags}
        return run

    def insert(
        self, experiment_id: str, artifact_location: str, runs: dict[str, FinishedRun]
    ) -> None:
        """Insert ``runs`` (by run id) in one transaction: all of them or none."""
        t = self._t
        run_rows: list[dict[str, Any]] = []
        tag_rows: list[dict[str, Any]] = []
        param_rows: list[dict[str, Any]] = []
        metric_rows: list[dict[str, Any]] = []
        latest_rows: list[dict[str, Any]] = []
        for run_id, run in runs.items():
            run_rows.append(
                {
                    "run_uuid": run_id,
                    "name": run.run_name,
                    "source_type": "UNKNOWN",
                    "source_name": "",
                    "entry_point_name": "",
                    # What MlflowClient.create_run passes: the deprecated user_id column
                    # holds the mlflow.user tag, "unknown" without one.
                    "user_id": run.tags.get(MLFLOW_USER, "unknown"),
                    "status": run.status,
                    "start_time": run.start_ms,
                    "end_time": run.end_ms,
                    "deleted_time": None,
                    "source_version": "",
                    "lifecycle_stage": "active",
                    "artifact_uri": run_artifact_uri(artifact_location, run_id),
                    "experiment_id": int(experiment_id),
                }
            )
            tags = {MLFLOW_RUN_NAME: run.run_name, **run.tags}
            tag_rows.extend({"run_uuid": run_id, "key": k, "value": v} for k, v in tags.items())
            param_rows.extend(
                {"run_uuid": run_id, "key": k, "value": v} for k, v in run.params.items()
            )
            seen: set[tuple[str, int, int, bool, float]] = set()
            latest: dict[str, dict[str, Any]] = {}
            for metric in run.metrics:
                is_nan, value = self._store.sanitize_metric_value(float(metric.value))
                identity = (metric.key, metric.timestamp, metric.step, is_nan, value)
                if identity in seen:  # the metrics primary key; MLflow drops repeats too
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
                metric_rows.append(row)
                # MLflow's rule for the latest value: highest (step, timestamp, value).
                current = latest.get(metric.key)
                if current is None or (row["step"], row["timestamp"], row["value"]) > (
                    current["step"],
                    current["timestamp"],
                    current["value"],
                ):
                    latest[metric.key] = row
            latest_rows.extend(latest.values())
        with self._engine.begin() as connection:
            stage = connection.execute(
                select(t["experiments"].c.lifecycle_stage).where(
                    t["experiments"].c.experiment_id == int(experiment_id)
                )
            ).scalar()
            if stage != "active":
                raise MlflowException(
                    f"The experiment {experiment_id} must be in the 'active' state; "
                    f"it is {stage or 'missing'}",
                    error_code=INVALID_STATE,
                )
            connection.execute(insert(t["runs"]), run_rows)
            for name, rows in (
                ("tags", tag_rows),
                ("params", param_rows),
                ("metrics", metric_rows),
                ("latest_metrics", latest_rows),
            ):
                if rows:
                    connection.execute(insert(t[name]), rows)
