"""Katib's defaulting webhook (``Experiment.SetDefault``), applied after validation passes."""

from __future__ import annotations

from tuner.spec.models import (
    Distribution,
    Experiment,
    FileSystemKind,
    HttpGet,
    MetricsCollectorKind,
    MetricStrategy,
    MetricStrategyType,
    ObjectiveType,
    ParameterType,
    SourceSpec,
)

# Katib pkg/apis/controller/experiments/v1beta1/constants.go
JOB_SUCCESS_CONDITION = 'status.conditions.#(type=="Complete")#|#(status=="True")#'
JOB_FAILURE_CONDITION = 'status.conditions.#(type=="Failed")#|#(status=="True")#'
KUBEFLOW_JOB_SUCCESS_CONDITION = 'status.conditions.#(type=="Succeeded")#|#(status=="True")#'
KUBEFLOW_JOB_FAILURE_CONDITION = 'status.conditions.#(type=="Failed")#|#(status=="True")#'
KUBEFLOW_JOB_PRIMARY_POD_LABELS = {"training.kubeflow.org/job-role": "master"}
KUBEFLOW_JOB_KINDS = frozenset(
    {"TFJob", "PyTorchJob", "XGBoostJob", "MXJob", "MPIJob", "PaddleJob", "JAXJob"}
)
DEFAULT_PROMETHEUS_PATH = "/metrics"
DEFAULT_PROMETHEUS_PORT = 8080


def apply_defaults(experiment: Experiment) -> None:
    """Fill in what Katib's mutating webhook fills in; idempotent."""
    spec = experiment.spec
    objective = spec.objective
    # Every metric gets an explicit strategy, chosen by the objective type, as in Katib.
    default = (
        MetricStrategyType.MIN
        if objective.type is ObjectiveType.MINIMIZE
        else MetricStrategyType.MAX
    )
    have = {s.name for s in objective.metric_strategies}
    for name in [objective.objective_metric_name, *objective.additional_metric_names]:
        if name not in have:
            objective.metric_strategies.append(MetricStrategy(name=name, value=default))
            have.add(name)
    for parameter in spec.parameters:
        if parameter.feasible_space.distribution is None and parameter.parameter_type in (
            ParameterType.DOUBLE,
            ParameterType.INT,
        ):
            parameter.feasible_space.distribution = Distribution.UNIFORM
    template = spec.trial_template
    if template is not None and template.trial_spec is not None:
        kind = template.trial_spec.get("kind")
        if kind == "Job":
            template.success_condition = template.success_condition or JOB_SUCCESS_CONDITION
            template.failure_condition = template.failure_condition or JOB_FAILURE_CONDITION
        elif kind in KUBEFLOW_JOB_KINDS:
            template.success_condition = (
                template.success_condition or KUBEFLOW_JOB_SUCCESS_CONDITION
            )
            template.failure_condition = (
                template.failure_condition or KUBEFLOW_JOB_FAILURE_CONDITION
            )
            if not template.primary_pod_labels:
                template.primary_pod_labels = dict(KUBEFLOW_JOB_PRIMARY_POD_LABELS)
    collector = spec.metrics_collector_spec
    if collector.collector.kind is MetricsCollectorKind.TENSORFLOW_EVENT:
        fs = collector.source.file_system_path if collector.source is not None else None
        if fs is not None and "kind" not in fs.model_fields_set:
            fs.kind = FileSystemKind.DIRECTORY
    elif collector.collector.kind is MetricsCollectorKind.PROMETHEUS_METRIC:
        if collector.source is None:
            collector.source = SourceSpec()
        if collector.source.http_get is None:
            collector.source.http_get = HttpGet()
        http = collector.source.http_get
        http.path = http.path or DEFAULT_PROMETHEUS_PATH
        http.port = http.port or DEFAULT_PROMETHEUS_PORT
