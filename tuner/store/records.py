"""The store's plain records, and how a row becomes one (no SQLAlchemy here).

Kept apart from :mod:`tuner.store.store` so that read-only code (the CLI's read commands,
:mod:`tuner.store.reader`) can build the same records without importing SQLAlchemy.
``experiment_record``/``trial_record`` take any object with the tables' column names as
attributes: an ORM row or a plain row of :mod:`sqlite3`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tuner.types import ExperimentPhase, TrialPhase


@dataclass(slots=True)
class Condition:
    type: str
    reason: str
    message: str
    time: float


@dataclass(slots=True)
class ExperimentRecord:
    uid: str
    namespace: str
    name: str
    spec: dict[str, Any]
    base_dir: str | None
    backend: str
    phase: ExperimentPhase
    reason: str
    message: str
    created_at: float
    started_at: float | None
    completed_at: float | None
    controller_pid: int | None
    conditions: list[Condition] = field(default_factory=list)
    # Who created it through the control plane (a token id); None for local runs.
    owner: str | None = None
    # Where its controller runs and when that renewed its claim (see Store.claim).
    controller_host: str | None = None
    controller_heartbeat: float | None = None


@dataclass(slots=True)
class TrialRecord:
    id: int
    experiment_uid: str
    name: str
    seq: int
    assignments: dict[str, Any]
    phase: TrialPhase
    reason: str
    message: str
    trial_dir: str
    push_token: str
    exit_code: int | None
    metrics: dict[str, Any] | None
    objective_value: float | None
    observation_count: int
    collected_count: int
    created_at: float
    started_at: float | None
    completed_at: float | None


def experiment_record(row: Any, conditions: Iterable[Any]) -> ExperimentRecord:
    """An experiment row and its condition rows as a record."""
    return ExperimentRecord(
        uid=row.uid,
        namespace=row.namespace,
        name=row.name,
        spec=row.spec,
        base_dir=row.base_dir,
        backend=row.backend,
        phase=ExperimentPhase(row.phase),
        reason=row.reason,
        message=row.message,
        created_at=row.created_at,
        started_at=row.started_at,
        completed_at=row.completed_at,
        controller_pid=row.controller_pid,
        conditions=[Condition(c.type, c.reason, c.message, c.time) for c in conditions],
        # A store not yet upgraded to the owner column (read-only readers do not migrate).
        owner=getattr(row, "owner", None),
        controller_host=getattr(row, "controller_host", None),
        controller_heartbeat=getattr(row, "controller_heartbeat", None),
    )


def trial_record(row: Any) -> TrialRecord:
    """A trial row as a record."""
    return TrialRecord(
        id=row.id,
        experiment_uid=row.experiment_uid,
        name=row.name,
        seq=row.seq,
        assignments=row.assignments,
        phase=TrialPhase(row.phase),
        reason=row.reason,
        message=row.message,
        trial_dir=row.trial_dir,
        push_token=row.push_token,
        exit_code=row.exit_code,
        metrics=row.metrics,
        objective_value=row.objective_value,
        observation_count=row.observation_count,
        collected_count=row.collected_count,
        created_at=row.created_at,
        started_at=row.started_at,
        completed_at=row.completed_at,
    )
