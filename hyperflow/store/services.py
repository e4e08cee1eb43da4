"""Inference services in the store: desired state, revisions, replica processes.

Every change of a service is one transaction that bumps its ``version``, so whoever
applies records (the deployer's loop) can tell a newer one from a stale one. A revision
row exists for each revision that runs: the latest one and, while the latest has not
taken all the traffic, the last one rolled out.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hyperflow.store.models import InferenceServiceRevisionRow, InferenceServiceRow, ReplicaRow


class ServiceExists(Exception):
    """A service of that name exists in the namespace."""


class ServiceChanged(Exception):
    """The service changed (or was deleted) since it was read."""


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    uid: str
    namespace: str
    name: str
    obj: dict[str, Any]  # apiVersion, kind, metadata, spec: as last submitted
    base_dir: str | None
    generation: int
    version: int
    latest: int
    rolled_out: int | None
    created_at: float
    updated_at: float
    revisions: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def previous(self) -> int | None:
        """The revision rolled out before the latest, still serving its share."""
        return self.rolled_out if self.rolled_out not in (None, self.latest) else None


@dataclass(frozen=True, slots=True)
class ReplicaRecord:
    pid: int
    create_time: float
    service_uid: str
    namespace: str
    name: str
    revision: int
    port: int
    started_at: float


def _record(row: InferenceServiceRow, revisions: dict[int, dict[str, Any]]) -> ServiceRecord:
    return ServiceRecord(
        row.uid,
        row.namespace,
        row.name,
        row.spec,
        row.base_dir,
        row.generation,
        row.version,
        row.latest_revision,
        row.rolled_out_revision,
        row.created_at,
        row.updated_at,
        revisions,
    )


class ServiceStore:
    """Thread-safe; writes that read first are serialised by one lock (they are rare)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()

    # -- services --------------------------------------------------------------------

    def _revisions(self, s: Session, uids: Sequence[str]) -> dict[str, dict[int, dict[str, Any]]]:
        out: dict[str, dict[int, dict[str, Any]]] = {uid: {} for uid in uids}
        if uids:
            rows = s.scalars(
                select(InferenceServiceRevisionRow).where(
                    InferenceServiceRevisionRow.service_uid.in_(list(uids))
                )
            )
            for r in rows:
                out[r.service_uid][r.number] = r.spec
        return out

    def _load(self, s: Session, row: InferenceServiceRow) -> ServiceRecord:
        return _record(row, self._revisions(s, [row.uid])[row.uid])

    def create(
        self, namespace: str, name: str, obj: dict[str, Any], base_dir: str | None
    ) -> ServiceRecord:
        now = time.time()
        uid = str(uuid.uuid4())
        try:
            with Session(self.engine) as s, s.begin():
                s.add(
                    InferenceServiceRow(
                        uid=uid,
                        namespace=namespace,
                        name=name,
                        spec=obj,
                        base_dir=base_dir,
                        generation=1,
                        version=1,
                        latest_revision=1,
                        rolled_out_revision=None,
                        created_at=now,
                        updated_at=now,
                    )
                )
                s.flush()
                s.add(
                    InferenceServiceRevisionRow(service_uid=uid, number=1, spec=obj, created_at=now)
                )
        except IntegrityError:
            raise ServiceExists(f"{namespace}/{name}") from None
        found = self.get(namespace, name)
        assert found is not None
        return found

    def get(self, namespace: str, name: str) -> ServiceRecord | None:
        with Session(self.engine) as s:
            row = s.scalar(
                select(InferenceServiceRow).where(
                    InferenceServiceRow.namespace == namespace, InferenceServiceRow.name == name
                )
            )
            return None if row is None else self._load(s, row)

    def get_by_uid(self, uid: str) -> ServiceRecord | None:
        with Session(self.engine) as s:
            row = s.get(InferenceServiceRow, uid)
            return None if row is None else self._load(s, row)

    def page(
        self, namespaces: Sequence[str] | None, offset: int, limit: int
    ) -> tuple[list[ServiceRecord], bool]:
        """Services of ``namespaces`` (None: all) by namespace and name; and whether more."""
        query = select(InferenceServiceRow).order_by(
            InferenceServiceRow.namespace, InferenceServiceRow.name
        )
        if namespaces is not None:
            query = query.where(InferenceServiceRow.namespace.in_(list(namespaces)))
        with Session(self.engine) as s:
            rows = list(s.scalars(query.offset(offset).limit(limit + 1)))
            more = len(rows) > limit
            rows = rows[:limit]
            revisions = self._revisions(s, [r.uid for r in rows])
            return [_record(r, revisions[r.uid]) for r in rows], more

    def all(self) -> list[ServiceRecord]:
        records: list[ServiceRecord] = []
        offset = 0
        while True:
            page, more = self.page(None, offset, 500)
            records += page
            offset += len(page)
            if not more:
                return records

    def replace(
        self,
        uid: str,
        generation: int,
        obj: dict[str, Any],
        base_dir: str | None,
        *,
        new_revision: bool,
    ) -> ServiceRecord:
        """Store the new object (generation + 1). With ``new_revision``, it is also the
        spec of a new latest revision; a latest revision that was never rolled out (a
        canary being replaced) stops running, the one rolled out keeps its share.
        ServiceChanged if the service is not at ``generation`` any more."""
        now = time.time()
        with self._lock, Session(self.engine) as s, s.begin():
            row = s.get(InferenceServiceRow, uid)
            if row is None or row.generation != generation:
                raise ServiceChanged(uid)
            row.spec = obj
            row.base_dir = base_dir
            row.generation += 1
            row.version += 1
            row.updated_at = now
            if new_revision:
                superseded = row.latest_revision
                number = superseded + 1
                s.add(
                    InferenceServiceRevisionRow(
                        service_uid=uid, number=number, spec=obj, created_at=now
                    )
                )
                if superseded != row.rolled_out_revision:
                    s.execute(
                        delete(InferenceServiceRevisionRow).where(
                            InferenceServiceRevisionRow.service_uid == uid,
                            InferenceServiceRevisionRow.number == superseded,
                        )
                    )
                row.latest_revision = number
            s.flush()
            return self._load(s, row)

    def roll_out(self, uid: str, number: int) -> ServiceRecord | None:
        """The latest revision ``number`` took all the traffic: it is the rolled-out one
        now and every other revision stops. None if ``number`` is no longer the latest
        (a newer spec came meanwhile) or nothing changes."""
        with self._lock, Session(self.engine) as s, s.begin():
            row = s.get(InferenceServiceRow, uid)
            if row is None or row.latest_revision != number or row.rolled_out_revision == number:
                return None
            row.rolled_out_revision = number
            row.version += 1
            row.updated_at = time.time()
            s.execute(
                delete(InferenceServiceRevisionRow).where(
                    InferenceServiceRevisionRow.service_uid == uid,
                    InferenceServiceRevisionRow.number != number,
                )
            )
            s.flush()
            return self._load(s, row)

    def delete(self, uid: str) -> bool:
        with self._lock, Session(self.engine) as s, s.begin():
            s.execute(
                delete(InferenceServiceRevisionRow).where(
                    InferenceServiceRevisionRow.service_uid == uid
                )
            )
            result = s.execute(delete(InferenceServiceRow).where(InferenceServiceRow.uid == uid))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    # -- replica processes -----------------------------------------------------------

    def add_replica(self, replica: ReplicaRecord) -> None:
        with Session(self.engine) as s, s.begin():
            # A pid recorded before belongs to a process that is gone (pids are reused).
            s.execute(delete(ReplicaRow).where(ReplicaRow.pid == replica.pid))
            s.add(
                ReplicaRow(
                    pid=replica.pid,
                    create_time=replica.create_time,
                    service_uid=replica.service_uid,
                    namespace=replica.namespace,
                    name=replica.name,
                    revision=replica.revision,
                    port=replica.port,
                    started_at=replica.started_at,
                )
            )

    def remove_replicas(self, pids: Sequence[int]) -> None:
        if not pids:
            return
        with Session(self.engine) as s, s.begin():
            s.execute(delete(ReplicaRow).where(ReplicaRow.pid.in_(list(pids))))

    def replicas(self) -> list[ReplicaRecord]:
        with Session(self.engine) as s:
            return [
                ReplicaRecord(
                    r.pid,
                    r.create_time,
                    r.service_uid,
                    r.namespace,
                    r.name,
                    r.revision,
                    r.port,
                    r.started_at,
                )
                for r in s.scalars(select(ReplicaRow).order_by(ReplicaRow.started_at))
            ]
