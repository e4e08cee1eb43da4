"""Read-side queries for the control plane's API: pages, counts and the best trial, each
one SQL statement over an index, so a 10,000-trial experiment reads as fast as a small one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Text, func, select, type_coerce
from sqlalchemy.orm import Session, selectinload

from tuner.store.models import ExperimentRow, ObservationRow, TrialRow
from tuner.store.store import (
    ExperimentRecord,
    Store,
    TrialRecord,
    _experiment_record,
)
from tuner.types import TrialPhase

_T = TrialRow.__table__
_PHASE = {p.value: p for p in TrialPhase}  # a dict lookup: Enum() per row is slow


def _record_of(row: Any) -> TrialRecord:
    """A TrialRecord from a Core row (no ORM identity map: several times cheaper)."""
    return TrialRecord(
        id=row.id,
        experiment_uid=row.experiment_uid,
        name=row.name,
        seq=row.seq,
        assignments=row.assignments,
        phase=_PHASE[row.phase],
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


def page_experiments(
    store: Store,
    namespaces: Sequence[str] | None,
    phase: str | None,
    offset: int,
    limit: int,
) -> tuple[list[ExperimentRecord], bool]:
    """Experiments in creation order (of ``namespaces``; None: all); True if more follow."""
    query = (
        select(ExperimentRow)
        .options(selectinload(ExperimentRow.conditions))
        .order_by(ExperimentRow.created_at, ExperimentRow.uid)
    )
    if namespaces is not None:
        query = query.where(ExperimentRow.namespace.in_(list(namespaces)))
    if phase is not None:
        query = query.where(ExperimentRow.phase == phase)
    with Session(store.engine) as s:
        rows = list(s.scalars(query.offset(offset).limit(limit + 1)))
        return [_experiment_record(r) for r in rows[:limit]], len(rows) > limit


def owned_experiments(store: Store, owner: str) -> list[ExperimentRecord]:
    """Unfinished experiments of ``owner`` (what a restarted control plane resumes)."""
    finished = ("Succeeded", "Failed")
    with Session(store.engine) as s:
        rows = s.scalars(
            select(ExperimentRow)
            .where(ExperimentRow.owner == owner, ExperimentRow.phase.not_in(finished))
            .order_by(ExperimentRow.created_at)
        )
        return [_experiment_record(r) for r in rows]


def trial_phases(store: Store, experiment_uid: str) -> list[tuple[str, TrialPhase]]:
    """(name, phase) of every trial, in creation order."""
    query = (
        select(_T.c.name, _T.c.phase)
        .where(_T.c.experiment_uid == experiment_uid)
        .order_by(_T.c.seq)
    )
    with store.engine.connect() as conn:
        rows = _fetch_plain(conn, query)
    return [(name, _PHASE[phase]) for name, phase in rows]


def _fetch_plain(conn: Any, query: Any) -> list[tuple[Any, ...]]:
    """The rows of ``query`` as plain tuples from the driver's own cursor: for 10,000 rows,
    SQLAlchemy's per-row result processing costs several times the query itself. Only for
    columns that need no type conversion (strings, numbers)."""
    compiled = query.compile(dialect=conn.dialect)
    params = compiled.construct_params()
    args: Any = tuple(params[k] for k in compiled.positiontup) if compiled.positional else params
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(str(compiled), args)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def best_trial(store: Store, experiment_uid: str, maximize: bool) -> TrialRecord | None:
    """The succeeded trial with the best objective value (the earliest among equals)."""
    value = _T.c.objective_value
    query = (
        select(_T)
        .where(
            _T.c.experiment_uid == experiment_uid,
            _T.c.phase == TrialPhase.SUCCEEDED.value,
            value.is_not(None),
        )
        .order_by(value.desc() if maximize else value.asc(), _T.c.seq)
        .limit(1)
    )
    with store.engine.connect() as conn:
        row = conn.execute(query).first()
    return _record_of(row) if row is not None else None


def page_trials(
    store: Store,
    experiment_uid: str,
    *,
    phase: str | None,
    by_objective: bool,
    descending: bool,
    offset: int,
    limit: int,
) -> tuple[list[TrialRecord], bool]:
    """A page of trials in creation order, or by objective value (trials without one
    last); True if more follow."""
    query = select(_T).where(_T.c.experiment_uid == experiment_uid)
    if phase is not None:
        query = query.where(_T.c.phase == phase)
    if by_objective:
        value = _T.c.objective_value
        query = query.order_by(
            value.is_(None), value.desc() if descending else value.asc(), _T.c.seq
        )
    else:
        query = query.order_by(_T.c.seq.desc() if descending else _T.c.seq)
    with store.engine.connect() as conn:
        rows = conn.execute(query.offset(offset).limit(limit + 1)).all()
    return [_record_of(r) for r in rows[:limit]], len(rows) > limit


def count_by_phase(store: Store) -> tuple[dict[str, int], dict[str, int]]:
    """How many experiments and how many trials are in each phase (for /metrics)."""
    with store.engine.connect() as conn:
        experiments = dict(
            conn.execute(
                select(ExperimentRow.phase, func.count()).group_by(ExperimentRow.phase)
            ).all()
        )
        trials: dict[str, int] = dict(
            conn.execute(select(_T.c.phase, func.count()).group_by(_T.c.phase)).all()
        )
    return experiments, trials


# -- read models of the web UI: whole experiments as columns, incrementally ------------

_O = ObservationRow.__table__
_UNFINISHED = (TrialPhase.CREATED.value, TrialPhase.RUNNING.value)


def trial_rows(store: Store, experiment_uid: str, after: int) -> list[tuple[Any, ...]]:
    """(seq, name, phase, reason, assignments, metrics, objective_value, observation_count,
    created_at, started_at, completed_at) of the trials with ``seq > after``, in creation
    order, as the driver returns them (JSON columns may be text)."""
    query = (
        select(
            _T.c.seq,
            _T.c.name,
            _T.c.phase,
            _T.c.reason,
            _T.c.assignments,
            _T.c.metrics,
            _T.c.objective_value,
            _T.c.observation_count,
            _T.c.created_at,
            _T.c.started_at,
            _T.c.completed_at,
        )
        .where(_T.c.experiment_uid == experiment_uid, _T.c.seq > after)
        .order_by(_T.c.seq)
    )
    with store.engine.connect() as conn:
        return _fetch_plain(conn, query)


def finished_through(store: Store, experiment_uid: str) -> int:
    """The largest ``seq`` such that every trial up to it has finished (-1: none): what a
    reader that has those trials never needs to read again.

    One statement, so one snapshot: the first unfinished trial and the last trial read
    apart could straddle a commit (no trial yet, then two new Created ones: "finished
    through 1"), and a reader would keep those Created rows as finished for good."""
    mine = _T.c.experiment_uid == experiment_uid
    first_open = select(func.min(_T.c.seq)).where(mine, _T.c.phase.in_(_UNFINISHED))
    last = select(func.max(_T.c.seq)).where(mine)
    with store.engine.connect() as conn:
        row = conn.execute(select(first_open.scalar_subquery(), last.scalar_subquery())).one()
    if row[0] is not None:
        return int(row[0]) - 1
    return -1 if row[1] is None else int(row[1])


def metric_series(
    store: Store, experiment_uid: str, metric: str, after: int
) -> list[tuple[Any, ...]]:
    """(seq, step, value) of every observation of ``metric`` of the trials with
    ``seq > after``, by trial and then in the order reported."""
    query = (
        select(_T.c.seq, _O.c.step, _O.c.value)
        .select_from(_O.join(_T, _O.c.trial_id == _T.c.id))
        .where(_T.c.experiment_uid == experiment_uid, _T.c.seq > after, _O.c.name == metric)
        .order_by(_T.c.seq, _O.c.id)
    )
    with store.engine.connect() as conn:
        return _fetch_plain(conn, query)


def experiment_summaries(
    store: Store, namespaces: Sequence[str] | None, phase: str | None
) -> tuple[list[tuple[Any, ...]], dict[str, dict[str, int]], dict[str, tuple[Any, Any]]]:
    """Every experiment (of ``namespaces``; None: all) in creation order as plain rows
    (uid, namespace, name, spec (JSON, maybe text), phase, reason, message, created_at,
    started_at, completed_at), with its trial counts by phase and the (min, max)
    objective value of its succeeded trials: three statements however many there are."""
    _E = ExperimentRow.__table__
    query = select(
        _E.c.uid,
        _E.c.namespace,
        _E.c.name,
        # The spec as the driver gives it (text on SQLite): the caller parses it with
        # orjson, several times faster than the JSON type's json.loads for 1,000 specs.
        type_coerce(_E.c.spec, Text),
        _E.c.phase,
        _E.c.reason,
        _E.c.message,
        _E.c.created_at,
        _E.c.started_at,
        _E.c.completed_at,
    ).order_by(_E.c.created_at, _E.c.uid)
    if namespaces is not None:
        query = query.where(_E.c.namespace.in_(list(namespaces)))
    if phase is not None:
        query = query.where(_E.c.phase == phase)
    counts: dict[str, dict[str, int]] = {}
    ranges: dict[str, tuple[Any, Any]] = {}
    with store.engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(query)]  # (an IN list: not for _fetch_plain)
        if not rows:
            return rows, counts, ranges
        for uid, phase_, n in _fetch_plain(
            conn,
            select(_T.c.experiment_uid, _T.c.phase, func.count()).group_by(
                _T.c.experiment_uid, _T.c.phase
            ),
        ):
            counts.setdefault(uid, {})[phase_] = int(n)
        for uid, low, high in _fetch_plain(
            conn,
            select(
                _T.c.experiment_uid, func.min(_T.c.objective_value), func.max(_T.c.objective_value)
            )
            .where(_T.c.phase == TrialPhase.SUCCEEDED.value, _T.c.objective_value.is_not(None))
            .group_by(_T.c.experiment_uid),
        ):
            ranges[uid] = (low, high)
    return rows, counts, ranges


def phase_counts(store: Store, experiment_uid: str) -> dict[str, int]:
    """How many trials of the experiment are in each phase."""
    with store.engine.connect() as conn:
        return {
            phase: int(n)
            for phase, n in conn.execute(
                select(_T.c.phase, func.count())
                .where(_T.c.experiment_uid == experiment_uid)
                .group_by(_T.c.phase)
            )
        }
