"""The client: HTTP calls to the API, errors as :class:`ApiError` with the server's
message and field details."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from hyperflow.client.pipelineruns import PipelineRunMethods

DEFAULT_SERVER = "http://127.0.0.1:8080"
BASE_DIR_ANNOTATION = "hyperflow.io/base-dir"
API = "/apis/v1"


class ApiError(RuntimeError):
    """The server refused a request: ``status``, its one-line ``message`` and ``details``
    (``[{"path", "message"}]`` for field errors)."""

    def __init__(self, status: int, message: str, details: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or []

    def lines(self) -> list[str]:
        return [self.message] + [
            f"  {d.get('path')}: {d.get('message')}" if d.get("path") else f"  {d.get('message')}"
            for d in self.details
        ]

    def __str__(self) -> str:
        # A traceback (or a print) of it names every field, not "the ... is invalid" alone.
        return "\n".join(self.lines())


class ServerUnavailable(ApiError):
    """No server answers at the address."""


class InvalidServer(ApiError, ValueError):
    """A server address that is not an ``http://`` or ``https://`` URL, refused before
    anything is sent (httpx would take ``localhost:8080`` as the scheme ``localhost``)."""


def server_url(value: str | None = None) -> str:
    """The server's base URL: ``value``, else ``$HYPERFLOW_SERVER``, else
    http://127.0.0.1:8080; :class:`InvalidServer` unless it is ``http(s)://host[:port]``."""
    url = (value or os.environ.get("HYPERFLOW_SERVER") or DEFAULT_SERVER).strip().rstrip("/")
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - a port that is not a number raises here
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        raise InvalidServer(
            0,
            "--server / HYPERFLOW_SERVER must be an http:// or https:// URL such as "
            f"{DEFAULT_SERVER}; got {url!r}",
        )
    return url


class InvalidName(ApiError):
    """A name or namespace that cannot be one segment of the API's URLs, refused before
    anything is sent (as kubectl does): ``..`` would reach another resource, since httpx
    (as a browser) resolves dot segments before it sends a URL."""


def check_name(value: str, what: str = "resource name") -> str:
    """``value`` if it can be a path segment; else :class:`InvalidName` in kubectl's words
    (``invalid resource name "../x": [may not contain '/']``)."""
    problems = [f"may not be '{value}'"] if value in (".", "..") else []
    # "?" and "#" would end the URL's path (the rest a query or a fragment: "x#y" is x).
    problems += [f"may not contain '{c}'" for c in "/%?#" if c in value]
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        problems.append("may not contain control characters")
    if problems:
        raise InvalidName(400, f'invalid {what} "{value}": [{", ".join(problems)}]')
    return value


def _object_body(obj: Any, kind: str = "Experiment") -> dict[str, Any]:
    """A dict, YAML text, a YAML file's path (its folder sent as the annotation relative
    paths resolve from, as ``hyperflow create -f`` does), or a spec object with
    ``to_dict()`` (its ``base_dir``, if any, sent the same way). YAML is read as spec files
    are (``serving.yamlfile``): invalid text raises its ``YamlError``, a ``ValueError``."""
    if isinstance(obj, dict):
        return obj
    if isinstance(obj, str | os.PathLike):
        from serving import yamlfile  # the spec files' loader: safe, strict keys

        path = Path(obj) if isinstance(obj, os.PathLike) else None
        data = yamlfile.load(yamlfile.read_text(path) if path is not None else str(obj))
        if not isinstance(data, dict):
            raise ValueError(f"an {kind} must be a mapping")
        if path is not None:
            md = data.setdefault("metadata", {})
            if isinstance(md, dict):
                annotations = md.setdefault("annotations", {})
                if isinstance(annotations, dict):
                    annotations.setdefault(BASE_DIR_ANNOTATION, str(path.resolve().parent))
        return data
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        body = to_dict()
        base_dir = getattr(obj, "base_dir", None)
        if base_dir is not None:
            md = body.setdefault("metadata", {})
            md.setdefault("annotations", {})[BASE_DIR_ANNOTATION] = str(Path(base_dir).resolve())
        return body
    raise TypeError(f"cannot send {type(obj).__name__} as an {kind}")


