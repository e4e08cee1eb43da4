"""The adapter to a Kubernetes API server: the only module that imports ``kubernetes``.

Objects go in and come out as plain JSON-shaped dicts (what ``kubectl get -o json``
prints); failures are :class:`KubeError` subclasses carrying the API server's status,
reason, message and field causes (``422 Invalid: spec.template.spec.containers[0].image:
Required value``), so callers never see the client library's types. Kinds are found by
API discovery (``/api/v1``, ``/apis/GROUP/VERSION``), like kubectl, so a custom resource
(a Kubeflow training job as a trial, a KServe InferenceService) needs no code here.

Configuration, as kubectl and in-cluster tools find it: an explicit ``host`` (a ``kubectl
proxy``, or the tests' API stand-in), else the pod's service account when running in a
cluster (``KUBERNETES_SERVICE_HOST``), else the kubeconfig (``$KUBECONFIG`` or
``~/.kube/config``, its current context or ``context``). The namespace, when a call does
not name one: ``namespace``, else the service account's namespace in a cluster, else the
kubeconfig context's, else ``default``.

``kubernetes`` (seconds to import) loads when the first client is made.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
FIELD_MANAGER = "hyperflow"


@dataclass(frozen=True)
class FieldCause:
    field: str
    message: str
    reason: str = ""


class KubeError(RuntimeError):
    """An API server's refusal (its ``Status``), or no answer at all (``status`` 0)."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        causes: list[FieldCause] | None = None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        self.causes = list(causes or [])
        super().__init__(self.describe())

    def describe(self) -> str:
        text = f"{self.status} {self.reason}: {self.message}" if self.status else self.message
        missing = [c for c in self.causes if c.field and c.field not in self.message]
        if missing:
            text += " (" + "; ".join(f"{c.field}: {c.message}" for c in missing) + ")"
        return text


class NotFound(KubeError):
    pass


class AlreadyExists(KubeError):
    pass


class Conflict(KubeError):
    pass


class Invalid(KubeError):
    pass


class Gone(KubeError):
    """A watch's resourceVersion is too old: list again."""


class Unavailable(KubeError):
    """No answer from the API server (connection refused, timed out, TLS failure)."""


_BY_STATUS: dict[int, type[KubeError]] = {404: NotFound, 410: Gone, 422: Invalid}


def error_from_status(status: int, body: Any, fallback: str = "") -> KubeError:
    """The :class:`KubeError` for an API ``Status`` object (or any body)."""
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except ValueError:
            body = {"message": body.decode(errors="replace") if isinstance(body, bytes) else body}
    body = body if isinstance(body, dict) else {}
    reason = str(body.get("reason") or fallback or "")
    message = str(body.get("message") or fallback or f"HTTP {status}")
    details = body.get("details") if isinstance(body.get("details"), dict) else {}
    causes = [
        FieldCause(str(c.get("field", "")), str(c.get("message", "")), str(c.get("reason", "")))
        for c in (details or {}).get("causes") or []
        if isinstance(c, dict)
    ]
    if status == 409:
        cls: type[KubeError] = AlreadyExists if reason == "AlreadyExists" else Conflict
    else:
        cls = _BY_STATUS.get(status, KubeError)
    return cls(status, reason, message, causes)


