"""The Experiment spec: Katib v1beta1 models, loading and validation.

``load_experiments(path)``, ``load_experiment(path)`` and ``parse_experiment(data)`` all
validate against Katib's rules and apply Katib's defaults; ``validate_experiment`` does the
same for an Experiment built in Python. Bad input raises :class:`SpecError`, whose
``lines()`` name each field: ``spec.parameters[1].feasibleSpace.min: must be < max``.
"""

from tuner.spec.errors import FieldError, SpecError
from tuner.spec.loader import load_experiment, load_experiments, parse_experiment
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
from tuner.spec.validation import check_experiment, validate_experiment

__all__ = [
    "AlgorithmSpec",
    "Distribution",
    "EarlyStoppingSpec",
    "Experiment",
    "ExperimentSpec",
    "FeasibleSpace",
    "FieldError",
    "MetricsCollectorKind",
    "MetricsCollectorSpec",
    "ObjectiveSpec",
    "ObjectiveType",
    "ParameterSpec",
    "ParameterType",
    "SpecError",
    "TrialTemplate",
    "check_experiment",
    "load_experiment",
    "load_experiments",
    "parse_experiment",
    "validate_experiment",
]
