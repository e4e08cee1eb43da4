"""The tuner's tables: experiments, their conditions, trials and observations.

Changed only together with a migration in ``migrations/versions`` (see
:mod:`tuner.store.migrate`); a test checks that the migrations build exactly these tables.

One row per Katib object; JSON columns hold what is only ever read whole (the spec, a
trial's parameter assignments). Every state change is a committed row before the
controller acts on it, which is what makes a killed controller resumable.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def _uid() -> str:
    return uuid.uuid4().hex


class Message(TypeDecorator[str]):
    """Text without NUL characters (each becomes U+FFFD): PostgreSQL's ``text`` cannot hold
    them, SQLite's can, and a trial's failure message quotes its output, which may hold any
    byte. Replaced on every database, so both keep the same value."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is not None and "\x00" in value:
            return value.replace("\x00", "\ufffd")
        return value


# 64-bit integers on every database: SQLite's INTEGER already is one, PostgreSQL's is 32-bit.
Int64 = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class ExperimentRow(Base):
    __tablename__ = "tuner_experiments"
    __table_args__ = (UniqueConstraint("namespace", "name", name="uq_experiment_name"),)

    uid: Mapped[str] = mapped_column(String(32), primary_key=True, default=_uid)
    namespace: Mapped[str] = mapped_column(String(253))
    name: Mapped[str] = mapped_column(String(253))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    base_dir: Mapped[str | None] = mapped_column(Text, nullable=True)
    # "command" (processes) or "function" (SDK): a function experiment cannot be resumed by
    # a different process, the function lives in the caller.
    backend: Mapped[str] = mapped_column(String(32), default="local")
    phase: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(64), default="")
    message: Mapped[str] = mapped_column(Message, default="")
    created_at: Mapped[float] = mapped_column(Float, default=time.time)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    completed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # pid of the controller running it, to refuse two controllers on one experiment.
    controller_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The host it runs on and when it last renewed its claim: a claim from another host
    # (another server replica on the same PostgreSQL store) is alive while its heartbeat
    # is fresh; only a claim from this host is checked in the local process table.
    controller_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    controller_heartbeat: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Who runs it: None for the process that created it (``experiment run``, ``tune()``),
    # "server" for the control plane, which resumes its experiments after a restart.
    owner: Mapped[str | None] = mapped_column(String(32), nullable=True)

    trials: Mapped[list[TrialRow]] = relationship(
        back_populates="experiment", cascade="all, delete-orphan", order_by="TrialRow.seq"
    )
    conditions: Mapped[list[ConditionRow]] = relationship(
        back_populates="experiment", cascade="all, delete-orphan", order_by="ConditionRow.id"
    )


class ConditionRow(Base):
    """A Katib condition: the experiment's history of phases with reason and message."""

    __tablename__ = "tuner_experiment_conditions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    experiment_uid: Mapped[str] = mapped_column(
        ForeignKey("tuner_experiments.uid", ondelete="CASCADE")
    )
    type: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Message, default="")
    time: Mapped[float] = mapped_column(Float, default=time.time)

    experiment: Mapped[ExperimentRow] = relationship(back_populates="conditions")


class TrialRow(Base):
    __tablename__ = "tuner_trials"
    __table_args__ = (
        UniqueConstraint("experiment_uid", "name", name="uq_trial_name"),
        Index("ix_trial_experiment_phase", "experiment_uid", "phase"),
        Index("ix_trial_experiment_seq", "experiment_uid", "seq"),
        Index("ix_trial_experiment_objective", "experiment_uid", "objective_value"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    experiment_uid: Mapped[str] = mapped_column(
        ForeignKey("tuner_experiments.uid", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(253))
    # Creation order within the experiment (trial numbers as users see them).
    seq: Mapped[int] = mapped_column(Integer)
    assignments: Mapped[dict[str, Any]] = mapped_column(JSON)
    phase: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(64), default="")
    message: Mapped[str] = mapped_column(Message, default="")
    trial_dir: Mapped[str] = mapped_column(Text)
    push_token: Mapped[str] = mapped_column(String(64))
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Final value per metric (after metricStrategies), set when the trial finishes.
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    objective_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    observation_count: Mapped[int] = mapped_column(Integer, default=0)
    # Observations read from the trial's own files (stdout/File collector), as opposed to pushed.
    collected_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float, default=time.time)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    completed_at: Mapped[float | None] = mapped_column(Float, nullable=True)

    experiment: Mapped[ExperimentRow] = relationship(back_populates="trials")
    observations: Mapped[list[ObservationRow]] = relationship(
        back_populates="trial", cascade="all, delete-orphan", order_by="ObservationRow.id"
    )
    push_requests: Mapped[list[PushRequestRow]] = relationship(
        back_populates="trial", cascade="all, delete-orphan"
    )


class ObservationRow(Base):
    """One reported metric value: Katib's MetricLog."""

    __tablename__ = "tuner_observations"
    __table_args__ = (Index("ix_observation_trial", "trial_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("tuner_trials.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(253))
    value: Mapped[float] = mapped_column(Float)
    step: Mapped[int | None] = mapped_column(Int64, nullable=True)
    timestamp: Mapped[float] = mapped_column(Float)

    trial: Mapped[TrialRow] = relationship(back_populates="observations")


class PushRequestRow(Base):
    """The idempotency key of a stored push request: its retry is not stored again."""

    __tablename__ = "tuner_push_requests"

    trial_id: Mapped[int] = mapped_column(
        ForeignKey("tuner_trials.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(64), primary_key=True)

    trial: Mapped[TrialRow] = relationship(back_populates="push_requests")
