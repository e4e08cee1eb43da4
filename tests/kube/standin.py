"""A stand-in for the Kubernetes API server, for tests: a local HTTP server that stores
objects and answers the REST API the official ``kubernetes`` client speaks, for the few
kinds hyperflow uses. It is NOT a cluster: no scheduler, no kubelet, no controllers.

What it answers, as an API server does:

* discovery (``/version``, ``/api``, ``/apis``, ``/api/v1``, ``/apis/GROUP/VERSION``);
* ``create`` (POST, ``generateName`` too), ``get``, ``list`` and ``watch`` (label and
  ``metadata.name`` field selectors; ``resourceVersion``; ``410 Gone`` for a version it
  no longer remembers), ``replace`` (PUT, resourceVersion conflicts), ``patch`` (JSON
  merge patch; server-side apply emulated for one field manager: the fields a manager
  applied before and no longer applies are removed), ``delete`` with
  ``propagationPolicy`` (Background/Foreground delete the object's dependents by
  ownerReferences, Orphan keeps them; a batch/v1 Job's default is Orphan, as the API's);
* ``pods/log`` (``container``, ``follow`` until the container ends, the API's 400s for a
  missing container name or a container still waiting to start);
* namespaces must exist (``default`` does); an optional bearer token (401 without it).

Every object written is validated against the official schemas of the Kubernetes version
it stands in for (:mod:`tests.kube.schemas`, strict: unknown fields are errors) plus the
API server's own rules that matter here (names, label values, a Job's restartPolicy,
container images), and refused with ``422 Invalid`` listing every cause by field, as an
API server does. Custom resources are served after their CustomResourceDefinition is
created (itself validated), checked against its ``openAPIV3Schema``. A KServe
InferenceService (no schema ships with kubernetes-validate) is checked by KServe's field
rules as :mod:`serving.spec` models them, its metadata and predictor containers by the
official ObjectMeta and Container schemas.

What a cluster's controllers and kubelets would do, tests do through the **test API**:
the ``simulate_*`` methods (a Job's pod appears, runs, writes its log, exits; any
object's status changes), plus ``objects``/``deletions`` to look at what was stored.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.kube import schemas
from tests.util import free_port, wait_until

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


@dataclass(frozen=True)
class Kind:
    group_version: str
    kind: str
    plural: str
    namespaced: bool = True
    status: bool = False  # has a status subresource: writes to the object keep its status
    crd_schema: dict[str, Any] | None = None

    @property
    def verbs(self) -> list[str]:
        return ["create", "delete", "get", "list", "patch", "update", "watch"]


BUILTIN = [
    Kind("v1", "Namespace", "namespaces", namespaced=False, status=True),
    Kind("v1", "Pod", "pods", status=True),
    Kind("v1", "Service", "services", status=True),
    Kind("v1", "ConfigMap", "configmaps"),
    Kind("v1", "Secret", "secrets"),
    Kind("v1", "ServiceAccount", "serviceaccounts"),
    Kind("v1", "PersistentVolumeClaim", "persistentvolumeclaims", status=True),
    Kind("batch/v1", "Job", "jobs", status=True),
    Kind("apps/v1", "Deployment", "deployments", status=True),
    Kind("apps/v1", "StatefulSet", "statefulsets", status=True),
    Kind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", status=True),
    Kind("rbac.authorization.k8s.io/v1", "Role", "roles"),
    Kind("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
    Kind(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        namespaced=False,
        status=True,
    ),
    Kind("serving.kserve.io/v1beta1", "InferenceService", "inferenceservices", status=True),
]


class ApiError(Exception):
    def __init__(
        self, code: int, reason: str, message: str, causes: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.causes = causes or []

    def status(self, kind: str = "", name: str = "") -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        details: dict[str, Any] = {}
        if name:
            details["name"] = name
        if kind:
            details["kind"] = kind
        if self.causes:
            details["causes"] = [
                {"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in self.causes
            ]
        if details:
            body["details"] = details
        return body


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class _Event:
    rv: int
    kind: Kind
    type: str
    object: dict[str, Any]


@dataclass
class _Log:
    data: bytearray = field(default_factory=bytearray)


class KubeApiStandIn:
    """The stand-in: ``with KubeApiStandIn() as api: KubeClient(host=api.url)``."""

    def __init__(
        self, kubernetes_version: str = schemas.KSERVE_MINIMUM, token: str | None = None
    ) -> None:
        self.version = kubernetes_version
        self.token = token
        self._lock = threading.RLock()
        self._kinds: dict[tuple[str, str], Kind] = {(k.group_version, k.plural): k for k in BUILTIN}
        self._objects: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {}
        self._events: list[_Event] = []
        self._forgotten_before = 0  # watches from a version below this get 410 Gone
        self._rv = 0
        self._logs: dict[tuple[str, str, str], _Log] = {}
        self._applied: dict[tuple[str, str, str, str, str], dict[str, Any]] = {}
        self.deletions: list[dict[str, str]] = []
        self.requests = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        for ns in ("default", "kube-system"):
            self._store_new(
                self._kinds[("v1", "namespaces")],
                None,
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": ns},
                    "status": {"phase": "Active"},
                },
            )

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> KubeApiStandIn:
        self.port = free_port()
        app = Starlette(
            routes=[
                Route(
                    "/{path:path}", self._handle, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]
                )
            ]
        )
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, name="kube-api-standin", daemon=True
        )
        self._thread.start()
        wait_until(lambda: self._server is not None and self._server.started, timeout=30)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(30)

    def __enter__(self) -> KubeApiStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test API: what a cluster's controllers and kubelets would do --------------------------

    def objects(
        self, api_version: str, kind: str, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        """Copies of the stored objects of a kind (in one namespace, or all)."""
        k = self._kind_of(api_version, kind)
        with self._lock:
            return [
                copy.deepcopy(o)
                for (ns, _), o in sorted(self._objects.get((k.group_version, k.plural), {}).items())
                if namespace is None or ns == namespace
            ]

    def get_object(
        self, api_version: str, kind: str, name: str, namespace: str | None = "default"
    ) -> dict[str, Any] | None:
        k = self._kind_of(api_version, kind)
        with self._lock:
            obj = self._bucket(k).get((namespace if k.namespaced else "", name))
            return copy.deepcopy(obj) if obj is not None else None

    def simulate_status(
        self,
        api_version: str,
        kind: str,
        name: str,
        status: dict[str, Any],
        namespace: str = "default",
    ) -> None:
        """Set an object's status, as its controller would (a MODIFIED event)."""
        k = self._kind_of(api_version, kind)
        with self._lock:
            obj = self._require(k, namespace, name)
            obj = copy.deepcopy(obj)
            obj["status"] = copy.deepcopy(status)
            self._store_update(k, obj)

    def simulate_job_pod(
        self, job: str, namespace: str = "default", *, phase: str = "Running"
    ) -> str:
        """The job controller creates the Job's pod and the kubelet starts it (``Pending``:
        created, its containers waiting). Returns the pod's name."""
        jobs = self._kind_of("batch/v1", "Job")
        pods = self._kind_of("v1", "Pod")
        with self._lock:
            owner = self._require(jobs, namespace, job)
            template = owner["spec"]["template"]
            uid = owner["metadata"]["uid"]
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "generateName": f"{job}-",
                    "namespace": namespace,
                    "labels": dict((template.get("metadata") or {}).get("labels") or {}),
                    "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
                    "ownerReferences": [
                        {
                            "apiVersion": "batch/v1",
                            "kind": "Job",
                            "name": job,
                            "uid": uid,
                            "controller": True,
                            "blockOwnerDeletion": True,
                        }
                    ],
                },
                "spec": copy.deepcopy(template["spec"]),
            }
            stored = self._store_new(pods, namespace, pod)
            name = stored["metadata"]["name"]
            self.simulate_pod_phase(name, phase, namespace=namespace)
            status = copy.deepcopy(owner.get("status") or {})
            status.setdefault("startTime", _now())
            status["active"] = 1
            self.simulate_status("batch/v1", "Job", job, status, namespace)
            return str(name)

    def simulate_pod_phase(
        self,
        pod: str,
        phase: str,
        *,
        namespace: str = "default",
        exit_code: int | None = None,
        reason: str | None = None,
        message: str | None = None,
    ) -> None:
        """The kubelet's view of a pod: ``Pending`` (containers waiting, with ``reason``),
        ``Running``, ``Succeeded``/``Failed`` (containers terminated with ``exit_code``)."""
        pods = self._kind_of("v1", "Pod")
        with self._lock:
            obj = copy.deepcopy(self._require(pods, namespace, pod))
            statuses = []
            for c in obj["spec"]["containers"]:
                if phase == "Pending":
                    state: dict[str, Any] = {
                        "waiting": {
                            "reason": reason or "ContainerCreating",
                            **({"message": message} if message else {}),
                        }
                    }
                elif phase == "Running":
                    state = {"running": {"startedAt": _now()}}
                else:
                    code = (
                        exit_code if exit_code is not None else (0 if phase == "Succeeded" else 1)
                    )
                    state = {
                        "terminated": {
                            "exitCode": code,
                            "reason": reason or ("Completed" if code == 0 else "Error"),
                            "startedAt": _now(),
                            "finishedAt": _now(),
                            **({"message": message} if message else {}),
                        }
                    }
                statuses.append(
                    {
                        "name": c["name"],
                        "image": c.get("image", ""),
                        "imageID": "",
                        "ready": phase == "Running",
                        "restartCount": 0,
                        "started": phase == "Running",
                        "state": state,
                    }
                )
            obj["status"] = {"phase": phase, "containerStatuses": statuses, "startTime": _now()}
            if phase == "Pending" and reason and reason not in ("ContainerCreating",):
                obj["status"]["conditions"] = [{"type": "PodScheduled", "status": "True"}]
            self._store_update(pods, obj)

    def simulate_log(
        self,
        pod: str,
        text: str | bytes,
        *,
        namespace: str = "default",
        container: str | None = None,
    ) -> None:
        """Bytes the pod's container writes to its stdout/stderr."""
        pods = self._kind_of("v1", "Pod")
        with self._lock:
            obj = self._require(pods, namespace, pod)
            name = container or obj["spec"]["containers"][0]["name"]
            data = text.encode() if isinstance(text, str) else text
            self._logs.setdefault((namespace, pod, name), _Log()).data.extend(data)

    def simulate_job_finished(
        self,
        job: str,
        exit_code: int = 0,
        *,
        namespace: str = "default",
        message: str | None = None,
    ) -> None:
        """The Job's pod exits with ``exit_code`` and the job controller records the Job as
        ``Complete`` (0) or ``Failed`` (backoff limit reached, as with ``backoffLimit: 0``)."""
        with self._lock:
            owner = self._require(self._kind_of("batch/v1", "Job"), namespace, job)
            for pod in self._dependents(owner):
                if pod["kind"] == "Pod" and pod["status"].get("phase") not in (
                    "Succeeded",
                    "Failed",
                ):
                    self.simulate_pod_phase(
                        pod["metadata"]["name"],
                        "Succeeded" if exit_code == 0 else "Failed",
                        namespace=namespace,
                        exit_code=exit_code,
                        message=message,
                    )
            status = copy.deepcopy(owner.get("status") or {})
            status.pop("active", None)
            now = _now()
            if exit_code == 0:
                status["succeeded"] = 1
                status["completionTime"] = now
                status["conditions"] = [
                    {
                        "type": "SuccessCriteriaMet",
                        "status": "True",
                        "reason": "CompletionsReached",
                        "message": "Reached expected number of succeeded pods",
                        "lastProbeTime": now,
                        "lastTransitionTime": now,
                    },
                    {
                        "type": "Complete",
                        "status": "True",
                        "reason": "CompletionsReached",
                        "message": "Reached expected number of succeeded pods",
                        "lastProbeTime": now,
                        "lastTransitionTime": now,
                    },
                ]
            else:
                status["failed"] = 1
                status["conditions"] = [
                    {
                        "type": "FailureTarget",
                        "status": "True",
                        "reason": "BackoffLimitExceeded",
                        "message": "Job has reached the specified backoff limit",
                        "lastProbeTime": now,
                        "lastTransitionTime": now,
                    },
                    {
                        "type": "Failed",
                        "status": "True",
                        "reason": "BackoffLimitExceeded",
                        "message": "Job has reached the specified backoff limit",
                        "lastProbeTime": now,
                        "lastTransitionTime": now,
                    },
                ]
            self.simulate_status("batch/v1", "Job", job, status, namespace)

    def forget_events(self) -> None:
        """Compaction: watches from any version before now get ``410 Gone``."""
        with self._lock:
            self._forgotten_before = self._rv + 1
            self._events.clear()

    # -- storage ----------------------------------------------------------------------------------

    def _kind_of(self, api_version: str, kind: str) -> Kind:
        with self._lock:
            for k in self._kinds.values():
                if k.group_version == api_version and k.kind == kind:
                    return k
        raise KeyError(f"the stand-in serves no {kind} in {api_version}")

    def _bucket(self, k: Kind) -> dict[tuple[str, str], dict[str, Any]]:
        return self._objects.setdefault((k.group_version, k.plural), {})

    def _require(self, k: Kind, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self._bucket(k).get((namespace or "" if k.namespaced else "", name))
        if obj is None:
            raise ApiError(404, "NotFound", f'{k.plural} "{name}" not found')
        return obj

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def _record(self, k: Kind, type_: str, obj: dict[str, Any]) -> None:
        self._events.append(
            _Event(int(obj["metadata"]["resourceVersion"]), k, type_, copy.deepcopy(obj))
        )

    def _store_new(self, k: Kind, namespace: str | None, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        if k.namespaced:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta["creationTimestamp"] = _now()
        meta["generation"] = 1
        meta["resourceVersion"] = str(self._next_rv())
        key = (namespace or "" if k.namespaced else "", meta["name"])
        bucket = self._bucket(k)
        if key in bucket:
            raise ApiError(409, "AlreadyExists", f'{k.plural} "{meta["name"]}" already exists')
        bucket[key] = obj
        self._record(k, "ADDED", obj)
        if k.kind == "CustomResourceDefinition":
            self._register_crd(obj)
        return obj

    def _store_update(self, k: Kind, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        key = (meta.get("namespace") or "" if k.namespaced else "", meta["name"])
        old = self._bucket(k).get(key)
        if old is not None and {
            x: y for x, y in old.items() if x not in ("metadata", "status")
        } != {x: y for x, y in obj.items() if x not in ("metadata", "status")}:
            meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
        meta["resourceVersion"] = str(self._next_rv())
        self._bucket(k)[key] = obj
        self._record(k, "MODIFIED", obj)
        return obj

    def _dependents(self, owner: dict[str, Any]) -> list[dict[str, Any]]:
        uid = owner["metadata"]["uid"]
        found = []
        for bucket in self._objects.values():
            for obj in bucket.values():
                if any(r.get("uid") == uid for r in obj["metadata"].get("ownerReferences") or []):
                    found.append(obj)
        return found

    def _delete(self, k: Kind, obj: dict[str, Any], propagation: str) -> None:
        meta = obj["metadata"]
        key = (meta.get("namespace") or "" if k.namespaced else "", meta["name"])
        dependents = self._dependents(obj)
        if propagation == "Foreground":
            for dep in dependents:
                self._delete(self._kind_of(dep["apiVersion"], dep["kind"]), dep, "Background")
        self._bucket(k).pop(key, None)
        meta["resourceVersion"] = str(self._next_rv())
        meta["deletionTimestamp"] = _now()
        self._record(k, "DELETED", obj)
        for log_key in (
            [lk for lk in self._logs if lk[:2] == (meta.get("namespace"), meta["name"])]
            if k.kind == "Pod"
            else []
        ):
            del self._logs[log_key]
        if propagation == "Background":  # the garbage collector, right after the owner
            for dep in dependents:
                self._delete(self._kind_of(dep["apiVersion"], dep["kind"]), dep, "Background")
        elif propagation == "Orphan":
            for dep in dependents:
                dep = copy.deepcopy(dep)
                dep["metadata"]["ownerReferences"] = [
                    r for r in dep["metadata"]["ownerReferences"] if r.get("uid") != meta["uid"]
                ] or None
                if dep["metadata"]["ownerReferences"] is None:
                    del dep["metadata"]["ownerReferences"]
                self._store_update(self._kind_of(dep["apiVersion"], dep["kind"]), dep)

    def _register_crd(self, crd: dict[str, Any]) -> None:
        spec = crd["spec"]
        for version in spec["versions"]:
            if not version.get("served", True):
                continue
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            gv = f"{spec['group']}/{version['name']}"
            self._kinds[(gv, spec["names"]["plural"])] = Kind(
                gv,
                spec["names"]["kind"],
                spec["names"]["plural"],
                namespaced=spec["scope"] == "Namespaced",
                status="status" in (version.get("subresources") or {}),
                crd_schema=schema,
            )

    # -- validation --------------------------------------------------------------------------

    def _validate(self, k: Kind, obj: dict[str, Any]) -> None:
        causes: list[tuple[str, str]] = []
        if obj.get("apiVersion") != k.group_version or obj.get("kind") != k.kind:
            raise ApiError(
                400,
                "BadRequest",
                f"the object is a {obj.get('apiVersion')} {obj.get('kind')}, not a {k.group_version} {k.kind}",
            )
        if k.crd_schema is not None:
            causes += _crd_problems(obj, k.crd_schema)
            causes += [
                ("metadata" + (f".{p}" if p else ""), m)
                for p, m in schemas.problems(
                    obj.get("metadata") or {}, self.version, type_file="objectmeta-meta-v1.json"
                )
            ]
        elif k.kind == "InferenceService":
            causes += self._isvc_problems(obj)
        else:
            causes += schemas.problems(obj, self.version)
        causes += _apiserver_rules(k, obj)
        if causes:
            name = (obj.get("metadata") or {}).get("name") or ""
            text = ", ".join(f"{f}: {m}" for f, m in causes)
            raise ApiError(422, "Invalid", f'{k.kind} "{name}" is invalid: {text}', causes)

    def _isvc_problems(self, obj: dict[str, Any]) -> list[tuple[str, str]]:
        from serving.spec import SpecError, parse_inference_service

        found = [
            ("metadata" + (f".{p}" if p else ""), m)
            for p, m in schemas.problems(
                obj.get("metadata") or {}, self.version, type_file="objectmeta-meta-v1.json"
            )
        ]
        try:
            parse_inference_service(copy.deepcopy(obj))
        except SpecError as exc:
            found += [(e.path, e.message) for e in exc.errors]
        predictor = (obj.get("spec") or {}).get("predictor") or {}
        for i, container in enumerate(predictor.get("containers") or []):
            found += [
                (f"spec.predictor.containers[{i}]" + (f".{p}" if p else ""), m)
                for p, m in schemas.problems(container, self.version, type_file="container-v1.json")
            ]
        model = predictor.get("model")
        if isinstance(model, dict):
            kserve_fields = {
                "modelFormat",
                "runtime",
                "storageUri",
                "storage",
                "protocolVersion",
                "runtimeVersion",
            }
            container = {key: v for key, v in model.items() if key not in kserve_fields}
            container.setdefault("name", "kserve-container")
            found += [
                ("spec.predictor.model" + (f".{p}" if p else ""), m)
                for p, m in schemas.problems(container, self.version, type_file="container-v1.json")
            ]
        return found

    # -- HTTP ---------------------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        self.requests += 1
        if (
            self.token is not None
            and request.headers.get("authorization") != f"Bearer {self.token}"
        ):
            return _status(ApiError(401, "Unauthorized", "Unauthorized"))
        try:
            return await self._route(request)
        except ApiError as exc:
            return _status(exc)

    async def _route(self, request: Request) -> Response:
        parts = [p for p in request.url.path.split("/") if p]
        method = request.method
        if parts == ["version"]:
            major, minor = self.version.split(".")[:2]
            return JSONResponse(
                {
                    "major": major,
                    "minor": minor,
                    "gitVersion": f"v{self.version}.0-hyperflow-standin",
                    "gitCommit": "0" * 40,
                    "gitTreeState": "clean",
                    "buildDate": "2026-01-01T00:00:00Z",
                    "goVersion": "go1.22.0",
                    "compiler": "gc",
                    "platform": "linux/amd64",
                }
            )
        if parts == ["api"]:
            return JSONResponse(
                {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
            )
        if parts == ["apis"]:
            return JSONResponse(self._groups())
        if not parts or parts[0] not in ("api", "apis"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if parts[0] == "api":
            gv, rest = parts[1] if len(parts) > 1 else "", parts[2:]
        else:
            if len(parts) < 3:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            gv, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        if not rest:
            return JSONResponse(self._resources(gv))
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        plural, name, sub = (
            rest[0],
            (rest[1] if len(rest) > 1 else None),
            (rest[2] if len(rest) > 2 else None),
        )
        with self._lock:
            k = self._kinds.get((gv, plural))
        if k is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if namespace is not None and not k.namespaced:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if name is None:
            if method == "GET":
                if request.query_params.get("watch") in ("true", "1"):
                    return self._watch(k, namespace, request)
                return JSONResponse(self._list(k, namespace, request))
            if method == "POST":
                if k.namespaced and namespace is None:
                    raise ApiError(405, "MethodNotAllowed", "create needs a namespace in the path")
                return JSONResponse(
                    self._create(k, namespace, await _body(request)), status_code=201
                )
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on a collection")
        if k.namespaced and namespace is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if sub == "log" and k.kind == "Pod" and method == "GET":
            return self._log(namespace or "", name, request)
        if sub not in (None, "status"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if method == "GET":
            with self._lock:
                return JSONResponse(copy.deepcopy(self._require(k, namespace, name)))
        if method == "PUT":
            return JSONResponse(
                self._replace(k, namespace, name, await _body(request), status_only=sub == "status")
            )
        if method == "PATCH":
            return JSONResponse(await self._patch(k, namespace, name, request))
        if method == "DELETE":
            body = await _body(request, required=False) or {}
            policy = body.get("propagationPolicy") or request.query_params.get("propagationPolicy")
            with self._lock:
                obj = self._require(k, namespace, name)
                if policy is None:
                    policy = "Orphan" if k.kind == "Job" else "Background"
                if policy not in ("Background", "Foreground", "Orphan"):
                    raise ApiError(
                        422,
                        "Invalid",
                        f"propagationPolicy: Unsupported value: {policy!r}",
                        [("propagationPolicy", "Unsupported value")],
                    )
                self.deletions.append(
                    {
                        "kind": k.kind,
                        "namespace": namespace or "",
                        "name": name,
                        "propagationPolicy": policy,
                    }
                )
                self._delete(k, obj, policy)
                return JSONResponse(copy.deepcopy(obj))
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported")

    def _groups(self) -> dict[str, Any]:
        with self._lock:
            versions: dict[str, list[str]] = {}
            for k in self._kinds.values():
                if "/" in k.group_version:
                    group, version = k.group_version.split("/")
                    versions.setdefault(group, [])
                    if version not in versions[group]:
                        versions[group].append(version)
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": g,
                    "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                    "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]},
                }
                for g, vs in versions.items()
            ],
        }

    def _resources(self, gv: str) -> dict[str, Any]:
        with self._lock:
            kinds = [k for k in self._kinds.values() if k.group_version == gv]
        if not kinds:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        resources = []
        for k in kinds:
            resources.append(
                {
                    "name": k.plural,
                    "singularName": k.kind.lower(),
                    "namespaced": k.namespaced,
                    "kind": k.kind,
                    "verbs": k.verbs,
                }
            )
            if k.status:
                resources.append(
                    {
                        "name": f"{k.plural}/status",
                        "singularName": "",
                        "namespaced": k.namespaced,
                        "kind": k.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
            if k.kind == "Pod":
                resources.append(
                    {
                        "name": "pods/log",
                        "singularName": "",
                        "namespaced": True,
                        "kind": "Pod",
                        "verbs": ["get"],
                    }
                )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": gv,
            "resources": resources,
        }

    def _check_namespace(self, namespace: str) -> None:
        if ("", namespace) not in self._bucket(self._kinds[("v1", "namespaces")]):
            raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found')

    def _create(self, k: Kind, namespace: str | None, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body must be an object")
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError(400, "BadRequest", "metadata must be an object")
        if k.namespaced:
            given = meta.get("namespace")
            if given and given != namespace:
                raise ApiError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
        for server_set in (
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
        ):
            meta.pop(server_set, None)
        if k.status or k.crd_schema is not None:
            obj.pop("status", None)
        if not meta.get("name") and not meta.get("generateName"):
            raise ApiError(
                422,
                "Invalid",
                f"{k.kind}.{k.group_version} is invalid: metadata.name: Required value: name or generateName is required",
                [("metadata.name", "Required value: name or generateName is required")],
            )
        with self._lock:
            if k.namespaced:
                assert namespace is not None
                self._check_namespace(namespace)
                meta["namespace"] = namespace
            meta["uid"] = str(uuid.uuid4())
            _default(k, obj)
            probe = copy.deepcopy(obj)
            if not probe["metadata"].get("name"):
                probe["metadata"]["name"] = probe["metadata"]["generateName"] + "xxxxx"
            self._validate(k, probe)
            return copy.deepcopy(self._store_new(k, namespace, obj))

    def _replace(
        self, k: Kind, namespace: str | None, name: str, body: Any, *, status_only: bool = False
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body must be an object")
        with self._lock:
            old = self._require(k, namespace, name)
            want = (body.get("metadata") or {}).get("resourceVersion")
            if want is not None and want != old["metadata"]["resourceVersion"]:
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {k.plural} "{name}": the object has been modified; please apply your changes to the latest version and try again',
                )
            return copy.deepcopy(self._write(k, old, body, status_only=status_only))

    def _write(
        self, k: Kind, old: dict[str, Any], new: dict[str, Any], *, status_only: bool = False
    ) -> dict[str, Any]:
        obj = copy.deepcopy(old if status_only else new)
        if status_only:
            obj["status"] = copy.deepcopy(new.get("status"))
        elif k.status or k.crd_schema is not None:
            if "status" in old:
                obj["status"] = copy.deepcopy(old["status"])
            else:
                obj.pop("status", None)
        meta = obj.setdefault("metadata", {})
        if (meta.get("name") or old["metadata"]["name"]) != old["metadata"]["name"]:
            raise ApiError(
                400, "BadRequest", "the name of the object does not match the name on the URL"
            )
        for kept in (
            "uid",
            "creationTimestamp",
            "generation",
            "namespace",
            "name",
            "resourceVersion",
        ):
            if kept in old["metadata"]:
                meta[kept] = old["metadata"][kept]
        _default(k, obj)
        self._validate(k, obj)
        return self._store_update(k, obj)

    async def _patch(
        self, k: Kind, namespace: str | None, name: str, request: Request
    ) -> dict[str, Any]:
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        body = await _body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the patch must be an object")
        if content_type == "application/apply-patch+yaml":
            manager = request.query_params.get("fieldManager")
            if not manager:
                raise ApiError(
                    400,
                    "BadRequest",
                    "PatchOptions.meta.k8s.io is invalid: fieldManager: Required value: is required for apply patch",
                )
            with self._lock:
                key = (k.group_version, k.plural, namespace or "", name, manager)
                existing = self._bucket(k).get((namespace or "" if k.namespaced else "", name))
                if existing is None:
                    created = self._create(k, namespace, body)
                    self._applied[key] = copy.deepcopy(body)
                    return created
                merged = copy.deepcopy(existing)
                _remove_dropped(merged, self._applied.get(key) or {}, body)
                _merge(merged, body)
                result = self._write(k, existing, merged)
                self._applied[key] = copy.deepcopy(body)
                return copy.deepcopy(result)
        if content_type in (
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
        ):
            # A strategic merge patch is taken as a JSON merge patch: lists are replaced
            # whole rather than merged by key (enough for the patches hyperflow sends).
            with self._lock:
                existing = self._require(k, namespace, name)
                merged = copy.deepcopy(existing)
                _merge_patch(merged, body)
                return copy.deepcopy(self._write(k, existing, merged))
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (got {content_type!r})",
        )

    def _list(self, k: Kind, namespace: str | None, request: Request) -> dict[str, Any]:
        match = _selector(request)
        with self._lock:
            items = [
                copy.deepcopy(o)
                for (ns, _), o in sorted(self._bucket(k).items())
                if (namespace is None or ns == namespace) and match(o)
            ]
            rv = str(self._rv)
        for item in items:  # as a real API server: list items carry no kind
            item.pop("apiVersion", None)
            item.pop("kind", None)
        return {
            "kind": f"{k.kind}List",
            "apiVersion": k.group_version,
            "metadata": {"resourceVersion": rv},
            "items": items,
        }

    def _watch(self, k: Kind, namespace: str | None, request: Request) -> Response:
        match = _selector(request)
        since = request.query_params.get("resourceVersion")
        timeout = float(request.query_params.get("timeoutSeconds") or 1800)
        bookmarks = request.query_params.get("allowWatchBookmarks") in ("true", "1")

        def wanted(e: _Event) -> bool:
            meta = e.object["metadata"]
            return (
                e.kind == k
                and (namespace is None or meta.get("namespace") == namespace)
                and match(e.object)
            )

        with self._lock:
            if since in (None, "", "0"):
                start = self._rv
                initial = [
                    _Event(int(o["metadata"]["resourceVersion"]), k, "ADDED", copy.deepcopy(o))
                    for (ns, _), o in sorted(self._bucket(k).items())
                    if (namespace is None or ns == namespace) and match(o)
                ]
            else:
                try:
                    start = int(since)
                except ValueError:
                    raise ApiError(
                        400, "BadRequest", f"invalid resourceVersion {since!r}"
                    ) from None
                initial = []
                if start < self._forgotten_before - 1:
                    gone = ApiError(
                        410,
                        "Expired",
                        f"too old resource version: {start} ({self._forgotten_before - 1})",
                    )
                    return _stream(iter([_line("ERROR", gone.status())]))

        async def events() -> AsyncIterator[bytes]:
            last = start
            for e in initial:
                yield _line(e.type, e.object)
            deadline = time.monotonic() + timeout
            while (
                time.monotonic() < deadline
                and self._server is not None
                and not self._server.should_exit
            ):
                with self._lock:
                    if last < self._forgotten_before - 1:
                        gone = ApiError(410, "Expired", f"too old resource version: {last}")
                        yield _line("ERROR", gone.status())
                        return
                    new = [e for e in self._events if e.rv > last]
                    if new:
                        last = new[-1].rv
                    current = self._rv
                for e in new:
                    if wanted(e):
                        yield _line(e.type, e.object)
                if bookmarks and not new and current > last:
                    last = current
                await asyncio.sleep(0.01)

        return StreamingResponse(events(), media_type="application/json")

    def _log(self, namespace: str, name: str, request: Request) -> Response:
        pods = self._kinds[("v1", "pods")]
        container = request.query_params.get("container")
        follow = request.query_params.get("follow") in ("true", "1")
        limit = request.query_params.get("limitBytes")
        with self._lock:
            pod = self._require(pods, namespace, name)
            names = [c["name"] for c in pod["spec"]["containers"]]
            if container is None:
                if len(names) > 1:
                    raise ApiError(
                        400,
                        "BadRequest",
                        f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]",
                    )
                container = names[0]
            if container not in names:
                raise ApiError(
                    400, "BadRequest", f"container {container} is not valid for pod {name}"
                )
            state = _container_state(pod, container)
            if "waiting" in state or not state:
                reason = (state.get("waiting") or {}).get("reason", "ContainerCreating")
                raise ApiError(
                    400,
                    "BadRequest",
                    f'container "{container}" in pod "{name}" is waiting to start: {reason}',
                )

        key = (namespace, name, container)
        if not follow:
            with self._lock:
                data = bytes(self._logs.get(key, _Log()).data)
            if limit:
                data = data[: int(limit)]
            return Response(data, media_type="text/plain")

        async def chunks() -> AsyncIterator[bytes]:
            sent = 0
            while self._server is not None and not self._server.should_exit:
                with self._lock:
                    current = self._bucket(pods).get((namespace, name))
                    data = bytes(self._logs.get(key, _Log()).data[sent:])
                    ended = current is None or "terminated" in _container_state(current, container)
                if data:
                    sent += len(data)
                    yield data
                elif ended:
                    return
                else:
                    await asyncio.sleep(0.01)

        return StreamingResponse(chunks(), media_type="text/plain")


# -- helpers -----------------------------------------------------------------------------------


def _status(exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.status(), status_code=exc.code)


def _line(type_: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": type_, "object": obj}).encode() + b"\n"


def _stream(lines: Iterator[bytes]) -> StreamingResponse:
    return StreamingResponse(lines, media_type="application/json")


async def _body(request: Request, required: bool = True) -> Any:
    raw = await request.body()
    if not raw:
        if required:
            raise ApiError(400, "BadRequest", "the request has no body")
        return None
    try:
        if request.headers.get("content-type", "").startswith("application/apply-patch+yaml"):
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise ApiError(400, "BadRequest", f"the body is not valid: {exc}") from None


def _container_state(pod: dict[str, Any], container: str) -> dict[str, Any]:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == container:
            return dict(status.get("state") or {})
    return {}


def _selector(request: Request) -> Any:
    """labelSelector (=, ==, !=, in, notin, exists, !key) and the metadata.name /
    metadata.namespace field selectors."""
    tests = []
    for part in _split_selector(request.query_params.get("labelSelector") or ""):
        m = re.fullmatch(r"\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*", part)
        if m:
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
            tests.append(
                lambda labels, k=key, o=op, vs=values: (
                    (labels.get(k) in vs) if o == "in" else (labels.get(k) not in vs)
                )
            )
            continue
        m = re.fullmatch(r"\s*([^\s!=]+)\s*(==|=|!=)\s*([^\s]*)\s*", part)
        if m:
            key, op, value = m.group(1), m.group(2), m.group(3)
            tests.append(
                lambda labels, k=key, o=op, v=value: (
                    (labels.get(k) == v) if o != "!=" else labels.get(k) != v
                )
            )
            continue
        m = re.fullmatch(r"\s*(!?)([^\s!=]+)\s*", part)
        if m:
            tests.append(lambda labels, neg=m.group(1), k=m.group(2): (k in labels) != bool(neg))
            continue
        raise ApiError(400, "BadRequest", f"unable to parse requirement: {part!r}")
    fields = []
    for part in _split_selector(request.query_params.get("fieldSelector") or ""):
        m = re.fullmatch(r"\s*(metadata\.name|metadata\.namespace)\s*(==|=|!=)\s*(\S*)\s*", part)
        if m is None:
            raise ApiError(400, "BadRequest", f'field label not supported: "{part.split("=")[0]}"')
        fields.append((m.group(1).split(".")[1], m.group(2) != "!=", m.group(3)))

    def match(obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        labels = meta.get("labels") or {}
        return all(t(labels) for t in tests) and all(
            (meta.get(f) == v) == eq for f, eq, v in fields
        )

    return match


def _split_selector(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current)
    return [p for p in parts if p.strip()]


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """RFC 7386: null removes a field, objects merge, anything else replaces."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge_patch(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _remove_dropped(target: dict[str, Any], before: dict[str, Any], now: dict[str, Any]) -> None:
    """Server-side apply for one manager: a field it applied before and applies no more
    is removed (lists and scalars are owned whole)."""
    for key, value in before.items():
        if key not in now:
            if key not in ("apiVersion", "kind", "metadata"):
                target.pop(key, None)
        elif (
            isinstance(value, dict)
            and isinstance(now[key], dict)
            and isinstance(target.get(key), dict)
        ):
            _remove_dropped(target[key], value, now[key])


def _default(k: Kind, obj: dict[str, Any]) -> None:
    """The API server's defaulting that the tests rely on (a Job's pod labels)."""
    if k.kind == "Job":
        spec = obj.setdefault("spec", {})
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completions", 1)
        spec.setdefault("parallelism", 1)
        name = obj["metadata"].get("name") or obj["metadata"].get("generateName", "")
        template = spec.setdefault("template", {})
        labels = template.setdefault("metadata", {}).setdefault("labels", {})
        uid = obj["metadata"]["uid"]
        labels.setdefault("batch.kubernetes.io/job-name", name)
        labels.setdefault("job-name", name)
        labels.setdefault("batch.kubernetes.io/controller-uid", uid)
        labels.setdefault("controller-uid", uid)
        spec.setdefault("selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})


def _apiserver_rules(k: Kind, obj: dict[str, Any]) -> list[tuple[str, str]]:
    """The API server's validation beyond the schema, for what hyperflow writes."""
    found: list[tuple[str, str]] = []
    meta = obj.get("metadata") or {}
    name = str(meta.get("name") or "")
    if k.kind in ("Service", "Namespace"):
        if not (_DNS_LABEL.match(name) and len(name) <= 63):
            found.append(
                (
                    "metadata.name",
                    f"Invalid value: {name!r}: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (at most 63 characters)",
                )
            )
    elif not (_DNS_SUBDOMAIN.match(name) and len(name) <= 253):
        found.append(
            (
                "metadata.name",
                f"Invalid value: {name!r}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            )
        )
    if k.kind == "Job" and len(name) > 63:
        found.append(
            (
                "metadata.name",
                f"Invalid value: {name!r}: must be no more than 63 characters (it is the value of the job-name label)",
            )
        )
    found += _labels("metadata.labels", meta.get("labels"))
    spec = obj.get("spec") or {}
    pod_specs: list[tuple[str, dict[str, Any]]] = []
    if k.kind == "Pod":
        pod_specs.append(("spec", spec))
    elif k.kind in ("Job", "Deployment", "StatefulSet"):
        template = spec.get("template") or {}
        pod_specs.append(("spec.template.spec", template.get("spec") or {}))
        found += _labels(
            "spec.template.metadata.labels", (template.get("metadata") or {}).get("labels")
        )
        if k.kind == "Job" and (template.get("spec") or {}).get("restartPolicy") not in (
            "Never",
            "OnFailure",
        ):
            found.append(
                (
                    "spec.template.spec.restartPolicy",
                    'Required value: valid values: "OnFailure", "Never"',
                )
            )
        if k.kind in ("Deployment", "StatefulSet"):
            selector = (spec.get("selector") or {}).get("matchLabels") or {}
            labels = (template.get("metadata") or {}).get("labels") or {}
            if not selector or any(labels.get(a) != b for a, b in selector.items()):
                found.append(
                    (
                        "spec.template.metadata.labels",
                        "Invalid value: `selector` does not match template `labels`",
                    )
                )
    for path, pod_spec in pod_specs:
        containers = pod_spec.get("containers") or []
        if not containers:
            found.append((f"{path}.containers", "Required value"))
        for group in ("initContainers", "containers"):
            for i, c in enumerate(pod_spec.get(group) or []):
                if not c.get("image"):
                    found.append((f"{path}.{group}[{i}].image", "Required value"))
    if k.kind == "Service" and not spec.get("ports") and spec.get("clusterIP") != "None":
        found.append(("spec.ports", "Required value"))
    return found


def _labels(path: str, labels: Any) -> list[tuple[str, str]]:
    found = []
    for key, value in (labels or {}).items():
        name = str(key).rsplit("/", 1)[-1]
        if not (_LABEL_NAME.match(name) and len(name) <= 63):
            found.append((path, f"Invalid value: {key!r}: name part must be a valid label name"))
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            found.append(
                (
                    path,
                    f"Invalid value: {value!r}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (at most 63 characters)",
                )
            )
    return found


def _crd_problems(obj: dict[str, Any], schema: dict[str, Any] | None) -> list[tuple[str, str]]:
    """A custom resource against its CRD's openAPIV3Schema (structural: types, required,
    enums; a real API server also prunes unknown fields, which this keeps)."""
    if not schema:
        return []
    import jsonschema

    found = []
    body = {key: v for key, v in obj.items() if key != "metadata"}
    shape = copy.deepcopy(schema)
    shape.get("properties", {}).pop("metadata", None)
    for error in jsonschema.Draft7Validator(_openapi_to_jsonschema(shape)).iter_errors(body):
        found.append((".".join(str(p) for p in error.path), error.message))
    return found


def _openapi_to_jsonschema(schema: Any) -> Any:
    """OpenAPI v3 ``nullable`` as JSON Schema's ``null`` type; ``x-kubernetes-*`` dropped."""
    if isinstance(schema, list):
        return [_openapi_to_jsonschema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        k: _openapi_to_jsonschema(v)
        for k, v in schema.items()
        if not k.startswith("x-kubernetes-") and k != "nullable"
    }
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return out