@dataclass(frozen=True)
class ResourceType:
    """A kind as the API serves it: ``apps/v1`` ``Deployment`` is ``deployments``."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None, name: str | None = None, sub: str | None = None) -> str:
        group_version = self.api_version
        base = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
        if self.namespaced:
            if not namespace:
                raise ValueError(f"{self.kind} is namespaced: a namespace is required")
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
        if sub is not None:
            base += f"/{sub}"
        return base


@dataclass
class ObjectList:
    items: list[dict[str, Any]]
    resource_version: str


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK
    object: dict[str, Any]


@dataclass
class Stream:
    """A streaming answer (a watch, a followed log): iterate it; :meth:`close` from any
    thread ends the iteration."""

    _response: Any
    _closed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def chunks(self) -> Iterator[bytes]:
        try:
            while not self._closed:
                try:
                    chunk = self._response.read1(65536)
                except AttributeError:  # urllib3 1.x
                    chunk = self._response.read(65536, decode_content=True)
                except Exception as exc:  # closed from another thread, reset, timeout
                    if self._closed:
                        return
                    raise Unavailable(0, "", f"stream from the API server broke: {exc}") from exc
                if not chunk:
                    return
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        # Shut the socket down first: closing it alone does not wake a thread blocked
        # reading a quiet watch.
        sock = getattr(getattr(self._response, "connection", None), "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):  # already broken: nothing to release
            self._response.close()


class Watch(Stream):
    def __iter__(self) -> Iterator[WatchEvent]:
        buffer = b""
        for chunk in self.chunks():
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip():
                    yield _watch_event(line)
        if buffer.strip() and not self._closed:
            yield _watch_event(buffer)


def _watch_event(line: bytes) -> WatchEvent:
    event = json.loads(line)
    kind, obj = event.get("type"), event.get("object") or {}
    if kind == "ERROR":
        raise error_from_status(int(obj.get("code") or 500), obj)
    return WatchEvent(str(kind), obj)


class LogStream(Stream):
    def __iter__(self) -> Iterator[bytes]:
        return self.chunks()


class KubeClient:
    """One API server; safe to share between threads."""

    def __init__(
        self,
        *,
        host: str | None = None,
        token: str | None = None,
        kubeconfig: str | os.PathLike[str] | None = None,
        context: str | None = None,
        namespace: str | None = None,
        request_timeout: float = 30.0,
    ) -> None:
        from kubernetes import client as k8s

        configuration = k8s.Configuration()
        default_namespace = "default"
        if host is not None:
            configuration.host = host.rstrip("/")
            if token:
                configuration.api_key = {"authorization": token}
                configuration.api_key_prefix = {"authorization": "Bearer"}
        elif kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            from kubernetes import config

            config.load_incluster_config(client_configuration=configuration)
            if SERVICE_ACCOUNT_NAMESPACE.exists():
                default_namespace = SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
        else:
            from kubernetes import config

            path = str(kubeconfig) if kubeconfig is not None else None
            try:
                config.load_kube_config(
                    config_file=path, context=context, client_configuration=configuration
                )
                _, active = config.list_kube_config_contexts(config_file=path)
            except (config.ConfigException, OSError) as exc:
                raise Unavailable(0, "", f"no usable kubeconfig: {exc}") from None
            if context is not None:
                contexts, _ = config.list_kube_config_contexts(config_file=path)
                active = next((c for c in contexts if c.get("name") == context), active)
            default_namespace = (active or {}).get("context", {}).get("namespace") or "default"
        self.namespace = namespace or default_namespace
        self.host = configuration.host
        self._timeout = request_timeout
        self._api = k8s.ApiClient(configuration)
        self._types: dict[tuple[str, str], ResourceType] = {}
        self._types_lock = threading.Lock()

    def close(self) -> None:
        self._api.close()

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- HTTP -------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        stream: bool = False,
        timeout: float | tuple[float, float | None] | None = None,
    ) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        params = [
            (k, str(v).lower() if isinstance(v, bool) else str(v))
            for k, v in (query or {}).items()
            if v is not None
        ]
        headers = {"Accept": "application/json", "Content-Type": content_type}
        try:
            response = self._api.call_api(
                path,
                method,
                query_params=params,
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
                _preload_content=False,
                _request_timeout=timeout if timeout is not None else self._timeout,
            )
        except ApiException as exc:
            raise error_from_status(exc.status, exc.body, exc.reason) from None
        except (HTTPError, OSError) as exc:
            raise Unavailable(
                0, "", f"no answer from the API server at {self.host}: {exc}"
            ) from None
        if stream:
            return response
        try:
            data = response.data
        finally:
            response.release_conn()
        return json.loads(data) if data else {}

    # -- kinds -------------------------------------------------------------------------------

    def resource_type(self, api_version: str, kind: str) -> ResourceType:
        """The plural and scope of a kind, by API discovery (cached per client)."""
        key = (api_version, kind)
        with self._types_lock:
            known = self._types.get(key)
        if known is not None:
            return known
        path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        try:
            listing = self._call("GET", path)
        except NotFound:
            raise NotFound(
                404, "NotFound", f"the server does not serve {api_version} (kind {kind})"
            ) from None
        found = None
        with self._types_lock:
            for resource in listing.get("resources") or []:
                if "/" in resource.get("name", ""):
                    continue  # a subresource (pods/log)
                rt = ResourceType(
                    api_version, resource["kind"], resource["name"], bool(resource["namespaced"])
                )
                self._types[(api_version, rt.kind)] = rt
                if rt.kind == kind:
                    found = rt
        if found is None:
            raise NotFound(404, "NotFound", f"the server has no kind {kind} in {api_version}")
        return found

    def _type_of(self, obj: dict[str, Any]) -> ResourceType:
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            raise ValueError("a Kubernetes object needs apiVersion and kind")
        return self.resource_type(api_version, kind)

    def _namespace_of(
        self, rt: ResourceType, obj: dict[str, Any] | None, namespace: str | None
    ) -> str | None:
        if not rt.namespaced:
            return None
        meta = (obj or {}).get("metadata") or {}
        return namespace or meta.get("namespace") or self.namespace

    # -- verbs -------------------------------------------------------------------------------

    def create(self, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        rt = self._type_of(obj)
        ns = self._namespace_of(rt, obj, namespace)
        result: dict[str, Any] = self._call("POST", rt.path(ns), body=obj)
        return result

    def apply(
        self,
        obj: dict[str, Any],
        namespace: str | None = None,
        *,
        field_manager: str = FIELD_MANAGER,
        force: bool = True,
    ) -> dict[str, Any]:
        """Server-side apply (``kubectl apply --server-side``): create the object, or make
        the fields this manager applied before equal to ``obj``."""
        rt = self._type_of(obj)
        ns = self._namespace_of(rt, obj, namespace)
        name = (obj.get("metadata") or {}).get("name")
        if not name:
            raise ValueError("apply needs metadata.name")
        result: dict[str, Any] = self._call(
            "PATCH",
            rt.path(ns, name),
            query={"fieldManager": field_manager, "force": force},
            body=obj,
            content_type="application/apply-patch+yaml",
        )
        return result

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any]:
        rt = self.resource_type(api_version, kind)
        result: dict[str, Any] = self._call(
            "GET", rt.path(self._namespace_of(rt, None, namespace), name)
        )
        return result

    def find(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """:meth:`get`, or None when there is no such object."""
        try:
            return self.get(api_version, kind, name, namespace)
        except NotFound:
            return None

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
    ) -> ObjectList:
        rt = self.resource_type(api_version, kind)
        answer = self._call(
            "GET",
            rt.path(self._namespace_of(rt, None, namespace)),
            query={"labelSelector": label_selector},
        )
        items = answer.get("items") or []
        for item in items:  # list items carry no kind; give them theirs back
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return ObjectList(items, str((answer.get("metadata") or {}).get("resourceVersion", "")))

    def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        resource_version: str | None = None,
        timeout_seconds: int | None = None,
    ) -> Watch:
        """Changes after ``resource_version`` (a list's), until the server ends the watch
        (``timeout_seconds``) or :meth:`Watch.close`. A version the server no longer
        remembers raises :class:`Gone` from the iteration: list again."""
        rt = self.resource_type(api_version, kind)
        response = self._call(
            "GET",
            rt.path(self._namespace_of(rt, None, namespace)),
            query={
                "watch": True,
                "labelSelector": label_selector,
                "resourceVersion": resource_version,
                "timeoutSeconds": timeout_seconds,
                "allowWatchBookmarks": True,
            },
            stream=True,
            # connect timeout only: a quiet watch is not a broken one
            timeout=(self._timeout, (timeout_seconds or 300) + self._timeout),
        )
        return Watch(response)

    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str = "Background",
    ) -> bool:
        """Delete with ``propagationPolicy`` (Background: the garbage collector deletes the
        object's dependents, a Job's pods, after it); False if it was already gone."""
        rt = self.resource_type(api_version, kind)
        try:
            self._call(
                "DELETE",
                rt.path(self._namespace_of(rt, None, namespace), name),
                body={
                    "kind": "DeleteOptions",
                    "apiVersion": "v1",
                    "propagationPolicy": propagation,
                },
            )
        except NotFound:
            return False
        return True

    def pod_log(
        self,
        name: str,
        namespace: str | None = None,
        *,
        container: str | None = None,
        follow: bool = False,
        limit_bytes: int | None = None,
    ) -> LogStream:
        """A pod container's log as a byte stream; with ``follow`` it lasts until the
        container ends (or :meth:`LogStream.close`)."""
        path = f"/api/v1/namespaces/{quote(namespace or self.namespace, safe='')}/pods/{quote(name, safe='')}/log"
        response = self._call(
            "GET",
            path,
            query={"container": container, "follow": follow or None, "limitBytes": limit_bytes},
            stream=True,
            timeout=(self._timeout, None) if follow else self._timeout,
        )
        return LogStream(response)

    def version(self) -> dict[str, Any]:
        """The server's ``/version`` (``gitVersion``, ``major``, ``minor``)."""
        result: dict[str, Any] = self._call("GET", "/version")
        return result
