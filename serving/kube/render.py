"""InferenceServices rendered as Kubernetes objects (``hyperflow serve render``).

Two targets:

* ``kserve``: the InferenceService itself, for a cluster with KServe (its controller and
  storage initializer do the rest). Normalised (KServe's camelCase, defaults left out) and
  namespaced.
* ``deployment``: what KServe's *RawDeployment* mode makes of it, without KServe: a
  Deployment ``<name>-predictor`` running hyperflow's model server
  (``python -m serving.replica``) on port 8080, a Service of the same name (port 80), and
  an ``autoscaling/v2`` HorizontalPodAutoscaler (KServe's raw-mode defaults: CPU, 80%
  utilization, ``minReplicas`` at least 1). The model is put at ``/mnt/models`` as KServe
  does: an init container ``storage-initializer`` downloads ``storageUri`` into an
  ``emptyDir`` (KServe's own storage-initializer image for ``s3://``, ``gs://``,
  ``https://`` ..., hyperflow's image for MLflow's ``runs:/`` and ``models:/``, which read
  ``MLFLOW_TRACKING_URI``), and ``pvc://<claim>/<path>`` mounts the claim read-only
  instead. The server binds ``0.0.0.0`` and so requires a token: ``HYPERFLOW_REPLICA_TOKEN``
  from the Secret ``<name>-token`` (key ``token``; made by the user, see README), health
  probes stay open.

A storageUri that only means something on this machine (a local path, ``file://``) is an
error naming the field; so is what the target cannot express (a transformer or explainer
on ``deployment``, KServe's ``canaryTrafficPercent``, a KPA-only ``scaleMetric``).
"""

from __future__ import annotations

import json
from typing import Any

from serving.spec import InferenceService
from serving.spec.errors import FieldError, SpecError
from serving.spec.models import FRAMEWORK_KEYS
from serving.storage import storage_scheme

TARGETS = ("kserve", "deployment")
MODEL_DIR = "/mnt/models"
PORT = 8080
KSERVE_STORAGE_INITIALIZER = "kserve/storage-initializer:v0.15.2"
ISVC_LABEL = "serving.kserve.io/inferenceservice"
MANAGED_BY = {"app.kubernetes.io/managed-by": "hyperflow"}
# KServe's defaults for a predictor container without resources (inferenceservice config).
DEFAULT_RESOURCES = {
    "requests": {"cpu": "1", "memory": "2Gi"},
    "limits": {"cpu": "1", "memory": "2Gi"},
}
_MLFLOW_SCHEMES = ("runs", "models")
_KSERVE_SCHEMES = ("gs", "s3", "https", "http", "hdfs", "webhdfs", "hf", "oci")


def default_image() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"hyperflow:{version('hyperflow')}"
    except PackageNotFoundError:
        return "hyperflow:latest"


def _storage_field(isvc: InferenceService) -> str:
    p = isvc.predictor
    key = next((k for k in ("model", *FRAMEWORK_KEYS) if getattr(p, k) is not None), "model")
    return f"spec.predictor.{key}.storageUri"


def _document(isvc: InferenceService) -> dict[str, Any]:
    """The InferenceService in KServe's form, without the fields left at their defaults."""
    doc: dict[str, Any] = isvc.model_dump(
        by_alias=True, exclude_none=True, exclude_defaults=True, mode="json"
    )
    return {"apiVersion": isvc.api_version, "kind": isvc.kind, **doc}


def _check_storage(isvc: InferenceService, target: str) -> str | None:
    uri = isvc.predictor.storage_uri
    if uri is None:
        return None
    scheme = storage_scheme(uri)
    where = _storage_field(isvc)
    if scheme in ("local", "file"):
        raise SpecError(
            [
                FieldError(
                    where,
                    f"{uri!r} is a path on this machine, which a cluster cannot read; use "
                    "pvc://, s3://, gs://, https:// or (target deployment) runs:/ or models:/",
                )
            ]
        )
    if target == "kserve" and scheme in _MLFLOW_SCHEMES:
        raise SpecError(
            [
                FieldError(
                    where,
                    f"KServe's storage initializer does not read MLflow's {scheme}:/ URIs; "
                    "use --target deployment (hyperflow's initializer reads them)",
                )
            ]
        )
    return scheme