def _experiment_body(experiment: Any) -> dict[str, Any]:
    return _object_body(experiment, "Experiment")


class Client(PipelineRunMethods):
    """The control plane at ``server`` (default: ``$HYPERFLOW_SERVER``, else
    http://127.0.0.1:8080), with ``token`` (default ``$HYPERFLOW_TOKEN``)."""

    def __init__(
        self,
        server: str | None = None,
        token: str | None = None,
        namespace: str = "default",
        timeout: float = 60.0,
    ) -> None:
        self.server = server_url(server)
        self.token = token if token is not None else os.environ.get("HYPERFLOW_TOKEN")
        self.namespace = namespace
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(base_url=self.server, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        # The client's paths hold no query (that goes in ``params``): every segment is a
        # fixed word, a name or a namespace ("a/b" as a name: two segments).
        for segment in path.split("/")[1:]:
            check_name(segment, "name or namespace")
        try:
            response = self._http.request(method, path, **kw)
        except httpx.ConnectError:
            raise ServerUnavailable(0, self._unavailable()) from None
        except httpx.TimeoutException as exc:
            raise ApiError(
                0, f"the server at {self.server} did not answer in time: {exc}"
            ) from None
        if response.status_code >= 400:
            raise _error(response)
        return response

    def _unavailable(self) -> str:
        return (
            f"no hyperflow server answers at {self.server} (start one with `hyperflow server`, "
            "or point --server / HYPERFLOW_SERVER at one)"
        )

    def _ns(self, namespace: str | None) -> str:
        return namespace or self.namespace

    def list_all(self, path: str, params: dict[str, Any] | None = None) -> tuple[list[Any], str]:
        """Every item of a list, following ``continue`` tokens (pages of 500, as kubectl's
        chunks); and the resourceVersion of the first page."""
        params = {"limit": 500, **(params or {})}
        items: list[Any] = []
        version = ""
        while True:
            body = self.request("GET", path, params=params).json()
            items += body["items"]
            version = version or body["metadata"].get("resourceVersion", "")
            token = body["metadata"].get("continue")
            if not token:
                return items, version
            params["continue"] = token

    def watch(
        self,
        namespace: str | None = None,
        object: str | None = None,
        resource_version: str | None = None,
        timeout: float | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Events as they happen (server-sent events): ``{"type", "kind", "name", ...}``.
        ``namespace=None``: every namespace the token may see. Ends after ``timeout``
        seconds without an event (None: never)."""
        if namespace:
            check_name(namespace, "namespace")
        path = f"{API}/namespaces/{namespace}/events" if namespace else f"{API}/events"
        params: dict[str, Any] = {"watch": "true"}
        if object:
            params["object"] = object
        if resource_version:
            params["resourceVersion"] = resource_version
        try:
            with self._http.stream(
                "GET", path, params=params, timeout=httpx.Timeout(10.0, read=timeout)
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error(response)
                data: list[str] = []
                for line in response.iter_lines():
                    if line.startswith("data:"):
                        data.append(line[5:].strip())
                    elif line == "" and data:
                        yield json.loads("\n".join(data))
                        data = []
        except httpx.ConnectError:
            raise ServerUnavailable(0, self._unavailable()) from None
        except httpx.ReadTimeout:
            return

    # -- experiments (KatibClient's names) --------------------------------------------

    def create_experiment(self, experiment: Any, namespace: str | None = None) -> dict[str, Any]:
        """Create an Experiment: a dict, YAML text, a YAML file's ``Path`` (relative trial
        commands then resolve in its folder) or a ``tuner.spec`` Experiment."""
        body = _experiment_body(experiment)
        ns = namespace or (body.get("metadata") or {}).get("namespace") or self.namespace
        return self.request("POST", f"{API}/namespaces/{ns}/experiments", json=body).json()

    def get_experiment(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        path = f"{API}/namespaces/{self._ns(namespace)}/experiments/{name}"
        return self.request("GET", path).json()

    def list_experiments(
        self, namespace: str | None = None, phase: str | None = None, all_namespaces: bool = False
    ) -> list[dict[str, Any]]:
        path = (
            f"{API}/experiments"
            if all_namespaces
            else f"{API}/namespaces/{self._ns(namespace)}/experiments"
        )
        return self.list_all(path, {"phase": phase} if phase else None)[0]

    def delete_experiment(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        path = f"{API}/namespaces/{self._ns(namespace)}/experiments/{name}"
        return self.request("DELETE", path).json()

    def edit_experiment_budget(
        self,
        name: str,
        namespace: str | None = None,
        max_trial_count: int | None = None,
        parallel_trial_count: int | None = None,
        max_failed_trial_count: int | None = None,
    ) -> dict[str, Any]:
        """Katib's budget edit (a merge patch): raising ``max_trial_count`` of an
        experiment that reached it restarts it (resumePolicy LongRunning/FromVolume)."""
        spec = {
            k: v
            for k, v in (
                ("maxTrialCount", max_trial_count),
                ("parallelTrialCount", parallel_trial_count),
                ("maxFailedTrialCount", max_failed_trial_count),
            )
            if v is not None
        }
        if not spec:
            raise ValueError("set max_trial_count, parallel_trial_count or max_failed_trial_count")
        return self.patch_experiment(name, {"spec": spec}, namespace)

    def patch_experiment(
        self, name: str, patch: dict[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        path = f"{API}/namespaces/{self._ns(namespace)}/experiments/{name}"
        return self.request(
            "PATCH",
            path,
            content=json.dumps(patch),
            headers={"content-type": "application/merge-patch+json"},
        ).json()

    def get_experiment_conditions(
        self, name: str, namespace: str | None = None, experiment: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        experiment = experiment or self.get_experiment(name, namespace)
        return list(experiment.get("status", {}).get("conditions", []))

    def is_experiment_succeeded(self, name: str, namespace: str | None = None) -> bool:
        return _has_condition(self.get_experiment_conditions(name, namespace), "Succeeded")

    def is_experiment_failed(self, name: str, namespace: str | None = None) -> bool:
        return _has_condition(self.get_experiment_conditions(name, namespace), "Failed")

    def wait_for_experiment_condition(
        self,
        name: str,
        namespace: str | None = None,
        expected_condition: str = "Succeeded",
        timeout: float = 600,
        polling_interval: float = 15,
    ) -> dict[str, Any]:
        """Wait until the experiment has ``expected_condition`` (Katib's semantics: a
        Failed experiment raises RuntimeError unless Failed is expected; TimeoutError after
        ``timeout`` s). Follows the event stream, so it returns as soon as the condition
        is set; ``polling_interval`` bounds the wait between checks if events stall."""
        ns = self._ns(namespace)
        deadline = time.monotonic() + timeout
        while True:
            experiment = self.get_experiment(name, ns)
            conditions = self.get_experiment_conditions(name, ns, experiment)
            if _has_condition(conditions, expected_condition):
                return experiment
            if expected_condition != "Failed" and _has_condition(conditions, "Failed"):
                # KatibClient's words, then the Failed condition's reason and message alone
                # (it printed every condition as a Python list).
                failed = [
                    c for c in conditions if c.get("type") == "Failed" and c.get("status") == "True"
                ][-1]
                raise RuntimeError(
                    f"Experiment: {ns}/{name} is Failed. {failed.get('reason', '')}: "
                    f"{failed.get('message', '')}"
                )
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"Timeout waiting for Experiment: {ns}/{name} to reach {expected_condition} state"
                )
            version = None
            for _event in self.watch(
                ns, f"experiments/{name}", version, timeout=min(polling_interval, left)
            ):
                break  # something changed: check again

    def get_optimal_hyperparameters(
        self, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """Katib's currentOptimalTrial, or None while no trial succeeded."""
        optimal = self.get_experiment(name, namespace).get("status", {}).get("currentOptimalTrial")
        if not optimal or not optimal.get("observation", {}).get("metrics"):
            return None
        return optimal

    def get_best(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        """currentOptimalTrial with its MLflow run id and storageUri(s)."""
        path = f"{API}/namespaces/{self._ns(namespace)}/experiments/{name}/best"
        return self.request("GET", path).json()

    # -- trials -------------------------------------------------------------------------

    def list_trials(
        self,
        experiment_name: str,
        namespace: str | None = None,
        phase: str | None = None,
        sort: str | None = None,
        order: str | None = None,
    ) -> list[dict[str, Any]]:
        path = f"{API}/namespaces/{self._ns(namespace)}/experiments/{experiment_name}/trials"
        params = {k: v for k, v in (("phase", phase), ("sort", sort), ("order", order)) if v}
        return self.list_all(path, params)[0]

    def get_trial(
        self, name: str, experiment_name: str, namespace: str | None = None
    ) -> dict[str, Any]:
        path = f"{API}/namespaces/{self._ns(namespace)}/experiments/{experiment_name}/trials/{name}"
        return self.request("GET", path).json()

    def get_success_trial_details(
        self, experiment_name: str, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        return [
            {
                "name": t["metadata"]["name"],
                "parameter_assignments": t["spec"]["parameterAssignments"],
                "metrics": t["status"]["observation"]["metrics"],
            }
            for t in self.list_trials(experiment_name, namespace, phase="Succeeded")
        ]

    def trial_logs(
        self, experiment_name: str, trial: str, namespace: str | None = None, follow: bool = False
    ) -> Iterator[bytes]:
        path = f"{API}/namespaces/{self._ns(namespace)}/experiments/{experiment_name}/trials/{trial}/log"
        try:
            with self._http.stream(
                "GET",
                path,
                params={"follow": "true"} if follow else None,
                timeout=httpx.Timeout(10.0, read=None),
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error(response)
                yield from response.iter_bytes()
        except httpx.ConnectError:
            raise ServerUnavailable(0, self._unavailable()) from None

    # -- inference services (KServeClient's names) --------------------------------------

    def _isvc_path(self, namespace: str | None, name: str | None = None) -> str:
        base = f"{API}/namespaces/{self._ns(namespace)}/inferenceservices"
        return f"{base}/{name}" if name else base

    def create(
        self,
        inferenceservice: Any,
        namespace: str | None = None,
        watch: bool = False,
        timeout_seconds: int = 600,
    ) -> dict[str, Any]:
        """Create an InferenceService (a dict, YAML text or a ``serving.spec``
        InferenceService); with ``watch``, wait until it is Ready."""
        body = _object_body(inferenceservice, "InferenceService")
        ns = namespace or (body.get("metadata") or {}).get("namespace") or self.namespace
        created: dict[str, Any] = self.request("POST", self._isvc_path(ns), json=body).json()
        if watch:
            return self.wait_isvc_ready(
                created["metadata"]["name"], ns, timeout_seconds=timeout_seconds
            )
        return created

    def get(
        self,
        name: str | None = None,
        namespace: str | None = None,
        watch: bool = False,
        timeout_seconds: int = 600,
    ) -> dict[str, Any]:
        """One InferenceService, or (no ``name``) the list of the namespace
        (``{"items": [...]}``); with ``watch``, once it is Ready."""
        if name is None:
            items, version = self.list_all(self._isvc_path(namespace))
            return {
                "apiVersion": "v1",
                "kind": "InferenceServiceList",
                "metadata": {"resourceVersion": version},
                "items": items,
            }
        if watch:
            return self.wait_isvc_ready(name, namespace, timeout_seconds=timeout_seconds)
        return self.request("GET", self._isvc_path(namespace, name)).json()

    def replace(
        self,
        name: str,
        inferenceservice: Any,
        namespace: str | None = None,
        watch: bool = False,
        timeout_seconds: int = 600,
    ) -> dict[str, Any]:
        """Replace the spec: a new revision (``canaryTrafficPercent`` splits the traffic
        with the previous one, KServe's canary rollout), or only a new split."""
        body = _object_body(inferenceservice, "InferenceService")
        ns = namespace or (body.get("metadata") or {}).get("namespace") or self.namespace
        replaced: dict[str, Any] = self.request("PUT", self._isvc_path(ns, name), json=body).json()
        if watch:
            return self.wait_isvc_ready(name, ns, timeout_seconds=timeout_seconds)
        return replaced

    def delete(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        return self.request("DELETE", self._isvc_path(namespace, name)).json()

    def is_isvc_ready(self, name: str, namespace: str | None = None) -> bool:
        return _has_condition(
            self.get(name, namespace).get("status", {}).get("conditions", []), "Ready"
        )

    def wait_isvc_ready(
        self,
        name: str,
        namespace: str | None = None,
        watch: bool = False,
        timeout_seconds: int = 600,
        polling_interval: int = 10,
    ) -> dict[str, Any]:
        """Wait until the InferenceService is Ready and return it. RuntimeError when its
        latest revision failed (KServe: the reason in the message) or on timeout.
        Follows the event stream, so it returns as soon as it is Ready."""
        ns = self._ns(namespace)
        deadline = time.monotonic() + timeout_seconds
        while True:
            isvc = self.get(name, ns)
            conditions = isvc.get("status", {}).get("conditions", [])
            if _has_condition(conditions, "Ready"):
                return isvc
            ready: dict[str, Any] = next((c for c in conditions if c.get("type") == "Ready"), {})
            if ready.get("reason") == "RevisionFailed":
                raise RuntimeError(
                    f"InferenceService {ns}/{name} failed: {ready.get('message', '')}"
                )
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(
                    f"Timeout to start the InferenceService {ns}/{name}: "
                    f"{ready.get('reason', '')} {ready.get('message', '')}".rstrip()
                )
            for _event in self.watch(
                ns, f"inferenceservices/{name}", None, timeout=min(polling_interval, left)
            ):
                break  # something changed: check again

    def deploy_best(
        self,
        experiment: str,
        service: str,
        namespace: str | None = None,
        model_format: str | None = None,
        model_name: str | None = None,
        canary_traffic_percent: int | None = None,
    ) -> dict[str, Any]:
        """Register the experiment's best model in the MLflow Model Registry and serve it
        from ``models:/MODEL/VERSION`` by the InferenceService ``service`` (created or
        replaced): ``{"registeredModel", "trial", "inferenceService", "created"}``."""
        body: dict[str, Any] = {"service": service}
        for key, value in (
            ("modelFormat", model_format),
            ("modelName", model_name),
            ("canaryTrafficPercent", canary_traffic_percent),
        ):
            if value is not None:
                body[key] = value
        path = f"{API}/namespaces/{self._ns(namespace)}/experiments/{experiment}/deploy-best"
        return self.request("POST", path, json=body, timeout=300).json()


def _has_condition(conditions: list[dict[str, Any]], type_: str) -> bool:
    return any(c.get("type") == type_ and c.get("status") == "True" for c in conditions)


def _error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
        message = str(body.get("error") or body)
        details = body.get("details") or []
    except (ValueError, AttributeError):
        message, details = response.text[:500] or response.reason_phrase, []
    return ApiError(response.status_code, message, details)
