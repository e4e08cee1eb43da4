"""Katib ``kubeflow.org/v1beta1`` Experiment as pydantic models.

Attributes are snake_case; every field also accepts (and serialises to) Katib's camelCase
name, so a Katib YAML file loads unchanged: ``spec.parallelTrialCount`` is
``ExperimentSpec.parallel_trial_count``. Numbers in ``feasibleSpace`` are strings in Katib;
they stay strings here (as the user wrote them) and are parsed by the helpers on
:class:`FeasibleSpace`.

Cross-field rules (Katib's webhook validation) and Katib's defaults live in
:mod:`tuner.spec.validation`; loading from files in :mod:`tuner.spec.loader`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

API_VERSION = "kubeflow.org/v1beta1"
KIND = "Experiment"


class KatibModel(BaseModel):
    """Base: camelCase aliases, unknown fields rejected (a typo is an error, not ignored)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_assignment=False,
    )

    def to_dict(self) -> dict[str, Any]:
        """The Katib (camelCase) form, without unset optional fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def _number_to_str(value: Any) -> Any:
    # Katib keeps feasibleSpace numbers as strings; YAML authors often write bare numbers.
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    return value


class ObjectiveType(StrEnum):
    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"


class MetricStrategyType(StrEnum):
    MIN = "min"
    MAX = "max"
    LATEST = "latest"


class MetricStrategy(KatibModel):
    name: str
    value: MetricStrategyType


class ObjectiveSpec(KatibModel):
    type: ObjectiveType
    goal: float | None = None
    objective_metric_name: str
    additional_metric_names: list[str] = Field(default_factory=list)
    metric_strategies: list[MetricStrategy] = Field(default_factory=list)

    @field_validator("goal", mode="before")
    @classmethod
    def _goal_not_a_bool(cls, value: Any) -> Any:
        # ``true`` is no goal (it read as 1.0). A string stays accepted: PyYAML reads
        # ``goal: 1e-3`` (no dot) as one, where Kubernetes' YAML reads a number.
        if isinstance(value, bool):
            raise PydanticCustomError("float_type", "must be a number")
        return value

    def strategy_for(self, metric_name: str) -> MetricStrategyType:
        """The strategy used to reduce a metric's observations to one value."""
        for strategy in self.metric_strategies:
            if strategy.name == metric_name:
                return strategy.value
        return (
            MetricStrategyType.MIN
            if self.type is ObjectiveType.MINIMIZE
            else MetricStrategyType.MAX
        )


class AlgorithmSetting(KatibModel):
    name: str
    value: str

    _coerce = field_validator("value", mode="before")(_number_to_str)


class AlgorithmSpec(KatibModel):
    algorithm_name: str
    algorithm_settings: list[AlgorithmSetting] = Field(default_factory=list)

    def settings(self) -> dict[str, str]:
        return {s.name: s.value for s in self.algorithm_settings}


class EarlyStoppingSpec(KatibModel):
    algorithm_name: str
    algorithm_settings: list[AlgorithmSetting] = Field(default_factory=list)

    def settings(self) -> dict[str, str]:
        return {s.name: s.value for s in self.algorithm_settings}


class ParameterType(StrEnum):
    DOUBLE = "double"
    INT = "int"
    DISCRETE = "discrete"
    CATEGORICAL = "categorical"


class Distribution(StrEnum):
    UNIFORM = "uniform"
    LOG_UNIFORM = "logUniform"
    NORMAL = "normal"
    LOG_NORMAL = "logNormal"


