"""KServe ``serving.kserve.io/v1beta1`` InferenceService as pydantic models.

Attributes are snake_case; every field also accepts (and serialises to) KServe's camelCase
name, so a KServe YAML file loads unchanged: ``spec.predictor.minReplicas`` is
``PredictorSpec.min_replicas``. Unknown fields inside KServe's own objects (``model:``,
``batcher:``, ``logger:``, ``modelFormat:`` ...) are errors, so a typo never passes silently.
A predictor is also a Kubernetes PodSpec: pod fields (``serviceAccountName``,
``nodeSelector``, ``volumes`` ...) are accepted and kept as given, not modelled.

The predictor is normalised: the ``model:`` form and the older per-framework form
(``sklearn: {storageUri: ...}``) both answer ``model_format``, ``storage_uri``, ``runtime``
and ``protocol_version``. Range rules (KServe's webhook validation) live in
:mod:`serving.spec.validation`; loading in :mod:`serving.spec.loader`.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator
from pydantic.alias_generators import to_camel

if TYPE_CHECKING:
    from serving.spec.autoscaling import AutoscalingConfig

API_VERSION = "serving.kserve.io/v1beta1"
# KServe's CRD has replicas and scale targets as int32; every integer field is held to it,
# so no value is too large to store, to encode as JSON or to turn into a float.
INT32_MAX = 2**31 - 1
Int32 = Annotated[int, Field(le=INT32_MAX, strict=True)]  # strict: not ``true`` nor ``"3"``
KIND = "InferenceService"

# KServe counts only the container with this name as a predictor implementation beside
# ``model:``; any other container of the predictor's pod is a sidecar.
PREDICTOR_CONTAINER = "kserve-container"

# The custom model class (``module:Class``), as an annotation on the InferenceService or on
# the predictor; ``model.runtime: "module:Class"`` is the short form.
MODEL_CLASS_ANNOTATION = "hyperflow.io/model-class"

# KServe's legacy per-framework predictor keys, in KServe's field order.
FRAMEWORK_KEYS: tuple[str, ...] = (
    "sklearn",
    "xgboost",
    "tensorflow",
    "pytorch",
    "triton",
    "onnx",
    "huggingface",
    "pmml",
    "lightgbm",
    "paddle",
)

# Kubernetes core/v1 PodSpec fields: a predictor/transformer/explainer inlines a PodSpec.
POD_SPEC_FIELDS: frozenset[str] = frozenset(
    {
        "activeDeadlineSeconds",
        "affinity",
        "automountServiceAccountToken",
        "containers",
        "dnsConfig",
        "dnsPolicy",
        "enableServiceLinks",
        "ephemeralContainers",
        "hostAliases",
        "hostIPC",
        "hostNetwork",
        "hostPID",
        "hostUsers",
        "hostname",
        "imagePullSecrets",
        "initContainers",
        "nodeName",
        "nodeSelector",
        "os",
        "overhead",
        "preemptionPolicy",
        "priority",
        "priorityClassName",
        "readinessGates",
        "resourceClaims",
        "resources",
        "restartPolicy",
        "runtimeClassName",
        "schedulerName",
        "schedulingGates",
        "securityContext",
        "serviceAccount",
        "serviceAccountName",
        "setHostnameAsFQDN",
        "shareProcessNamespace",
        "subdomain",
        "terminationGracePeriodSeconds",
        "tolerations",
        "topologySpreadConstraints",
        "volumes",
    }
)

_CLASS_REF = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


def is_class_ref(value: str) -> bool:
    """True for ``package.module:Class`` (the custom model class reference)."""
    return bool(_CLASS_REF.match(value))


class KServeModel(BaseModel):
    """Base: camelCase aliases, unknown fields rejected (a typo is an error, not ignored)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_assignment=False,
    )

    def to_dict(self) -> dict[str, Any]:
        """The KServe (camelCase) form, without unset optional fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def _scalars_to_str(value: Any) -> Any:
    # Kubernetes string maps (labels, annotations); YAML authors write `target: 10`.
    if isinstance(value, dict):
        return {
            k: (str(v).lower() if isinstance(v, bool) else str(v))
            if isinstance(v, int | float | bool)
            else v
            for k, v in value.items()
        }
    return value


class ScaleMetric(StrEnum):
    CONCURRENCY = "concurrency"
    RPS = "rps"
    CPU = "cpu"
    MEMORY = "memory"


class ProtocolVersion(StrEnum):
    V1 = "v1"
    V2 = "v2"
    GRPC_V2 = "grpc-v2"


class LoggerMode(StrEnum):
    ALL = "all"
    REQUEST = "request"
    RESPONSE = "response"


class EnvVar(KServeModel):
    name: str
    value: str | None = None
    value_from: dict[str, Any] | None = None

    @field_validator("value", mode="before")
    @classmethod
    def _coerce(cls, value: Any) -> Any:
        return _scalars_to_str({"v": value})["v"]


class ContainerFields(KServeModel):
    """The core/v1 Container fields KServe inlines into ``model:`` and framework specs."""

    name: str | None = None
    image: str | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    working_dir: str | None = None
    ports: list[dict[str, Any]] | None = None
    env_from: list[dict[str, Any]] | None = None
    env: list[EnvVar] | None = None
    resources: dict[str, Any] | None = None
    resize_policy: list[dict[str, Any]] | None = None
    restart_policy: str | None = None
    volume_mounts: list[dict[str, Any]] | None = None
    volume_devices: list[dict[str, Any]] | None = None
    liveness_probe: dict[str, Any] | None = None
    readiness_probe: dict[str, Any] | None = None
    startup_probe: dict[str, Any] | None = None
    lifecycle: dict[str, Any] | None = None
    termination_message_path: str | None = None
    termination_message_policy: str | None = None
    image_pull_policy: str | None = None
    security_context: dict[str, Any] | None = None
    stdin: bool | None = None
    stdin_once: bool | None = None
    tty: bool | None = None

    def env_dict(self) -> dict[str, str]:
        """Plain ``name: value`` pairs of ``env`` (``valueFrom`` entries are skipped)."""
        return {e.name: e.value for e in self.env or [] if e.value is not None}


class Container(ContainerFields):
    """A full container (``containers:`` of a transformer or custom predictor)."""

    name: str | None = None


class StorageSpec(KServeModel):
    path: str | None = None
    schema_path: str | None = None
    parameters: dict[str, str] | None = None
    key: str | None = None


class PredictorExtensionSpec(ContainerFields):
    """A per-framework predictor (``sklearn:``, ``tensorflow:`` ...): where the model is."""

    storage_uri: str | None = None
    storage: StorageSpec | None = None
    runtime_version: str | None = None
    protocol_version: ProtocolVersion | None = None


class ModelFormat(KServeModel):
    name: str
    version: str | None = None


class ModelSpec(PredictorExtensionSpec):
    """The ``model:`` form: a format name plus an optional ServingRuntime name."""

    model_format: ModelFormat
    runtime: str | None = None


class Batcher(KServeModel):
    """KServe's batcher; defaults are KServe's agent defaults. ``max_latency`` is in ms."""

    max_batch_size: Int32 = 32
    max_latency: Int32 = 5000
    timeout: Int32 = 60


class LoggerSpec(KServeModel):
    url: str | None = None
    mode: LoggerMode = LoggerMode.ALL
    metadata_headers: list[str] | None = None
    metadata_annotations: list[str] | None = None
    storage: dict[str, Any] | None = None


class ComponentSpec(KServeModel):
    """KServe's ComponentExtensionSpec plus an inlined PodSpec (transformer, explainer)."""

    # PodSpec fields are many and not ours to model; kept as given, checked by name only.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", validate_assignment=False
    )

    min_replicas: Int32 | None = None
    max_replicas: Int32 = 0
    scale_target: Int32 | None = None
    scale_metric: ScaleMetric | None = None
    scale_metric_type: str | None = None
    container_concurrency: Int32 | None = None
    timeout: Int32 | None = None
    canary_traffic_percent: Int32 | None = None
    logger: LoggerSpec | None = None
    batcher: Batcher | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    deployment_strategy: dict[str, Any] | None = None
    auto_scaling: dict[str, Any] | None = None
    containers: list[Container] | None = None

    _coerce_maps = field_validator("labels", "annotations", mode="before")(_scalars_to_str)

    def pod_fields(self) -> dict[str, Any]:
        """Kubernetes PodSpec (and unknown) fields, as written."""
        return dict(self.model_extra or {})


