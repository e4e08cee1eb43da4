"""The tuner store: SQLAlchemy over SQLite (default) or PostgreSQL.

Contract: every method is one transaction, committed before it returns, so what a caller
has been told is stored survives a crash of the process (SQLite in WAL mode keeps
committed transactions across SIGKILL). Reads return plain records, never live ORM
objects, so callers can keep them across threads and sessions.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from tuner.pids import pid_alive
from tuner.store.batch import Batch
from tuner.store.engine import create_store_engine
from tuner.store.models import (
    ConditionRow,
    ExperimentRow,
    ObservationRow,
    PushRequestRow,
    TrialRow,
)
from tuner.store.records import (
    ExperimentRecord,
    TrialRecord,
    experiment_record,
    trial_record,
)
from tuner.store.sqlite_batch import SqliteBatchWriter
from tuner.types import ExperimentPhase, Observation, TrialPhase

_EXPERIMENTS = cast(Table, ExperimentRow.__table__)
_CONDITIONS = cast(Table, ConditionRow.__table__)
_EXPERIMENT_BY_UID = select(_EXPERIMENTS).where(_EXPERIMENTS.c.uid == bindparam("uid"))
_CONDITIONS_OF = (
    select(_CONDITIONS)
    .where(_CONDITIONS.c.experiment_uid == bindparam("uid"))
    .order_by(_CONDITIONS.c.id)
)
_TRIALS = cast(Table, TrialRow.__table__)
_OBSERVATIONS = cast(Table, ObservationRow.__table__)
# Statements built once and executed with parameters: building them per call is most of
# the cost of a write when trials are short.
_INSERT_TRIAL = insert(_TRIALS)
_INSERT_OBSERVATIONS = insert(_OBSERVATIONS)
_PUSH_REQUESTS = cast(Table, PushRequestRow.__table__)
_INSERT_PUSH_REQUEST = insert(_PUSH_REQUESTS)
_PUSH_REQUEST_SEEN = select(_PUSH_REQUESTS.c.key).where(
    _PUSH_REQUESTS.c.trial_id == bindparam("trial_id"), _PUSH_REQUESTS.c.key == bindparam("key")
)
_UPDATE_TRIAL = update(_TRIALS).where(_TRIALS.c.id == bindparam("b_id"))
_DELETE_TRIAL = delete(_TRIALS).where(_TRIALS.c.id == bindparam("b_id"))
_COUNT_OBSERVATIONS = _UPDATE_TRIAL.values(
    observation_count=_TRIALS.c.observation_count + bindparam("b_n"),
    collected_count=_TRIALS.c.collected_count + bindparam("b_collected"),
)
# How long a claim from another host stays alive without a heartbeat (seconds); its
# controller renews it every third of that.
CLAIM_LEASE = 30.0

# Batch updates by the set of columns they set (and whether they grow the counters).
_BATCH_UPDATES: dict[tuple[tuple[str, ...], bool], Any] = {}


def _batch_update(columns: tuple[str, ...], counts: bool) -> Any:
    statement = _BATCH_UPDATES.get((columns, counts))
    if statement is None:
        values: dict[str, Any] = {c: bindparam(f"v_{c}") for c in columns}
        if counts:
            values["observation_count"] = _TRIALS.c.observation_count + bindparam("b_n")
            values["collected_count"] = _TRIALS.c.collected_count + bindparam("b_collected")
        statement = _BATCH_UPDATES[(columns, counts)] = _UPDATE_TRIAL.values(**values)
    return statement


class StoreError(RuntimeError):
    pass


class ExperimentExists(StoreError):
    """An experiment of that name already exists in the namespace."""


def _experiment_record(row: ExperimentRow, with_conditions: bool = True) -> ExperimentRecord:
    return experiment_record(row, row.conditions if with_conditions else ())


_trial_record = trial_record


class Store:
    """Experiments, trials and observations; safe to share between threads.

    ``host``: the name of this machine in experiment claims (default: its host name;
    tests pretend to be other hosts with it). ``clock``: the wall clock of claim
    heartbeats (emulated in tests). ``claim_lease``: see :meth:`claim`.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        engine: Engine | None = None,
        host: str | None = None,
        clock: Callable[[], float] = time.time,
        claim_lease: float = CLAIM_LEASE,
    ) -> None:
        self.host = host or socket.gethostname()
        self.clock = clock
        self.claim_lease = claim_lease
        if engine is None:
            if url is None:
                raise ValueError("Store needs a database URL or an engine")
            engine = create_store_engine(url)
        self.engine = engine
        from tuner.store.migrate import upgrade
        from tuner.store.schema import SCHEMA

        upgrade(engine, SCHEMA)
        self._session = sessionmaker(engine, expire_on_commit=False)
        self._sqlite_batches: SqliteBatchWriter | None = None
        if engine.dialect.name == "sqlite":
            self._sqlite_batches = SqliteBatchWriter(engine, _TRIALS, _OBSERVATIONS)

    def close(self) -> None:
        self.engine.dispose()

    # -- experiments ---------------------------------------------------------------

    def get_experiment(self, namespace: str, name: str) -> ExperimentRecord | None:
        with self._session() as s:
            row = s.scalar(
                select(ExperimentRow).where(
                    ExperimentRow.namespace == namespace, ExperimentRow.name == name
                )
            )
            return _experiment_record(row) if row else None

    def get_experiment_by_uid(self, uid: str) -> ExperimentRecord:
        # Core, not the ORM: the controller reads its experiment back after each change.
        with self.engine.connect() as conn:
            row = conn.execute(_EXPERIMENT_BY_UID, {"uid": uid}).first()
            if row is None:
                raise StoreError(f"no experiment with uid {uid}")
            return experiment_record(row, conn.execute(_CONDITIONS_OF, {"uid": uid}))

    def list_experiments(self, namespace: str | None = None) -> list[ExperimentRecord]:
        with self._session() as s:
            query = select(ExperimentRow).order_by(ExperimentRow.created_at)
            if namespace is not None:
                query = query.where(ExperimentRow.namespace == namespace)
            return [_experiment_record(r) for r in s.scalars(query)]

    def create_experiment(
        self,
        namespace: str,
        name: str,
        spec: dict[str, Any],
        base_dir: str | None,
        backend: str,
        owner: str | None = None,
    ) -> ExperimentRecord:
        """A new experiment (phase Created); raises :class:`ExperimentExists` if the name
        is taken in the namespace."""
        with self._session.begin() as s:
            row = ExperimentRow(
                namespace=namespace,
                name=name,
                spec=spec,
                base_dir=base_dir,
                backend=backend,
                owner=owner,
                phase=ExperimentPhase.CREATED.value,
                reason="ExperimentCreated",
                message="Experiment is created",
            )
            row.conditions.append(
                ConditionRow(
                    type="Created", reason="ExperimentCreated", message="Experiment is created"
                )
            )
            s.add(row)
            try:
                s.flush()
            except IntegrityError:
                raise ExperimentExists(f"experiment {namespace}/{name} already exists") from None
            return _experiment_record(row)

    def set_spec(self, uid: str, spec: dict[str, Any]) -> None:
        """Replace the stored spec (the fields Katib lets a user edit: trial counts)."""
        with self._session.begin() as s:
            row = s.get(ExperimentRow, uid)
            if row is None:
                raise StoreError(f"no experiment with uid {uid}")
            row.spec = spec

    def set_experiment_phase(
        self, uid: str, phase: ExperimentPhase, reason: str, message: str = ""
    ) -> None:
        # Core statements, as the trials' writes: through the ORM's unit of work this was
        # milliseconds, twice in every run (Running, then how it ended).
        now = time.time()
        table = _EXPERIMENTS
        with self.engine.begin() as conn:
            row = conn.execute(
                select(table.c.phase, table.c.reason, table.c.started_at).where(table.c.uid == uid)
            ).first()
            if row is None:
                raise StoreError(f"no experiment with uid {uid}")
            if row.phase == phase.value and row.reason == reason:
                return
            values: dict[str, Any] = {"phase": phase.value, "reason": reason, "message": message}
            if phase is ExperimentPhase.RUNNING and row.started_at is None:
                values["started_at"] = now
            if phase.finished:
                values.update(
                    completed_at=now,
                    controller_pid=None,
                    controller_host=None,
                    controller_heartbeat=None,
                )
            elif phase is ExperimentPhase.RESTARTING:
                values["completed_at"] = None
            conn.execute(update(table).where(table.c.uid == uid).values(values))
            conn.execute(
                insert(_CONDITIONS).values(
                    experiment_uid=uid, type=phase.value, reason=reason, message=message, time=now
                )
            )

    def update_spec(self, uid: str, spec: dict[str, Any]) -> None:
        """Replace the stored experiment object (an edit of the editable spec fields)."""
        with self._session.begin() as s:
            row = s.get(ExperimentRow, uid)
            if row is None:
                raise StoreError(f"no experiment with uid {uid}")
            row.spec = spec

    def claim(self, uid: str, pid: int) -> None:
        """Mark ``pid`` on this host as the controller of the experiment; refuse if another
        live one is.

        A claim records the host and a heartbeat (:meth:`renew`). Another claim is alive
        if it is from this host and its pid is a live process, or from another host (a
        server replica elsewhere on the same PostgreSQL store, whose pids mean nothing
        here) and its heartbeat is younger than ``claim_lease`` seconds. A claim without a
        host (made before hosts were recorded) is checked as this host's.

        A compare-and-set: the row changes only if its controller is still the one read,
        so two processes claiming at once (on SQLite or PostgreSQL, where both may read
        "no controller" before either writes) never both win.
        """
        table = cast(Table, ExperimentRow.__table__)
        while True:
            with self.engine.begin() as conn:
                row = conn.execute(
                    select(
                        table.c.namespace,
                        table.c.name,
                        table.c.controller_pid,
                        table.c.controller_host,
                        table.c.controller_heartbeat,
                    ).where(table.c.uid == uid)
                ).first()
                if row is None:
                    raise StoreError(f"no experiment with uid {uid}")
                other, other_host = row.controller_pid, row.controller_host
                mine = other == pid and (other_host or self.host) == self.host
                if (
                    other
                    and not mine
                    and self.claim_alive(other, other_host, row.controller_heartbeat)
                ):
                    where = f" on {other_host}" if other_host and other_host != self.host else ""
                    raise StoreError(
                        f"experiment {row.namespace}/{row.name} is being run by another "
                        f"process (pid {other}{where})"
                    )
                current = (
                    table.c.controller_pid.is_(None)
                    if other is None
                    else (table.c.controller_pid == other)
                    & (
                        table.c.controller_host.is_(None)
                        if other_host is None
                        else table.c.controller_host == other_host
                    )
                )
                changed = conn.execute(
                    update(table)
                    .where(table.c.uid == uid, current)
                    .values(
                        controller_pid=pid,
                        controller_host=self.host,
                        controller_heartbeat=self.clock(),
                    )
                )
                if changed.rowcount == 1:
                    return
            # Another process changed the controller in between: read it again.

    def claim_alive(self, pid: int, host: str | None, heartbeat: float | None) -> bool:
        """Whether a claim (``pid`` on ``host``, last renewed at ``heartbeat``) is alive,
        as :meth:`claim` judges it."""
        if host is None or host == self.host:
            return pid_alive(pid)
        return heartbeat is not None and self.clock() - heartbeat < self.claim_lease

    def renew(self, uid: str, pid: int) -> bool:
        """Renew this controller's claim (its heartbeat); False if it holds it no more
        (another host took it over after the lease ran out)."""
        table = cast(Table, ExperimentRow.__table__)
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(table)
                .where(
                    table.c.uid == uid,
                    table.c.controller_pid == pid,
                    table.c.controller_host == self.host,
                )
                .values(controller_heartbeat=self.clock())
            )
        return changed.rowcount == 1

    def release(self, uid: str, pid: int) -> None:
        with self._session.begin() as s:
            s.execute(
                update(ExperimentRow)
                .where(
                    ExperimentRow.uid == uid,
                    ExperimentRow.controller_pid == pid,
                    (ExperimentRow.controller_host == self.host)
                    | ExperimentRow.controller_host.is_(None),
                )
                .values(controller_pid=None, controller_host=None, controller_heartbeat=None)
            )

    def delete_experiment(self, uid: str) -> None:
        with self._session.begin() as s:
            row = s.get(ExperimentRow, uid)
            if row is not None:
                s.delete(row)

    # -- trials --------------------------------------------------------------------

    def add_trial(
        self,
        experiment_uid: str,
        name: str,
        seq: int,
        assignments: dict[str, Any],
        trial_dir: str,
        push_token: str,
    ) -> TrialRecord:
        # Core statements on the hot paths: the ORM unit of work costs milliseconds per
        # trial, which shows when trials are short.
        now = time.time()
        values = {
            "experiment_uid": experiment_uid,
            "name": name,
            "seq": seq,
            "assignments": assignments,
            "phase": TrialPhase.CREATED.value,
            "reason": "TrialCreated",
            "message": "Trial is created",
            "trial_dir": trial_dir,
            "push_token": push_token,
            "observation_count": 0,
            "collected_count": 0,
            "created_at": now,
        }
        with self.engine.begin() as conn:
            key = conn.execute(_INSERT_TRIAL, values).inserted_primary_key
        assert key is not None
        trial_id = key[0]
        return TrialRecord(
            id=int(trial_id),
            experiment_uid=experiment_uid,
            name=name,
            seq=seq,
            assignments=assignments,
            phase=TrialPhase.CREATED,
            reason="TrialCreated",
            message="Trial is created",
            trial_dir=trial_dir,
            push_token=push_token,
            exit_code=None,
            metrics=None,
            objective_value=None,
            observation_count=0,
            collected_count=0,
            created_at=now,
            started_at=None,
            completed_at=None,
        )

    def set_trial_phase(
        self,
        trial_id: int,
        phase: TrialPhase,
        reason: str,
        message: str = "",
        *,
        exit_code: int | None = None,
        metrics: dict[str, Any] | None = None,
        objective_value: float | None = None,
    ) -> None:
        now = time.time()
        values: dict[str, Any] = {"phase": phase.value, "reason": reason, "message": message}
        if phase is TrialPhase.RUNNING:
            values["started_at"] = now
        if phase.finished:
            values["completed_at"] = now
            values["exit_code"] = exit_code
            values["metrics"] = metrics
            values["objective_value"] = objective_value
        with self.engine.begin() as conn:
            conn.execute(_UPDATE_TRIAL, {"b_id": trial_id, **values})

    def commit(self, batch: Batch) -> None:
        """Write ``batch`` in one transaction (see :mod:`tuner.store.batch`); the ids of the
        trials it inserts are set on their records. On SQLite through the DB-API
        connection (:mod:`tuner.store.sqlite_batch`: the same rows, less overhead)."""
        if not batch:
            return
        if self._sqlite_batches is not None:
            self._sqlite_batches.commit(batch)
            return
        self.commit_core(batch)

    def commit_core(self, batch: Batch) -> None:
        """:meth:`commit` through SQLAlchemy Core, on any database."""
        with self.engine.begin() as conn:
            updates: list[tuple[Any, dict[str, Any]]] = []
            for change in batch.changes():
                record = change.record
                if change.insert:
                    key = conn.execute(_INSERT_TRIAL, change.insert_values()).inserted_primary_key
                    assert key is not None
                    record.id = int(key[0])
                    continue
                counts = bool(change.observations)
                if not change.values and not counts:
                    continue
                columns = tuple(sorted(change.values))
                params = {f"v_{c}": v for c, v in change.values.items()}
                params["b_id"] = record.id
                if counts:
                    params["b_n"] = change.observations
                    params["b_collected"] = change.collected
                updates.append((_batch_update(columns, counts), params))
            observations = batch.observations()
            if observations:
                conn.execute(
                    _INSERT_OBSERVATIONS,
                    [
                        {
                            "trial_id": record.id,
                            "name": o.name,
                            "value": o.value,
                            "step": o.step,
                            "timestamp": o.timestamp,
                        }
                        for record, o in observations
                    ],
                )
            for statement, params in updates:
                conn.execute(statement, params)
            for record in batch.deleted():
                conn.execute(_DELETE_TRIAL, {"b_id": record.id})

    def trials(self, experiment_uid: str) -> list[TrialRecord]:
        with self._session() as s:
            rows = s.scalars(
                select(TrialRow)
                .where(TrialRow.experiment_uid == experiment_uid)
                .order_by(TrialRow.seq)
            )
            return [_trial_record(r) for r in rows]

    def get_trial(self, experiment_uid: str, name: str) -> TrialRecord | None:
        with self._session() as s:
            row = s.scalar(
                select(TrialRow).where(
                    TrialRow.experiment_uid == experiment_uid, TrialRow.name == name
                )
            )
            return _trial_record(row) if row else None

    # -- observations --------------------------------------------------------------

    def add_observations(
        self,
        trial_id: int,
        observations: Sequence[Observation],
        *,
        collected: bool,
        request_key: str | None = None,
    ) -> bool:
        """Store observations of one trial; ``collected``: read from its files (not pushed).

        ``request_key``: the idempotency key of the push request that carried them. It is
        committed with them, and a request whose key is already stored (a retry after a
        lost answer, even across a controller restart) stores nothing: False.
        """
        if not observations and request_key is None:
            return True
        try:
            self._insert_observations(trial_id, observations, collected, request_key)
        except IntegrityError:
            if request_key is None:
                raise
            with self.engine.connect() as conn:
                seen = conn.execute(
                    _PUSH_REQUEST_SEEN, {"trial_id": trial_id, "key": request_key}
                ).first()
            if seen is None:  # some other constraint failed
                raise
            return False
        return True

    def _insert_observations(
        self,
        trial_id: int,
        observations: Sequence[Observation],
        collected: bool,
        request_key: str | None,
    ) -> None:
        n = len(observations)
        with self.engine.begin() as conn:
            if request_key is not None:
                conn.execute(_INSERT_PUSH_REQUEST, {"trial_id": trial_id, "key": request_key})
            if not observations:
                return
            conn.execute(
                _INSERT_OBSERVATIONS,
                [
                    {
                        "trial_id": trial_id,
                        "name": o.name,
                        "value": o.value,
                        "step": o.step,
                        "timestamp": o.timestamp,
                    }
                    for o in observations
                ],
            )
            conn.execute(
                _COUNT_OBSERVATIONS,
                {"b_id": trial_id, "b_n": n, "b_collected": n if collected else 0},
            )

    def reset_trial_observations(self, trial_id: int) -> None:
        """Forget a trial's observations (it is about to run again from the start)."""
        with self.engine.begin() as conn:
            conn.execute(delete(_OBSERVATIONS).where(_OBSERVATIONS.c.trial_id == trial_id))
            conn.execute(
                _UPDATE_TRIAL, {"b_id": trial_id, "observation_count": 0, "collected_count": 0}
            )

    def observations(self, trial_id: int) -> list[Observation]:
        with self._session() as s:
            rows = s.scalars(
                select(ObservationRow)
                .where(ObservationRow.trial_id == trial_id)
                .order_by(ObservationRow.id)
            )
            return [Observation(r.name, r.value, r.step, r.timestamp) for r in rows]

    def observations_by_trial(self, trial_ids: Iterable[int]) -> dict[int, list[Observation]]:
        ids = list(trial_ids)
        result: dict[int, list[Observation]] = {i: [] for i in ids}
        if not ids:
            return result
        with self._session() as s:
            rows = s.scalars(
                select(ObservationRow)
                .where(ObservationRow.trial_id.in_(ids))
                .order_by(ObservationRow.id)
            )
            for r in rows:
                result[r.trial_id].append(Observation(r.name, r.value, r.step, r.timestamp))
        return result