def render(
    isvc: InferenceService,
    target: str,
    *,
    namespace: str | None = None,
    image: str | None = None,
    mlflow_tracking_uri: str | None = None,
) -> list[dict[str, Any]]:
    """The objects for ``target``; raises :class:`SpecError` naming the field."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    ns = namespace or isvc.metadata.namespace or "default"
    scheme = _check_storage(isvc, target)
    if target == "kserve":
        obj = _document(isvc)
        obj["metadata"] = {"name": isvc.name, "namespace": ns, **obj["metadata"]}
        obj["metadata"]["namespace"] = ns
        return [obj]
    return _raw_deployment(isvc, ns, scheme, image or default_image(), mlflow_tracking_uri)


def _raw_deployment(
    isvc: InferenceService,
    ns: str,
    scheme: str | None,
    image: str,
    tracking_uri: str | None,
) -> list[dict[str, Any]]:
    p = isvc.predictor
    errors: list[FieldError] = []
    if isvc.spec.transformer is not None:
        errors.append(FieldError("spec.transformer", "not rendered for --target deployment"))
    if isvc.spec.explainer is not None:
        errors.append(FieldError("spec.explainer", "not rendered for --target deployment"))
    if p.canary_traffic_percent is not None:
        errors.append(
            FieldError(
                "spec.predictor.canaryTrafficPercent",
                "canary rollouts need KServe (Serverless mode); use --target kserve",
            )
        )
    metric = p.scale_metric.value if p.scale_metric is not None else "cpu"
    if metric not in ("cpu", "memory"):
        errors.append(
            FieldError(
                "spec.predictor.scaleMetric",
                f"{metric} needs Knative's autoscaler; a HorizontalPodAutoscaler scales on "
                "cpu or memory (use --target kserve)",
            )
        )
    if scheme in _MLFLOW_SCHEMES and not (tracking_uri or "").startswith(("http://", "https://")):
        errors.append(
            FieldError(
                _storage_field(isvc),
                f"{p.storage_uri} is downloaded in the cluster from an MLflow tracking server: "
                "give its URL (--mlflow-tracking-uri http://...)",
            )
        )
    if errors:
        raise SpecError(errors)
    name = f"{isvc.name}-predictor"
    labels = {ISVC_LABEL: isvc.name, "app": f"isvc.{name}", "component": "predictor"}
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    init: list[dict[str, Any]] = []
    model_dir = MODEL_DIR
    uri = p.storage_uri
    if scheme == "pvc" and uri is not None:
        claim, _, path = uri[len("pvc://") :].partition("/")
        volumes.append(
            {
                "name": "kserve-pvc-source",
                "persistentVolumeClaim": {"claimName": claim, "readOnly": True},
            }
        )
        mounts.append({"name": "kserve-pvc-source", "mountPath": "/mnt/pvc", "readOnly": True})
        model_dir = f"/mnt/pvc/{path}".rstrip("/")
    elif uri is not None:
        volumes.append({"name": "kserve-provision-location", "emptyDir": {}})
        mounts.append(
            {"name": "kserve-provision-location", "mountPath": MODEL_DIR, "readOnly": True}
        )
        initializer: dict[str, Any] = {
            "name": "storage-initializer",
            "volumeMounts": [{"name": "kserve-provision-location", "mountPath": MODEL_DIR}],
            "resources": {
                "requests": {"cpu": "100m", "memory": "100Mi"},
                "limits": {"cpu": "1", "memory": "1Gi"},
            },
        }
        if scheme in _MLFLOW_SCHEMES:
            initializer["image"] = image
            initializer["command"] = ["python", "-m", "serving.initializer"]
            initializer["env"] = [{"name": "MLFLOW_TRACKING_URI", "value": tracking_uri}]
        else:
            initializer["image"] = KSERVE_STORAGE_INITIALIZER
        initializer["args"] = [uri, MODEL_DIR]
        init.append(initializer)
    served = _document(isvc)
    served["metadata"] = {"name": isvc.name, "namespace": ns}
    if uri is not None:
        _set_storage_uri(served["spec"]["predictor"], model_dir)
    container: dict[str, Any] = {
        "name": "kserve-container",
        "image": image,
        "command": ["python", "-m", "serving.replica"],
        "args": [
            "--isvc-json",
            json.dumps(served, separators=(",", ":"), sort_keys=True),
            "--host",
            "0.0.0.0",
            "--port",
            str(PORT),
        ],
        "env": [
            {
                "name": "HYPERFLOW_REPLICA_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": f"{isvc.name}-token", "key": "token"}},
            }
        ],
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": PORT}},
        "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": PORT}},
        "resources": _resources(isvc),
    }
    if mounts:
        container["volumeMounts"] = mounts
    containers = [container]
    if p.implementation is None:  # a custom container predictor: its containers as given
        containers = [c.to_dict() for c in p.containers or []]
    pod_spec: dict[str, Any] = {"containers": containers}
    if init:
        pod_spec["initContainers"] = init
    if volumes:
        pod_spec["volumes"] = volumes
    for key in ("serviceAccountName", "nodeSelector", "tolerations", "affinity"):
        if key in p.pod_fields():
            pod_spec[key] = p.pod_fields()[key]
    min_replicas = max(1, p.min_replicas if p.min_replicas is not None else 1)
    max_replicas = max(min_replicas, p.max_replicas or min_replicas)
    meta = {"name": name, "namespace": ns, "labels": {**labels, **MANAGED_BY}}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        # No ``replicas``: the HorizontalPodAutoscaler below owns the count (from
        # minReplicas up); a ``replicas`` here would reset it on every ``kubectl apply``
        # (Kubernetes' HPA documentation: remove it from the manifest).
        "spec": {
            "selector": {"matchLabels": {"app": labels["app"]}},
            "template": {
                "metadata": {"labels": {**labels, **p.labels}, **_annotations(p.annotations)},
                "spec": pod_spec,
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": dict(meta),
        "spec": {
            "selector": {"app": labels["app"]},
            "ports": [{"name": "http", "port": 80, "targetPort": PORT, "protocol": "TCP"}],
        },
    }
    target = p.scale_target if p.scale_target is not None else 80
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": dict(meta),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": min_replicas,
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": metric,
                        "target": {"type": "Utilization", "averageUtilization": int(target)},
                    },
                }
            ],
        },
    }
    return [deployment, service, hpa]


def _annotations(annotations: dict[str, str]) -> dict[str, Any]:
    return {"annotations": dict(annotations)} if annotations else {}


def _resources(isvc: InferenceService) -> dict[str, Any]:
    implementation = isvc.predictor.implementation
    given = implementation.resources if implementation is not None else None
    return dict(given) if given else json.loads(json.dumps(DEFAULT_RESOURCES))


def _set_storage_uri(predictor: dict[str, Any], path: str) -> None:
    for value in predictor.values():
        if isinstance(value, dict) and "storageUri" in value:
            value["storageUri"] = path
