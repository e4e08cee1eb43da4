"""hyperflow's tables: API tokens (only the hash of each secret is stored), and the
inference services the server runs (desired state, revisions, replica processes).

The services' tables are the control plane's, not serving's: ``serving`` is a library with
no store (``serve run`` needs none), and what is kept here — namespaces, generations, the
rollout between revisions, the replicas a restarted server must stop — is what the server
manages around serving's deployer.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class TokenRow(Base):
    __tablename__ = "hyperflow_tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    namespaces: Mapped[list[str]] = mapped_column(JSON)
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float, default=time.time)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True, default=None)


class InferenceServiceRow(Base):
    """An InferenceService's desired state: the object as last submitted, and which of its
    revisions run (the latest, and the last one rolled out while a canary takes a share)."""

    __tablename__ = "hyperflow_inference_services"
    __table_args__ = (UniqueConstraint("namespace", "name", name="uq_isvc_namespace_name"),)

    uid: Mapped[str] = mapped_column(String(36), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(63))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    base_dir: Mapped[str | None] = mapped_column(Text, nullable=True)
    # metadata.generation: +1 for each change of the spec.
    generation: Mapped[int] = mapped_column(Integer)
    # +1 for every change of this row (spec or rollout): stale updates are recognised.
    version: Mapped[int] = mapped_column(Integer)
    latest_revision: Mapped[int] = mapped_column(Integer)
    rolled_out_revision: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class InferenceServiceRevisionRow(Base):
    """A revision that runs: its number (``NAME-predictor-0000N``) and its object."""

    __tablename__ = "hyperflow_isvc_revisions"

    service_uid: Mapped[str] = mapped_column(
        String(36),
        ForeignKey("hyperflow_inference_services.uid", ondelete="CASCADE"),
        primary_key=True,
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)


class ReplicaRow(Base):
    """A replica process the server started and has not seen stop: what a restarted
    server must find and stop (pid and start time: a reused pid is not ours)."""

    __tablename__ = "hyperflow_isvc_replicas"

    pid: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    create_time: Mapped[float] = mapped_column(Float)
    service_uid: Mapped[str] = mapped_column(String(36), index=True)
    namespace: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(63))
    revision: Mapped[int] = mapped_column(Integer)
    port: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[float] = mapped_column(Float)
