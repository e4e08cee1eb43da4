"""Inference service handlers: create/list/get/replace/delete.

Records in, records out (KServe ``serving.kserve.io/v1beta1`` InferenceService objects as
dicts), no HTTP. The desired state is committed to the store before the deployer is told
(a restarted server runs what was acknowledged); the status is read from the deployer.

A replace is KServe's rollout: a changed predictor (anything but
``canaryTrafficPercent``) makes a new revision; with ``canaryTrafficPercent: P`` it gets
P% and the revision rolled out before keeps the rest; without it (or at 100) it takes all
the traffic once Ready and the previous one stops. Changing only
``canaryTrafficPercent`` moves traffic between the two running revisions.
"""

from __future__ import annotations

import builtins
import copy
import logging
import threading
from pathlib import Path
from typing import Any

from hyperflow.handlers import paging
from hyperflow.handlers.auth import Caller
from hyperflow.handlers.errors import (
    Conflict,
    FieldProblem,
    Invalid,
    NotFound,
)
from hyperflow.handlers.events import ADDED, DELETED, MODIFIED, EventBus
from hyperflow.handlers.folders import base_dir_of
from hyperflow.handlers.names import check_dns_label, model_name_problem, shown
from hyperflow.services import KIND, ServiceManager, ServiceState, revision_name
from hyperflow.store.services import ServiceChanged, ServiceExists, ServiceRecord, ServiceStore
from serving.runtimes import deploy_problems
from serving.spec import API_VERSION, InferenceService, SpecError, parse_inference_service
from serving.storage import StorageError, local_storage_path, storage_scheme
from tuner.status import rfc3339

log = logging.getLogger(__name__)

# Set by the server, never kept from a submitted object.
SERVER_METADATA = ("uid", "generation", "creationTimestamp", "resourceVersion", "managedFields")


