"""The Experiment spec: Katib v1beta1 models, loading and validation.

``load_experiments(path)``, ``load_experiment(path)`` and ``parse_experiment(data)`` all
validate against Katib's rules and apply Katib's defaults; ``validate_experiment`` does the
same for an Experiment built in Python. Bad input raises :class:`SpecError`, whose
``lines()`` name each field: ``spec.parameters[1].feasibleSpace.min: must be < max``.
"""

from typing import TYPE_CHECKING, Any

from tuner.spec.errors import FieldError, SpecError
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

if TYPE_CHECKING:
    from tuner.spec.loader import load_experiment, load_experiments, parse_experiment
    from tuner.spec.validation import check_experiment, validate_experiment

# Loading (yaml) and validation are imported on first use: a function-trial worker needs
# only the models, and starts that much sooner.
_LAZY = {
    "load_experiment": "tuner.spec.loader",
    "load_experiments": "tuner.spec.loader",
    "parse_experiment": "tuner.spec.loader",
    "check_experiment": "tuner.spec.validation",
    "validate_experiment": "tuner.spec.validation",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
