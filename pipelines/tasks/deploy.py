"""The ``deploy`` component's client side: create or replace an InferenceService through
the hyperflow control plane (``hyperflow server``) and wait until it is Ready.

Follows the control-plane REST contract: the server is ``HYPERFLOW_SERVER`` (default
``http://127.0.0.1:8080``), ``HYPERFLOW_TOKEN`` is sent as a Bearer token, objects are
KServe ``serving.kserve.io/v1beta1`` InferenceServices under
``/apis/v1/namespaces/{namespace}/inferenceservices``; errors come back as
``{"error": ..., "details": [...]}``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import httpx

DEFAULT_SERVER = "http://127.0.0.1:8080"


class DeployError(RuntimeError):
    pass


def server_url(server: str | None = None) -> str:
    return (server or os.environ.get("HYPERFLOW_SERVER") or DEFAULT_SERVER).rstrip("/")


def inference_service(
    name: str,
    namespace: str,
    storage_uri: str,
    model_format: str,
    *,
    min_replicas: int | None = None,
    max_replicas: int | None = None,
    canary_traffic_percent: int | None = None,
) -> dict[str, Any]:
    predictor: dict[str, Any] = {
        "model": {"modelFormat": {"name": model_format}, "storageUri": storage_uri}
    }
    if min_replicas is not None:
        predictor["minReplicas"] = min_replicas
    if max_replicas is not None:
        predictor["maxReplicas"] = max_replicas
    if canary_traffic_percent is not None:
        predictor["canaryTrafficPercent"] = canary_traffic_percent
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"predictor": predictor},
    }


class ControlPlane:
    """A small client of the control plane's inference-service routes."""

    def __init__(
        self,
        server: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.server = server_url(server)
        token = token if token is not None else os.environ.get("HYPERFLOW_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(
            base_url=self.server, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._client.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise DeployError(
                f"no hyperflow server at {self.server}: start one with `hyperflow server` "
                f"(or set HYPERFLOW_SERVER) [{type(exc).__name__}]"
            ) from None
        if response.status_code in (401, 403):
            raise DeployError(
                f"{self.server} refused the request ({response.status_code}): "
                f"{_error(response)}; set HYPERFLOW_TOKEN to a token for this namespace"
            )
        return response

    def _path(self, namespace: str, name: str | None = None) -> str:
        base = f"/apis/v1/namespaces/{namespace}/inferenceservices"
        return f"{base}/{name}" if name else base

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        response = self._request("GET", self._path(namespace, name))
        if response.status_code == 404:
            return None
        _check(response, f"GET inferenceservice {namespace}/{name}")
        found: dict[str, Any] = response.json()
        return found

    def apply(self, service: dict[str, Any]) -> dict[str, Any]:
        """Create the service, or replace it (a new revision) when it exists."""
        meta = service["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        if self.get(namespace, name) is None:
            response = self._request("POST", self._path(namespace), json=service)
            if response.status_code != 409:  # created meanwhile: replace it below
                _check(response, f"create inferenceservice {namespace}/{name}")
                created: dict[str, Any] = response.json()
                return created
        response = self._request("PUT", self._path(namespace, name), json=service)
        _check(response, f"replace inferenceservice {namespace}/{name}")
        replaced: dict[str, Any] = response.json()
        return replaced

    def wait_ready(
        self,
        namespace: str,
        name: str,
        timeout: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> dict[str, Any]:
        deadline = clock() + timeout
        while True:
            current = self.get(namespace, name)
            if current is None:
                raise DeployError(f"inferenceservice {namespace}/{name} disappeared")
            ready = _ready_condition(current)
            if ready is not None and ready.get("status") == "True":
                return current
            if ready is not None and ready.get("reason") in ("Failed", "RevisionFailed"):
                raise DeployError(
                    f"inferenceservice {namespace}/{name} failed: {ready.get('message', '')}"
                )
            if clock() >= deadline:
                detail = f": {ready.get('reason')} {ready.get('message', '')}" if ready else ""
                raise DeployError(
                    f"inferenceservice {namespace}/{name} not Ready after {timeout:g}s{detail}"
                )
            sleep(0.5)


def _ready_condition(service: dict[str, Any]) -> dict[str, Any] | None:
    for condition in service.get("status", {}).get("conditions", []) or []:
        if condition.get("type") == "Ready":
            return dict(condition)
    return None


def _error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and "error" in body:
        details = "; ".join(
            f"{d.get('path')}: {d.get('message')}" for d in body.get("details") or []
        )
        return f"{body['error']}" + (f" ({details})" if details else "")
    return str(body)[:200]


def _check(response: httpx.Response, what: str) -> None:
    if response.is_success:
        return
    raise DeployError(f"{what}: {response.status_code} {_error(response)}")


def deploy_model(
    *,
    storage_uri: str,
    name: str,
    namespace: str = "default",
    model_format: str = "sklearn",
    min_replicas: int | None = None,
    max_replicas: int | None = None,
    canary_traffic_percent: int | None = None,
    timeout: float = 300.0,
    server: str | None = None,
) -> str:
    """Create or replace the service, wait until it is Ready; its URL."""
    service = inference_service(
        name,
        namespace,
        storage_uri,
        model_format,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        canary_traffic_percent=canary_traffic_percent,
    )
    plane = ControlPlane(server)
    try:
        plane.apply(service)
        ready = plane.wait_ready(namespace, name, timeout)
    finally:
        plane.close()
    url = ready.get("status", {}).get("url")
    if not url:
        raise DeployError(f"inferenceservice {namespace}/{name} is Ready but has no status.url")
    return str(url)