class ExplainerSpec(ComponentSpec):
    alibi: dict[str, Any] | None = None
    art: dict[str, Any] | None = None


class TransformerSpec(ComponentSpec):
    pass


class PredictorSpec(ComponentSpec):
    """The predictor: exactly one of ``model``, a framework key, or ``containers``."""

    model: ModelSpec | None = None
    sklearn: PredictorExtensionSpec | None = None
    xgboost: PredictorExtensionSpec | None = None
    tensorflow: PredictorExtensionSpec | None = None
    pytorch: PredictorExtensionSpec | None = None
    triton: PredictorExtensionSpec | None = None
    onnx: PredictorExtensionSpec | None = None
    huggingface: PredictorExtensionSpec | None = None
    pmml: PredictorExtensionSpec | None = None
    lightgbm: PredictorExtensionSpec | None = None
    paddle: PredictorExtensionSpec | None = None
    worker_spec: dict[str, Any] | None = None

    # Set by the loader from the InferenceService's annotations (see model_class).
    _isvc_model_class: str | None = PrivateAttr(default=None)

    def implementations(self) -> list[str]:
        """Names of the implementations given (``model``, ``sklearn``..., ``containers``).

        As KServe counts them (``PredictorSpec.GetImplementations``): the containers are an
        implementation when one is named ``kserve-container``, or when nothing else is
        given (then the first container is the predictor); otherwise they are sidecars.
        """
        found = [key for key in ("model", *FRAMEWORK_KEYS) if getattr(self, key) is not None]
        if self.containers and (
            not found or any(c.name == PREDICTOR_CONTAINER for c in self.containers)
        ):
            found.append("containers")
        return found

    @property
    def sidecars(self) -> list[str]:
        """Names of the pod's containers that are not the predictor (not run locally)."""
        containers = self.containers or []
        if "containers" not in self.implementations():
            predictor = None
        elif any(c.name == PREDICTOR_CONTAINER for c in containers):
            predictor = next(c for c in containers if c.name == PREDICTOR_CONTAINER)
        else:
            predictor = containers[0]
        return [
            c.name or f"containers[{i}]" for i, c in enumerate(containers) if c is not predictor
        ]

    @property
    def implementation(self) -> PredictorExtensionSpec | None:
        """The model's ``model:`` or framework spec (None for a containers-only predictor)."""
        for key in ("model", *FRAMEWORK_KEYS):
            value = getattr(self, key)
            if value is not None:
                return value
        return None

    @property
    def model_format(self) -> str | None:
        """``sklearn``, ``xgboost``, ``custom`` ... (lower case); None for custom containers."""
        if self.model is not None:
            return self.model.model_format.name.lower()
        for key in FRAMEWORK_KEYS:
            if getattr(self, key) is not None:
                return key
        return None

    @property
    def storage_uri(self) -> str | None:
        """``storageUri`` as written. KServe's ``storage:`` spec is not a URI: its
        ``path`` is inside the bucket a storage secret names (see :attr:`storage_spec`)."""
        impl = self.implementation
        return impl.storage_uri if impl is not None else None

    @property
    def storage_spec(self) -> StorageSpec | None:
        impl = self.implementation
        return impl.storage if impl is not None else None

    @property
    def runtime(self) -> str | None:
        return self.model.runtime if self.model is not None else None

    @property
    def protocol_version(self) -> str:
        """``v1`` (KServe's default), ``v2`` or ``grpc-v2``."""
        impl = self.implementation
        if impl is None or impl.protocol_version is None:
            return ProtocolVersion.V1.value
        return impl.protocol_version.value

    @property
    def model_class(self) -> str | None:
        """The custom model class ``module:Class``.

        Looked up, first match wins: the predictor's ``hyperflow.io/model-class``
        annotation, the InferenceService's, then ``model.runtime`` when it is a
        ``module:Class`` reference (a ServingRuntime name never contains ``:``).
        """
        if MODEL_CLASS_ANNOTATION in self.annotations:
            return self.annotations[MODEL_CLASS_ANNOTATION]
        if self._isvc_model_class is not None:
            return self._isvc_model_class
        runtime = self.runtime
        if runtime is not None and ":" in runtime:
            return runtime
        return None

    @property
    def env(self) -> dict[str, str]:
        """Environment given on the model container (e.g. ``PREDICT_PROBA``)."""
        impl = self.implementation
        return impl.env_dict() if impl is not None else {}

    @property
    def effective_min_replicas(self) -> int:
        """``minReplicas`` with KServe's default of 1."""
        return 1 if self.min_replicas is None else self.min_replicas

    @property
    def effective_max_replicas(self) -> int | None:
        """``maxReplicas``; None when unbounded (KServe: 0 or unset means no limit)."""
        return self.max_replicas or None

    @property
    def effective_scale_metric(self) -> str:
        return (self.scale_metric or ScaleMetric.CONCURRENCY).value


