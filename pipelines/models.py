"""The pipelines' tables: pipeline runs and their tasks (every table of the package is here).

Same database as the tuner's store (``HYPERFLOW_DATABASE_URL``), own ``DeclarativeBase``.
One row per run and one per task execution (a leaf task, a sub-DAG, a loop, a loop
iteration); JSON columns hold what is only read whole (the compiled PipelineSpec, the
arguments, a task's inputs and outputs). Every state change of a task is committed here
before the orchestrator acts on it, which is what makes a killed run resumable.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class PipelineRunRow(Base):
    __tablename__ = "pipeline_runs"
    __table_args__ = (
        UniqueConstraint("namespace", "name", name="uq_pipeline_run_name"),
        Index("ix_pipeline_run_resume", "resume_key", "state"),
    )

    uid: Mapped[str] = mapped_column(String(32), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(253), default="default")
    name: Mapped[str] = mapped_column(String(253))
    pipeline_name: Mapped[str] = mapped_column(String(253))
    # The compiled PipelineSpec (IR) as JSON, and the arguments the run was given.
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    arguments: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Digest of spec + arguments + options: the same command finds its unfinished run.
    resume_key: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text, default="")
    parallelism: Mapped[int] = mapped_column(Integer)
    cache: Mapped[bool] = mapped_column(Boolean, default=True)
    pipeline_root: Mapped[str] = mapped_column(Text)
    # KFP run states: PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED.
    state: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text, default="")
    outputs: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[float] = mapped_column(Float, default=time.time)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The process running it (pid + its start time, so a reused pid is not mistaken).
    owner_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    owner_started: Mapped[float | None] = mapped_column(Float, nullable=True)

    tasks: Mapped[list[PipelineTaskRow]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="PipelineTaskRow.id"
    )


class PipelineTaskRow(Base):
    __tablename__ = "pipeline_tasks"
    __table_args__ = (
        UniqueConstraint("run_uid", "path", name="uq_pipeline_task_path"),
        Index("ix_pipeline_task_cache", "cache_key", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_uid: Mapped[str] = mapped_column(ForeignKey("pipeline_runs.uid", ondelete="CASCADE"))
    # Unique in the run: task names joined by "/" from the root DAG, loop iterations as
    # "for-loop-2/iteration-0"; ``name`` is the last task name, ``parent`` the enclosing path.
    path: Mapped[str] = mapped_column(String(1000))
    name: Mapped[str] = mapped_column(String(253))
    parent: Mapped[str] = mapped_column(String(1000), default="")
    # container | importer | dag | loop | iteration
    kind: Mapped[str] = mapped_column(String(16))
    component: Mapped[str] = mapped_column(String(253), default="")
    # KFP task states: PENDING, RUNNING, SUCCEEDED, SKIPPED, FAILED, CANCELED, CACHED.
    state: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cache_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # "<run name>/<task path>" of the execution whose outputs a CACHED task reuses.
    cached_from: Mapped[str | None] = mapped_column(Text, nullable=True)
    inputs: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    outputs: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # image, resources and other facts of the executor, as recorded (not pulled).
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    task_dir: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float, default=time.time)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)

    run: Mapped[PipelineRunRow] = relationship(back_populates="tasks")
