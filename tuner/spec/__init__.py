"""The Experiment spec: Katib v1beta1 models, loading and validation."""

from tuner.spec.models import (
    AlgorithmSpec,
    Distribution,
    EarlyStoppingSpec,
    Experiment,
    ExperimentSpec,
    FeasibleSpace,
    MetricsCollectorKind,
    MetricsCollectorSpec,
    ObjectiveSpec,
    ObjectiveType,
    ParameterSpec,
    ParameterType,
    TrialTemplate,
)

__all__ = [
    "AlgorithmSpec",
    "Distribution",
    "EarlyStoppingSpec",
    "Experiment",
    "ExperimentSpec",
    "FeasibleSpace",
    "MetricsCollectorKind",
    "MetricsCollectorSpec",
    "ObjectiveSpec",
    "ObjectiveType",
    "ParameterSpec",
    "ParameterType",
    "TrialTemplate",
]