class InferenceServiceSpec(KServeModel):
    predictor: PredictorSpec
    explainer: ExplainerSpec | None = None
    transformer: TransformerSpec | None = None


class ObjectMeta(KServeModel):
    # Server-set metadata (uid, creationTimestamp, ...) is accepted and ignored.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    name: str
    namespace: str = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    _coerce_maps = field_validator("labels", "annotations", mode="before")(_scalars_to_str)


class InferenceService(KServeModel):
    api_version: str = API_VERSION
    kind: str = KIND
    metadata: ObjectMeta
    spec: InferenceServiceSpec
    # ``kubectl get -o yaml`` output carries a status; it is not ours to read.
    status: dict[str, Any] | None = Field(default=None, exclude=True)

    _base_dir: Path | None = PrivateAttr(default=None)

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def base_dir(self) -> Path | None:
        """The folder of the file this service was loaded from (relative storageUri root)."""
        return self._base_dir

    def with_base_dir(self, base_dir: Path | None) -> InferenceService:
        self._base_dir = base_dir
        return self

    @property
    def predictor(self) -> PredictorSpec:
        return self.spec.predictor

    def autoscaling(self) -> AutoscalingConfig:
        """The local KPA knobs: predictor fields, then Knative annotations, then defaults."""
        from serving.spec.autoscaling import autoscaling_config

        return autoscaling_config(self)
