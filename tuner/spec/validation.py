"""Katib's validating webhook for Experiments, as field-named errors.

The rules follow ``pkg/webhook/v1beta1/experiment/validator/validator.go`` in
kubeflow/katib, tightened where a local run needs more (both bounds of a range, a command
in the primary container). Per-algorithm settings are the suggestion service's business:
:func:`tuner.suggestion.validate_algorithm` checks them, here they are only routed.
"""

from __future__ import annotations

import math
import re

from tuner.spec.collector_rules import check_metrics_collector
from tuner.spec.defaults import apply_defaults
from tuner.spec.errors import FieldError, SpecError
from tuner.spec.models import API_VERSION, KIND, EarlyStoppingSpec, Experiment, ObjectiveSpec
from tuner.spec.numbers import INT32_MAX
from tuner.spec.parameter_rules import check_parameters
from tuner.spec.template_rules import check_trial_template

# Katib's regexp, anchored at both ends (Katib's is only anchored at the start, which lets
# "a_B" through to fail later in Kubernetes); 63 because the name becomes a label value.
_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
MAX_NAME_LENGTH = 63

EARLY_STOPPING_ALGORITHMS = ("medianstop",)
# medianstop settings: each an integer >= 1 (Katib's medianstop service rules).
MEDIANSTOP_SETTINGS = ("min_trials_required", "start_step")


def validate_experiment(experiment: Experiment) -> None:
    """Check ``experiment`` against Katib's rules, then apply Katib's defaults.

    Raises :class:`SpecError` listing every problem; on success the experiment is
    completed in place (metric strategies, distributions, trial conditions, ...).
    """
    errors = check_experiment(experiment)
    if errors:
        raise SpecError(errors)
    apply_defaults(experiment)


def check_experiment(experiment: Experiment) -> list[FieldError]:
    """Every rule violation in ``experiment``, without changing it."""
    errors: list[FieldError] = []
    errors += _check_header(experiment)
    spec = experiment.spec
    if spec.nas_config is not None:
        # A NAS experiment is a different kind of search (no spec.parameters): one line
        # says so, rather than every rule it breaks for hyperparameter tuning.
        return [
            FieldError(
                "spec.nasConfig",
                "neural architecture search (NAS) experiments are not supported; hyperflow "
                "runs hyperparameter tuning (spec.parameters)",
            )
        ]
    errors += _check_objective(spec.objective)
    errors += _check_counts(experiment)
    algorithm = spec.algorithm
    algorithm_name_ok = bool(algorithm.algorithm_name.strip())
    if not algorithm_name_ok:
        errors.append(FieldError("spec.algorithm.algorithmName", "required"))
    resource = (
        algorithm.settings().get("resource_name")
        if algorithm.algorithm_name == "hyperband"
        else None
    )
    parameter_errors = check_parameters(spec.parameters, resource_parameter=resource)
    errors += parameter_errors
    if algorithm_name_ok and not parameter_errors:
        # The suggestion service parses the parameters; only hand it valid ones.
        errors += _check_algorithm(experiment)
    if spec.early_stopping is not None:
        errors += _check_early_stopping(spec.early_stopping)
    errors += check_trial_template(spec.trial_template, spec.parameters)
    errors += check_metrics_collector(spec.metrics_collector_spec)
    return errors


def _check_header(experiment: Experiment) -> list[FieldError]:
    errors: list[FieldError] = []
    if experiment.api_version != API_VERSION:
        errors.append(
            FieldError("apiVersion", f"must be {API_VERSION}; got {experiment.api_version!r}")
        )
    if experiment.kind != KIND:
        errors.append(FieldError("kind", f"must be {KIND}; got {experiment.kind!r}"))
    name = experiment.metadata.name
    if not name:
        errors.append(FieldError("metadata.name", "required"))
    elif len(name) > MAX_NAME_LENGTH:
        errors.append(
            FieldError(
                "metadata.name", f"must be at most {MAX_NAME_LENGTH} characters; got {len(name)}"
            )
        )
    elif not _NAME.fullmatch(name):
        errors.append(
            FieldError(
                "metadata.name",
                "must consist of lower case letters, digits or '-', start with a letter and "
                f"end with a letter or digit (e.g. 'my-name'); got {name!r}",
            )
        )
    namespace = experiment.metadata.namespace
    if len(namespace) > MAX_NAME_LENGTH or not _NAMESPACE.fullmatch(namespace):
        errors.append(
            FieldError(
                "metadata.namespace",
                "must be a DNS-1123 label (lower case letters, digits or '-', at most 63 "
                f"characters); got {namespace!r}",
            )
        )
    return errors