class FeasibleSpace(KatibModel):
    min: str | None = None
    max: str | None = None
    step: str | None = None
    # ``list`` in Katib; named ``values`` here so it does not shadow the builtin.
    values: list[str] | None = Field(default=None, alias="list")
    distribution: Distribution | None = None

    _coerce = field_validator("min", "max", "step", mode="before")(_number_to_str)

    @field_validator("values", mode="before")
    @classmethod
    def _coerce_list(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [_number_to_str(v) for v in value]
        return value


class ParameterSpec(KatibModel):
    name: str
    parameter_type: ParameterType
    feasible_space: FeasibleSpace


class MetricsCollectorKind(StrEnum):
    STDOUT = "StdOut"
    FILE = "File"
    TENSORFLOW_EVENT = "TensorFlowEvent"
    PROMETHEUS_METRIC = "PrometheusMetric"
    CUSTOM = "Custom"
    NONE = "None"
    PUSH = "Push"


class FileSystemKind(StrEnum):
    FILE = "File"
    DIRECTORY = "Directory"


class FileFormat(StrEnum):
    TEXT = "TEXT"
    JSON = "JSON"


class FileSystemPath(KatibModel):
    path: str
    kind: FileSystemKind = FileSystemKind.FILE
    format: FileFormat = FileFormat.TEXT


class FilterSpec(KatibModel):
    metrics_format: list[str] = Field(default_factory=list)


class HttpGet(KatibModel):
    model_config = ConfigDict(extra="allow")
    path: str | None = None
    port: int | str | None = None


class SourceSpec(KatibModel):
    file_system_path: FileSystemPath | None = None
    filter: FilterSpec | None = None
    http_get: HttpGet | None = None


class CollectorSpec(KatibModel):
    kind: MetricsCollectorKind = MetricsCollectorKind.STDOUT
    custom_collector: dict[str, Any] | None = None


class MetricsCollectorSpec(KatibModel):
    source: SourceSpec | None = None
    collector: CollectorSpec = Field(default_factory=CollectorSpec)


class TrialParameterSpec(KatibModel):
    name: str
    description: str | None = None
    reference: str


class ConfigMapSource(KatibModel):
    config_map_name: str
    config_map_namespace: str | None = None
    template_path: str


class TrialTemplate(KatibModel):
    retain: bool = False
    trial_spec: dict[str, Any] | None = None
    config_map: ConfigMapSource | None = None
    # Local extension: a plain command (argv list) run as the trial, instead of a trialSpec.
    command: list[str] | None = None
    # Local extension: extra environment for ``command`` trials.
    env: dict[str, str] | None = None
    trial_parameters: list[TrialParameterSpec] = Field(default_factory=list)
    primary_pod_labels: dict[str, str] | None = None
    primary_container_name: str | None = None
    success_condition: str | None = None
    failure_condition: str | None = None


class ResumePolicy(StrEnum):
    NEVER = "Never"
    LONG_RUNNING = "LongRunning"
    FROM_VOLUME = "FromVolume"


class ExperimentSpec(KatibModel):
    parameters: list[ParameterSpec] = Field(default_factory=list)
    objective: ObjectiveSpec
    algorithm: AlgorithmSpec
    early_stopping: EarlyStoppingSpec | None = None
    trial_template: TrialTemplate | None = None
    # Strict, as the Experiment CRD's OpenAPI types are: not ``true`` (1) nor ``"5"``.
    parallel_trial_count: int = Field(default=3, strict=True)
    max_trial_count: int | None = Field(default=None, strict=True)
    max_failed_trial_count: int | None = Field(default=None, strict=True)
    metrics_collector_spec: MetricsCollectorSpec = Field(default_factory=MetricsCollectorSpec)
    nas_config: dict[str, Any] | None = None
    resume_policy: ResumePolicy = ResumePolicy.NEVER


class ObjectMeta(KatibModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")
    name: str
    namespace: str = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class Experiment(KatibModel):
    api_version: str = API_VERSION
    kind: str = KIND
    metadata: ObjectMeta
    spec: ExperimentSpec

    # The folder of the file the experiment came from: trial commands run there and
    # relative paths resolve from there. Not part of the Katib spec, so never serialised.
    _base_dir: Path | None = PrivateAttr(default=None)

    @property
    def base_dir(self) -> Path | None:
        """Folder of the experiment file (None when built from a mapping without one)."""
        return self._base_dir

    @base_dir.setter
    def base_dir(self, value: Path | str | None) -> None:
        self._base_dir = Path(value) if value is not None else None
