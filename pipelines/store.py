"""The pipeline store: runs and tasks in SQLAlchemy (the tuner's database URL and engine).

Contract (as the tuner's store): every method is one transaction, committed before it
returns; reads return plain records, never live ORM objects. Importing this module is
cheap (no kfp, no mlflow): the CLI's read commands use it directly.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Text, cast, delete, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from pipelines.models import PipelineRunRow, PipelineTaskRow
from tuner.store import create_store_engine

RUN_FINISHED = frozenset({"SUCCEEDED", "FAILED", "CANCELED"})
TASK_DONE = frozenset({"SUCCEEDED", "SKIPPED", "FAILED", "CANCELED", "CACHED"})
TASK_OK = frozenset({"SUCCEEDED", "CACHED"})


@dataclass(slots=True)
class RunRecord:
    uid: str
    namespace: str
    name: str
    pipeline_name: str
    spec: dict[str, Any]
    arguments: dict[str, Any]
    resume_key: str
    source: str
    parallelism: int
    cache: bool
    pipeline_root: str
    state: str
    message: str
    outputs: dict[str, Any] | None
    mlflow_run_id: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    owner_pid: int | None
    owner_started: float | None

    @property
    def finished(self) -> bool:
        return self.state in RUN_FINISHED


@dataclass(slots=True)
class TaskRecord:
    id: int
    run_uid: str
    path: str
    name: str
    parent: str
    kind: str
    component: str
    state: str
    message: str
    attempts: int
    cache_key: str | None
    cached_from: str | None
    inputs: dict[str, Any] | None
    outputs: dict[str, Any] | None
    details: dict[str, Any] | None
    task_dir: str
    created_at: float
    started_at: float | None
    finished_at: float | None

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.finished_at or time.time()) - self.started_at


_RUN_FIELDS = [f.name for f in fields(RunRecord)]
_TASK_FIELDS = [f.name for f in fields(TaskRecord)]


def _run(row: PipelineRunRow) -> RunRecord:
    return RunRecord(**{k: getattr(row, k) for k in _RUN_FIELDS})


def _task(row: PipelineTaskRow) -> TaskRecord:
    return TaskRecord(**{k: getattr(row, k) for k in _TASK_FIELDS})


class PipelineStore:
    """Pipeline runs and their tasks; safe to share between threads."""

    def __init__(self, url: str | None = None, *, engine: Engine | None = None) -> None:
        if engine is None:
            if url is None:
                raise ValueError("PipelineStore needs a database URL or an engine")
            engine = create_store_engine(url)
        self.engine = engine
        from pipelines.schema import SCHEMA
        from tuner.store.migrate import upgrade

        upgrade(engine, SCHEMA)
        self._session = sessionmaker(engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    # -- runs ------------------------------------------------------------------------------

    def create_run(self, **values: Any) -> RunRecord:
        values.setdefault("uid", uuid.uuid4().hex)
        with self._session.begin() as s:
            row = PipelineRunRow(**values)
            s.add(row)
            s.flush()
            return _run(row)

    def get_run(self, name: str, namespace: str = "default") -> RunRecord | None:
        with self._session() as s:
            row = s.scalar(
                select(PipelineRunRow).where(
                    PipelineRunRow.namespace == namespace, PipelineRunRow.name == name
                )
            )
            return _run(row) if row is not None else None

    def get_run_by_uid(self, uid: str) -> RunRecord:
        with self._session() as s:
            row = s.get(PipelineRunRow, uid)
            if row is None:
                raise LookupError(f"no pipeline run with uid {uid}")
            return _run(row)

    def list_runs(self, namespace: str | None = "default") -> list[RunRecord]:
        with self._session() as s:
            query = select(PipelineRunRow).order_by(PipelineRunRow.created_at)
            if namespace is not None:
                query = query.where(PipelineRunRow.namespace == namespace)
            return [_run(r) for r in s.scalars(query)]

    def unfinished_runs(self, resume_key: str) -> list[RunRecord]:
        """Runs with this resume key that never finished, newest first."""
        with self._session() as s:
            query = (
                select(PipelineRunRow)
                .where(
                    PipelineRunRow.resume_key == resume_key,
                    PipelineRunRow.state.not_in(RUN_FINISHED),
                )
                .order_by(PipelineRunRow.created_at.desc())
            )
            return [_run(r) for r in s.scalars(query)]

    def update_run(self, uid: str, **values: Any) -> None:
        with self._session.begin() as s:
            s.execute(update(PipelineRunRow).where(PipelineRunRow.uid == uid).values(**values))

    def claim_run(
        self, uid: str, pid: int, started: float, expected: tuple[int | None, float | None]
    ) -> bool:
        """Make ``pid`` the run's owner if the owner is still ``expected`` (compare-and-set)."""
        with self._session.begin() as s:
            result = s.execute(
                update(PipelineRunRow)
                .where(
                    PipelineRunRow.uid == uid,
                    PipelineRunRow.owner_pid.is_(None)
                    if expected[0] is None
                    else PipelineRunRow.owner_pid == expected[0],
                )
                .values(owner_pid=pid, owner_started=started)
            )
            return bool(getattr(result, "rowcount", 0))

    def referencing(
        self, prefix: str, exclude_uid: str
    ) -> list[tuple[RunRecord, list[TaskRecord]]]:
        """Other runs whose outputs or tasks' inputs/outputs name a path under ``prefix`` (a
        run folder: their cache hits reuse its artifacts), with those tasks."""
        # As the JSON columns hold it (escaped, non-ASCII as \\u...), and as given.
        forms = {prefix, json.dumps(prefix)[1:-1]}
        patterns = [
            "%" + f.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            for f in forms
        ]

        def like(column: Any) -> Any:
            return or_(*(cast(column, Text).like(p, escape="\\") for p in patterns))

        with self._session() as s:
            tasks = s.scalars(
                select(PipelineTaskRow)
                .where(
                    PipelineTaskRow.run_uid != exclude_uid,
                    or_(like(PipelineTaskRow.inputs), like(PipelineTaskRow.outputs)),
                )
                .order_by(PipelineTaskRow.id)
            ).all()
            runs = s.scalars(
                select(PipelineRunRow).where(
                    PipelineRunRow.uid != exclude_uid,
                    or_(
                        PipelineRunRow.uid.in_({t.run_uid for t in tasks}),
                        like(PipelineRunRow.outputs),
                    ),
                )
            ).all()
            return [(_run(run), [_task(t) for t in tasks if t.run_uid == run.uid]) for run in runs]

    def rewrite_paths(
        self,
        run_uid: str,
        run_outputs: dict[str, Any] | None,
        tasks: dict[int, tuple[dict[str, Any] | None, dict[str, Any] | None]],
    ) -> None:
        """Set a run's outputs and its tasks' (id -> (inputs, outputs)) in one transaction."""
        with self._session.begin() as s:
            s.execute(
                update(PipelineRunRow)
                .where(PipelineRunRow.uid == run_uid)
                .values(outputs=run_outputs)
            )
            for task_id, (inputs, outputs) in tasks.items():
                s.execute(
                    update(PipelineTaskRow)
                    .where(PipelineTaskRow.id == task_id)
                    .values(inputs=inputs, outputs=outputs)
                )

    def delete_run(self, uid: str) -> None:
        with self._session.begin() as s:
            s.execute(delete(PipelineTaskRow).where(PipelineTaskRow.run_uid == uid))
            s.execute(delete(PipelineRunRow).where(PipelineRunRow.uid == uid))

    # -- tasks -----------------------------------------------------------------------------

    def tasks(self, run_uid: str) -> list[TaskRecord]:
        with self._session() as s:
            query = (
                select(PipelineTaskRow)
                .where(PipelineTaskRow.run_uid == run_uid)
                .order_by(PipelineTaskRow.id)
            )
            return [_task(r) for r in s.scalars(query)]

    def save_task(self, run_uid: str, path: str, **values: Any) -> None:
        """Insert the task at ``path`` or update the given columns of it."""
        with self._session.begin() as s:
            row = s.scalar(
                select(PipelineTaskRow).where(
                    PipelineTaskRow.run_uid == run_uid, PipelineTaskRow.path == path
                )
            )
            if row is None:
                s.add(PipelineTaskRow(run_uid=run_uid, path=path, **values))
            else:
                for key, value in values.items():
                    setattr(row, key, value)

    def reset_tasks(self, run_uid: str, paths: Iterable[str]) -> None:
        """Forget tasks (a resumed run re-runs them from scratch)."""
        paths = list(paths)
        if not paths:
            return
        with self._session.begin() as s:
            s.execute(
                delete(PipelineTaskRow).where(
                    PipelineTaskRow.run_uid == run_uid, PipelineTaskRow.path.in_(paths)
                )
            )

    def cached_tasks(
        self, cache_key: str, namespace: str, limit: int = 5
    ) -> list[tuple[RunRecord, TaskRecord]]:
        """Executions in ``namespace`` that SUCCEEDED with this cache key (cache hits
        excluded), newest first. Another namespace's are never reused: they would hand its
        outputs, run names and folders to a user who may not read them."""
        with self._session() as s:
            rows = s.scalars(
                select(PipelineTaskRow)
                .join(PipelineRunRow, PipelineRunRow.uid == PipelineTaskRow.run_uid)
                .where(
                    PipelineTaskRow.cache_key == cache_key,
                    PipelineTaskRow.state == "SUCCEEDED",
                    PipelineRunRow.namespace == namespace,
                )
                .order_by(PipelineTaskRow.finished_at.desc())
                .limit(limit)
            )
            return [(_run(row.run), _task(row)) for row in rows]