def _check_objective(objective: ObjectiveSpec) -> list[FieldError]:
    path = "spec.objective"
    errors: list[FieldError] = []
    if objective.goal is not None and not math.isfinite(objective.goal):
        errors.append(FieldError(f"{path}.goal", "must be a finite number"))
    main = objective.objective_metric_name
    if not main.strip():
        errors.append(FieldError(f"{path}.objectiveMetricName", "required"))
    seen: set[str] = set()
    for i, name in enumerate(objective.additional_metric_names):
        item = f"{path}.additionalMetricNames[{i}]"
        if not name.strip():
            errors.append(FieldError(item, "must not be empty"))
        elif name == main:
            errors.append(FieldError(item, f"must not contain objectiveMetricName {main!r}"))
        elif name in seen:
            errors.append(FieldError(item, f"duplicate metric name {name!r}"))
        seen.add(name)
    metrics = [main, *objective.additional_metric_names]
    named: set[str] = set()
    for i, strategy in enumerate(objective.metric_strategies):
        item = f"{path}.metricStrategies[{i}].name"
        if strategy.name not in metrics:
            errors.append(
                FieldError(
                    item,
                    f"unknown metric {strategy.name!r}; must be objectiveMetricName or one of "
                    f"additionalMetricNames ({', '.join(metrics)})",
                )
            )
        elif strategy.name in named:
            errors.append(FieldError(item, f"duplicate strategy for metric {strategy.name!r}"))
        named.add(strategy.name)
    return errors


def _check_counts(experiment: Experiment) -> list[FieldError]:
    spec = experiment.spec
    errors: list[FieldError] = []
    counts = (
        ("parallelTrialCount", spec.parallel_trial_count, 1),
        ("maxTrialCount", spec.max_trial_count, 1),
        ("maxFailedTrialCount", spec.max_failed_trial_count, 0),
    )
    valid: dict[str, int] = {}
    for name, value, low in counts:
        if value is None:
            continue
        if value < low:
            errors.append(FieldError(f"spec.{name}", f"must be >= {low}; got {value}"))
        elif value > INT32_MAX:
            errors.append(FieldError(f"spec.{name}", f"must be <= {INT32_MAX}; got {value}"))
        else:
            valid[name] = value
    max_trials = valid.get("maxTrialCount")
    if max_trials is not None:
        parallel = valid.get("parallelTrialCount")
        if parallel is not None and parallel > max_trials:
            # Katib defaults parallelTrialCount to 3 before validating, so an unset value
            # can clash with a small maxTrialCount; say where the 3 came from.
            note = "" if "parallel_trial_count" in spec.model_fields_set else " (3 is the default)"
            errors.append(
                FieldError(
                    "spec.parallelTrialCount",
                    f"must be <= maxTrialCount ({max_trials}); got {parallel}{note}",
                )
            )
        # Katib's webhook also rejects maxFailedTrialCount > maxTrialCount, yet Katib's own
        # examples/v1beta1/hp-tuning/simple-pbt.yaml has 3 > 2 and must load unchanged.
        # The combination is harmless (the failure limit just cannot be reached), so it
        # is accepted here.
    return errors


def _check_algorithm(experiment: Experiment) -> list[FieldError]:
    # Imported here: tuner.suggestion imports tuner.spec.models.
    from tuner.suggestion import validate_algorithm

    spec = experiment.spec
    problems = validate_algorithm(spec.algorithm, spec.parameters, spec.max_trial_count)
    return [FieldError(f"spec.{path}" if path else "spec", message) for path, message in problems]


def _check_early_stopping(early_stopping: EarlyStoppingSpec) -> list[FieldError]:
    path = "spec.earlyStopping"
    name = early_stopping.algorithm_name
    if not name.strip():
        return [FieldError(f"{path}.algorithmName", "required")]
    if name not in EARLY_STOPPING_ALGORITHMS:
        return [
            FieldError(
                f"{path}.algorithmName",
                f"unknown early stopping algorithm {name!r}; valid: {', '.join(EARLY_STOPPING_ALGORITHMS)}",
            )
        ]
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, setting in enumerate(early_stopping.algorithm_settings):
        item = f"{path}.algorithmSettings[{i}]"
        if setting.name not in MEDIANSTOP_SETTINGS:
            errors.append(
                FieldError(
                    f"{item}.name",
                    f"unknown setting {setting.name!r}; valid settings: {', '.join(MEDIANSTOP_SETTINGS)}",
                )
            )
            continue
        if setting.name in seen:
            errors.append(FieldError(f"{item}.name", f"duplicate setting {setting.name!r}"))
            continue
        seen.add(setting.name)
        try:
            value = int(setting.value.strip())
        except ValueError:
            value = 0
        if value < 1:
            errors.append(
                FieldError(f"{item}.value", f"must be an integer >= 1; got {setting.value!r}")
            )
    return errors