class InferenceServiceHandlers:
    def __init__(self, store: ServiceStore, manager: ServiceManager, events: EventBus) -> None:
        self.store = store
        self.manager = manager
        self.events = events
        # Changes apply to the deployer in the order they were stored.
        self._lock = threading.Lock()

    # -- handlers --------------------------------------------------------------------

    def create(
        self, caller: Caller, namespace: str, body: Any, *, dry_run: bool = False
    ) -> dict[str, Any]:
        """Store and deploy an InferenceService; 409 if the name is taken in the
        namespace, 422 with every field error. ``dry_run`` (Kubernetes' ``dryRun=All``):
        every check, nothing stored or started; the answer is the object as it would be
        stored."""
        caller.authorize(namespace)
        obj, base_dir, isvc = _validate(namespace, body)
        if dry_run:
            if self.store.get(namespace, isvc.name) is not None:
                raise Conflict(
                    f'inferenceservices "{isvc.name}" already exists in namespace {namespace}'
                )
            return obj
        with self._lock:
            try:
                record = self.store.create(namespace, isvc.name, obj, base_dir)
            except ServiceExists:
                raise Conflict(
                    f'inferenceservices "{isvc.name}" already exists in namespace {namespace}'
                ) from None
            self._deploy(record)
        self.events.publish(
            ADDED,
            KIND,
            namespace,
            record.name,
            reason="InferenceServiceCreated",
            message=f"{revision_name(record.name, 1)} created",
        )
        return self._object(record, self._state(record))

    def list(
        self,
        caller: Caller,
        namespace: str | None,
        *,
        limit: int | None = None,
        continue_: str | None = None,
    ) -> paging.Page:
        """Services of ``namespace`` (None: every namespace the caller may see)."""
        if namespace is not None:
            caller.authorize(namespace)
            namespaces: frozenset[str] | None = frozenset({namespace})
        else:
            namespaces = caller.visible()
        version = self.events.resource_version()
        query = ("inferenceservices", namespace)
        offset, limit = paging.start(limit, continue_, query)
        records, more = self.store.page(
            sorted(namespaces) if namespaces is not None else None, offset, limit
        )
        states = self._states(records)
        items = [self._object(r, states.get((r.namespace, r.name))) for r in records]
        return paging.Page(items, paging.next_token(offset, len(items), more, query), version)

    def get(self, caller: Caller, namespace: str, name: str) -> dict[str, Any]:
        record = self._record(caller, namespace, name)
        return self._object(record, self._state(record))

    def replace(self, caller: Caller, namespace: str, name: str, body: Any) -> dict[str, Any]:
        """A new spec: a new revision if the predictor changed (KServe's rollout), else a
        new traffic split between the running revisions."""
        caller.authorize(namespace)
        obj, base_dir, _ = _validate(namespace, body, name=name)
        with self._lock:
            record = self._record(caller, namespace, name)
            if obj == record.obj:
                return self._object(record, self._state(record))
            new_revision = _template(obj) != _template(record.revisions.get(record.latest, {}))
            try:
                record = self.store.replace(
                    record.uid, record.generation, obj, base_dir, new_revision=new_revision
                )
            except ServiceChanged:
                raise Conflict(
                    f"inferenceservice {namespace}/{name} changed meanwhile; get it and retry"
                ) from None
            self._deploy(record)
        percent = (obj["spec"].get("predictor") or {}).get("canaryTrafficPercent")
        latest = revision_name(name, record.latest)
        if new_revision:
            message = f"{latest} created" + (
                f" ({percent}% of the traffic once Ready)"
                if percent is not None and record.previous is not None
                else ""
            )
        else:
            message = f"traffic: {latest} {100 if percent is None else percent}%"
        self.events.publish(
            MODIFIED,
            KIND,
            namespace,
            name,
            reason="RevisionCreated" if new_revision else "TrafficChanged",
            message=message,
        )
        return self._object(record, self._state(record))

    def apply(self, caller: Caller, namespace: str, body: Any) -> tuple[dict[str, Any], bool]:
        """Create the service, or replace it if it exists; (object, created)."""
        name = ((body or {}).get("metadata") or {}).get("name") if isinstance(body, dict) else None
        caller.authorize(namespace)
        if isinstance(name, str) and self.store.get(namespace, name) is not None:
            return self.replace(caller, namespace, name, body), False
        try:
            return self.create(caller, namespace, body), True
        except Conflict:  # created meanwhile
            return self.replace(caller, namespace, str(name), body), False

    def delete(self, caller: Caller, namespace: str, name: str) -> dict[str, Any]:
        """Delete the service: it is gone from the store at once, its replicas are
        drained and stopped before this returns."""
        with self._lock:
            record = self._record(caller, namespace, name)
            obj = self._object(record, self._state(record))
            self.store.delete(record.uid)
            try:
                self.manager.remove(namespace, name)
            except Exception as exc:  # stored as deleted: a restart stops what is left
                log.warning("stopping inference service %s/%s: %s", namespace, name, exc)
        self.events.publish(DELETED, KIND, namespace, name, reason="InferenceServiceDeleted")
        return obj

    # -- helpers ---------------------------------------------------------------------

    def _record(self, caller: Caller, namespace: str, name: str) -> ServiceRecord:
        caller.authorize(namespace)
        record = self.store.get(namespace, name)
        if record is None:
            raise NotFound(f'inferenceservices "{name}" not found in namespace {namespace}')
        return record

    def _deploy(self, record: ServiceRecord) -> None:
        try:
            self.manager.apply(record)
        except RuntimeError as exc:  # stopping: the next start runs what was stored
            log.warning(
                "inference service %s/%s stored, not deployed: %s",
                record.namespace,
                record.name,
                exc,
            )

    def _state(self, record: ServiceRecord) -> ServiceState | None:
        return self._states([record]).get((record.namespace, record.name))

    def _states(self, records: builtins.list[ServiceRecord]) -> dict[tuple[str, str], ServiceState]:
        if not records or not self.manager.running():
            return {}
        try:
            return self.manager.states([(r.namespace, r.name) for r in records])
        except RuntimeError:
            return {}

    def _object(self, record: ServiceRecord, state: ServiceState | None) -> dict[str, Any]:
        obj = copy.deepcopy(record.obj)
        metadata = obj.setdefault("metadata", {})
        metadata.update(
            {
                "name": record.name,
                "namespace": record.namespace,
                "uid": record.uid,
                "generation": record.generation,
                "creationTimestamp": rfc3339(record.created_at),
            }
        )
        obj["status"] = self._status(record, state)
        return obj

    def _status(self, record: ServiceRecord, state: ServiceState | None) -> dict[str, Any]:
        base = self.manager.base_url(record.namespace, record.name)
        public = self.manager.public_url(record.namespace, record.name)
        url = f"{public}/v2/models/{record.name}"
        latest = revision_name(record.name, record.latest)
        if state is None:
            ready, reason, message, since = (
                False,
                "NotRunning",
                "the server's serving loop is not running (the server is stopping)",
                record.updated_at,
            )
            revisions: builtins.list[dict[str, Any]] = []
            traffic: builtins.list[dict[str, Any]] = []
        else:
            ready, reason, message, since = (
                state.ready,
                state.reason,
                state.message,
                state.transition,
            )
            revisions = [
                {
                    "name": r.name,
                    "latest": r.latest,
                    "state": r.state,
                    **({"reason": r.reason} if r.reason else {}),
                    "percent": r.traffic,
                    "configuredPercent": r.configured_traffic,
                    "replicas": {
                        "ready": r.ready,
                        "starting": r.starting,
                        "failed": r.failed,
                        "desired": r.desired,
                    },
                    "inFlight": r.in_flight,
                    "pids": list(r.pids),
                    **({"autoscaler": f"HPA on {r.scaling}"} if r.scaling else {}),
                }
                for r in state.revisions
            ]
            traffic = [
                {
                    "revisionName": r.name,
                    "percent": r.traffic,
                    "latestRevision": r.latest,
                    **(
                        {"tag": "latest" if r.latest else "prev"}
                        if len(state.revisions) > 1
                        else {}
                    ),
                }
                for r in state.revisions
            ]
        condition = {
            "type": "Ready",
            "status": "True" if ready else "False",
            "lastTransitionTime": rfc3339(since),
        }
        if reason:
            condition["reason"] = reason
        if message:
            condition["message"] = message
        predictor: dict[str, Any] = {
            "url": public,
            "latestCreatedRevision": latest,
            "traffic": traffic,
            "revisions": revisions,
        }
        if state is not None and state.latest_ready:
            predictor["latestReadyRevision"] = state.latest_ready
        if record.rolled_out is not None:
            predictor["latestRolledoutRevision"] = revision_name(record.name, record.rolled_out)
        return {
            "url": url,
            "address": {"url": base},
            "observedGeneration": record.generation,
            "conditions": [
                {**condition, "type": "PredictorReady"},
                condition,
            ],
            "components": {"predictor": predictor},
        }


