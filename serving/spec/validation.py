"""KServe's webhook rules for an InferenceService, as field-named errors.

Only what the spec itself can get wrong is checked here; whether a format, storage scheme,
scale metric or protocol can run on this machine is decided at deploy time
(:func:`serving.runtimes.create_model`), so every KServe file validates unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from serving.spec.autoscaling import autoscaling_errors
from serving.spec.errors import FieldError, unknown_field
from serving.spec.models import (
    API_VERSION,
    FRAMEWORK_KEYS,
    KIND,
    MODEL_CLASS_ANNOTATION,
    POD_SPEC_FIELDS,
    PREDICTOR_CONTAINER,
    ComponentSpec,
    ExplainerSpec,
    InferenceService,
    PredictorSpec,
    TransformerSpec,
    is_class_ref,
)

# KServe's InferenceService name rule (a DNS-1123 label starting with a letter).
_ISVC_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def validate(isvc: InferenceService) -> list[FieldError]:
    """Every rule violation, in document order; empty when the service is valid."""
    errors: list[FieldError] = []
    if isvc.api_version != API_VERSION:
        errors.append(
            FieldError("apiVersion", f"must be {API_VERSION!r}, got {isvc.api_version!r}")
        )
    if isvc.kind != KIND:
        errors.append(FieldError("kind", f"must be {KIND!r}, got {isvc.kind!r}"))
    name = isvc.metadata.name
    if len(name) > 63 or not _ISVC_NAME.match(name):
        errors.append(
            FieldError(
                "metadata.name",
                f"{name!r} is not a valid name: lower case letters, digits and '-', "
                "starting with a letter and ending with a letter or digit, at most 63 characters",
            )
        )
    namespace = isvc.metadata.namespace
    if len(namespace) > 63 or not _DNS_LABEL.match(namespace):
        errors.append(
            FieldError("metadata.namespace", f"{namespace!r} is not a valid DNS-1123 label")
        )
    errors += _predictor(isvc.spec.predictor)
    for key in ("transformer", "explainer"):
        component = getattr(isvc.spec, key)
        if component is not None:
            errors += _component(f"spec.{key}", component)
    errors += _model_class(isvc)
    errors += autoscaling_errors(isvc)
    return errors


def unknown_component_fields(data: Any) -> list[FieldError]:
    """Unknown keys of a raw document's predictor, transformer and explainer.

    The same rule :func:`validate` applies to a parsed service, for a document that failed
    to parse elsewhere, so every unknown field is reported at once.
    """
    spec = data.get("spec") if isinstance(data, dict) else None
    if not isinstance(spec, dict):
        return []
    errors: list[FieldError] = []
    for key, kind in (
        ("predictor", PredictorSpec),
        ("transformer", TransformerSpec),
        ("explainer", ExplainerSpec),
    ):
        component = spec.get(key)
        if isinstance(component, dict):
            fields = kind.model_fields
            modelled = set(fields) | {f.alias for f in fields.values() if f.alias}
            extra = [k for k in component if isinstance(k, str) and k not in modelled]
            errors += _unknown_pod_fields(f"spec.{key}", extra, kind)
    return errors


def _unknown_pod_fields(
    path: str, keys: Iterable[str], kind: type[ComponentSpec]
) -> list[FieldError]:
    # Keys that are not component fields must be Kubernetes PodSpec fields.
    known = {f.alias or name for name, f in kind.model_fields.items()} | POD_SPEC_FIELDS
    message = "unknown field (not an InferenceService component or Kubernetes PodSpec field)"
    return [
        FieldError(f"{path}.{key}", unknown_field(key, known, message))
        for key in keys
        if key not in POD_SPEC_FIELDS
    ]


def _predictor(predictor: PredictorSpec) -> list[FieldError]:
    path = "spec.predictor"
    errors = _component(path, predictor)
    found = predictor.implementations()
    if len(found) != 1:
        choices = ", ".join(["model", *FRAMEWORK_KEYS, "containers"])
        given = f" (found: {', '.join(found)})" if found else ""
        if len(found) > 1 and "containers" in found:
            given += (
                f"; a container named {PREDICTOR_CONTAINER!r} is the predictor, other "
                "containers beside a model are sidecars"
            )
        errors.append(FieldError(path, f"exactly one of [{choices}] must be specified{given}"))
    if predictor.model is not None and not predictor.model.model_format.name.strip():
        errors.append(FieldError(f"{path}.model.modelFormat.name", "must not be empty"))
    impl = predictor.implementation
    if impl is not None and impl.storage_uri is not None and not impl.storage_uri.strip():
        key = found[0] if found else "model"
        errors.append(FieldError(f"{path}.{key}.storageUri", "must not be empty"))
    return errors


def _component(path: str, component: ComponentSpec) -> list[FieldError]:
    errors = _unknown_pod_fields(path, component.pod_fields(), type(component))
    if component.min_replicas is not None and component.min_replicas < 0:
        errors.append(FieldError(f"{path}.minReplicas", "must be >= 0"))
    if component.max_replicas < 0:
        errors.append(FieldError(f"{path}.maxReplicas", "must be >= 0 (0 means no limit)"))
    min_replicas = 1 if component.min_replicas is None else component.min_replicas
    if component.max_replicas > 0 and min_replicas > component.max_replicas:
        errors.append(
            FieldError(
                f"{path}.maxReplicas",
                f"must be >= minReplicas ({min_replicas}) or 0 for no limit",
            )
        )
    if component.scale_target is not None and component.scale_target <= 0:
        errors.append(FieldError(f"{path}.scaleTarget", "must be > 0"))
    if component.container_concurrency is not None and component.container_concurrency < 0:
        errors.append(FieldError(f"{path}.containerConcurrency", "must be >= 0 (0 means no limit)"))
    if component.timeout is not None and component.timeout <= 0:
        errors.append(FieldError(f"{path}.timeout", "must be > 0 (seconds)"))
    percent = component.canary_traffic_percent
    if percent is not None and not 0 <= percent <= 100:
        errors.append(FieldError(f"{path}.canaryTrafficPercent", "must be between 0 and 100"))
    batcher = component.batcher
    if batcher is not None:
        if batcher.max_batch_size < 1:
            errors.append(FieldError(f"{path}.batcher.maxBatchSize", "must be >= 1"))
        if batcher.max_latency <= 0:
            errors.append(FieldError(f"{path}.batcher.maxLatency", "must be > 0 (milliseconds)"))
        if batcher.timeout <= 0:
            errors.append(FieldError(f"{path}.batcher.timeout", "must be > 0 (seconds)"))
    return errors


def _model_class(isvc: InferenceService) -> list[FieldError]:
    predictor = isvc.spec.predictor
    errors: list[FieldError] = []
    for path, notes in (
        ("metadata.annotations", isvc.metadata.annotations),
        ("spec.predictor.annotations", predictor.annotations),
    ):
        value = notes.get(MODEL_CLASS_ANNOTATION)
        if value is not None and not is_class_ref(value):
            errors.append(
                FieldError(
                    f"{path}.{MODEL_CLASS_ANNOTATION}",
                    f"must be 'module:Class' (e.g. 'my_model:MyModel'), got {value!r}",
                )
            )
    if predictor.model_format == "custom" and predictor.model_class is None:
        errors.append(
            FieldError(
                "spec.predictor.model.runtime",
                "modelFormat 'custom' needs the model class: set model.runtime to "
                f"'module:Class' or the annotation {MODEL_CLASS_ANNOTATION}",
            )
        )
    elif predictor.model_format == "custom" and errors == []:
        ref = predictor.model_class or ""
        if not is_class_ref(ref):
            errors.append(
                FieldError(
                    "spec.predictor.model.runtime",
                    f"must be 'module:Class' (e.g. 'my_model:MyModel'), got {ref!r}",
                )
            )
    return errors