# -- validation ------------------------------------------------------------------------


def _validate(
    namespace: str, body: Any, name: str | None = None
) -> tuple[dict[str, Any], str | None, InferenceService]:
    """The object to store (server metadata dropped, namespace set), its base folder and
    the parsed service; Invalid (422) naming every field otherwise."""
    if not isinstance(body, dict):
        raise Invalid("an InferenceService must be a mapping (a YAML or JSON object)")
    kind = body.get("kind", KIND)
    if kind != KIND:  # said first: the rest would be judged as the wrong kind of object
        raise Invalid(
            "the InferenceService is invalid",
            [FieldProblem("kind", f"must be {KIND!r}, got {shown(kind)}")],
        )
    problems: builtins.list[FieldProblem] = []
    metadata = body.get("metadata")
    if not isinstance(metadata, dict):
        raise Invalid(
            "the InferenceService is invalid", [FieldProblem("metadata", "required: name")]
        )
    given = metadata.get("namespace")
    if given is not None and given != namespace:
        problems.append(
            FieldProblem(
                "metadata.namespace",
                f"{shown(given)} does not match the namespace of the request ({namespace!r})",
            )
        )
    problems += check_dns_label(metadata.get("name"), "metadata.name")
    if name is not None and metadata.get("name") != name:
        problems.append(
            FieldProblem(
                "metadata.name",
                f"{shown(metadata.get('name'))} does not match the name in the URL ({name!r})",
            )
        )
    clean = {k: v for k, v in metadata.items() if k not in SERVER_METADATA}
    obj = {k: v for k, v in body.items() if k != "status"}
    obj["metadata"] = {**clean, "namespace": namespace}
    obj.setdefault("apiVersion", API_VERSION)
    obj.setdefault("kind", KIND)
    base_dir = base_dir_of(obj, problems)
    isvc = None
    try:
        isvc = parse_inference_service(obj, base_dir=base_dir)
    except SpecError as exc:
        paths = {p.path for p in problems}
        problems += [FieldProblem(e.path, e.message) for e in exc.errors if e.path not in paths]
    if isvc is not None:
        problems += _deploy_problems(isvc, base_dir, namespace)
    if problems or isvc is None:
        raise Invalid("the InferenceService is invalid", problems)
    return obj, str(base_dir) if base_dir is not None else None, isvc


def _deploy_problems(
    isvc: InferenceService, base_dir: Path | None, namespace: str
) -> builtins.list[FieldProblem]:
    """What the server cannot run (a format, protocol or scheme not served locally; a
    local path it cannot resolve; another namespace's registered model), as field
    problems: refused now, not failed later."""
    problems = []
    for text in deploy_problems(isvc.predictor):
        path, sep, message = text.partition(": ")
        problems.append(
            FieldProblem(path, message) if sep else FieldProblem("spec.predictor", text)
        )
    uri = isvc.predictor.storage_uri
    if not problems and uri is not None and storage_scheme(uri) == "models":
        rest = uri[len("models:/") :].strip("/")
        if "/" in rest or "@" in rest:  # a registered model (models:/m-<id> is an id)
            problem = model_name_problem(namespace, rest.split("@", 1)[0].split("/", 1)[0])
            if problem is not None:
                key = isvc.predictor.implementations()[0]
                return [FieldProblem(f"spec.predictor.{key}.storageUri", problem)]
    if problems or uri is None or storage_scheme(uri) not in ("local", "file"):
        return problems
    key = isvc.predictor.implementations()[0]
    field = f"spec.predictor.{key}.storageUri"
    raw = uri[len("file://") :] if uri.startswith("file://") else uri
    if not Path(raw).expanduser().is_absolute() and base_dir is None:
        return [
            FieldProblem(
                field,
                f"a relative path ({uri!r}) needs the folder it is relative to: the "
                "annotation hyperflow.io/base-dir (hyperflow create -f sends the file's "
                "folder), or an absolute path",
            )
        ]
    try:
        local_storage_path(uri, base_dir)
    except StorageError as exc:
        return [FieldProblem(field, str(exc))]
    return []


def _template(obj: dict[str, Any]) -> dict[str, Any]:
    """What makes a revision (Knative's revision template): the spec and the labels and
    annotations, without ``canaryTrafficPercent`` (that is traffic, not a revision)."""
    spec = copy.deepcopy(obj.get("spec") or {})
    predictor = spec.get("predictor")
    if isinstance(predictor, dict):
        predictor.pop("canaryTrafficPercent", None)
    metadata = obj.get("metadata") or {}
    return {
        "spec": spec,
        "labels": metadata.get("labels") or {},
        "annotations": metadata.get("annotations") or {},
    }
