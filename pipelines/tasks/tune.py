"""What the ``tune`` component does inside its task: run an Experiment through the tuner.

Called from the component's own source (which a KFP task runs), in the task's worker
process: trials run and are logged exactly as ``tuner.sdk.tune`` / ``hyperflow experiment
run`` do, and the best trial's saved files become the component's ``Model`` output.
"""

from __future__ import annotations

import functools
import importlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipelines.cache import content_digest
from pipelines.spec import digest

DATASET_ENV = "HYPERFLOW_INPUT_DATASET"


def load_objective(reference: str) -> Callable[..., Any]:
    """``"package.module:function"`` -> the function (the module must be importable)."""
    module_name, sep, attr = reference.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"objective {reference!r}: expected 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"objective {reference!r}: cannot import {module_name}: {exc}") from None
    function = module
    for part in attr.split("."):
        if not hasattr(function, part):
            raise ValueError(f"objective {reference!r}: {module_name} has no {attr}")
        function = getattr(function, part)
    if not callable(function):
        raise ValueError(f"objective {reference!r} is not callable")
    return function


def call_objective(
    objective: Callable[..., Any], extra: dict[str, Any], parameters: dict[str, Any]
) -> Any:
    """A trial: the objective gets the assignments and the fixed keyword arguments."""
    return objective(parameters, **extra)


def _int(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def whole(spec: dict[str, Any]) -> dict[str, Any]:
    """A parameter's range with the ints it means. A pipeline's constants reach a task as
    protobuf values, where every number is a double: the literal ``{"type": "int",
    "min": 5}`` arrives as 5.0 (refused by an int space), discrete ``[2, 3]`` as
    ``[2.0, 3.0]`` (trials got 2.0, which ``max_depth`` refuses). Only there: a double or
    categorical range, or ``fixed``, keeps its floats (``max_features=1.0`` means all
    features, ``1`` one)."""
    kind = spec.get("type")
    if kind == "int":
        return {k: _int(v) if k in ("min", "max", "step") else v for k, v in spec.items()}
    values = spec.get("values")
    if (
        kind == "discrete"
        and isinstance(values, list)
        and all(isinstance(v, int | float) and float(v).is_integer() for v in values)
    ):
        return {**spec, "values": [_int(v) for v in values]}
    return spec


def search_space(parameters: dict[str, Any]) -> dict[str, Any]:
    """``{"C": {"type": "double", "min": 0.1, "max": 10, "distribution": "logUniform"}}``
    (types double, int, categorical, discrete; ``values`` for the last two)."""
    from tuner.sdk import search

    space: dict[str, Any] = {}
    for name, spec in parameters.items():
        if not isinstance(spec, dict) or "type" not in spec:
            raise ValueError(f"parameters[{name!r}]: expected a dict with 'type' and its range")
        spec = whole(spec)
        kind = spec["type"]
        options = {k: v for k, v in spec.items() if k != "type"}
        makers: dict[str, Callable[..., Any]] = {
            "double": search.double,
            "int": search.int,
            "categorical": search.categorical,
            "discrete": search.discrete,
        }
        maker = makers.get(kind)
        if maker is None:
            raise ValueError(
                f"parameters[{name!r}].type: {kind!r} is not double, int, categorical or discrete"
            )
        if kind in ("categorical", "discrete"):
            space[name] = maker(options.get("values", []))
        else:
            space[name] = maker(**options)
    return space


# The digest of what a tune step's trials read besides their parameters (the dataset's
# content, ``fixed``): a step that finds its experiment tuned on other inputs says so rather
# than hand back a model of the old data.
INPUTS_ANNOTATION = "hyperflow.io/tune-inputs"


def inputs_digest(dataset_path: str | None, fixed: dict[str, Any] | None) -> str:
    # The dataset's content as the cache keys take it (a file, or a folder's files).
    dataset = content_digest(dataset_path) if dataset_path is not None else None
    return f"sha256:{digest({'fixed': fixed or {}, 'dataset': dataset})}"


def check_inputs(settings: Any, namespace: str, name: str, inputs: dict[str, str]) -> None:
    """Refuse to reuse experiment ``name`` when it was tuned on other inputs."""
    from tuner.store import Store

    store = Store(settings.store_url)
    try:
        existing = store.get_experiment(namespace, name)
    finally:
        store.close()
    if existing is None:
        return
    annotations = (existing.spec.get("metadata") or {}).get("annotations") or {}
    recorded = annotations.get(INPUTS_ANNOTATION)
    if recorded is not None and recorded != inputs[INPUTS_ANNOTATION]:
        raise ValueError(
            f"experiment {name} was tuned on another dataset or other fixed arguments; its "
            f"best model would not be this data's: give the tune step another name, or "
            f"delete it first (hyperflow experiment delete {name})"
        )


def run_tune(
    *,
    name: str,
    objective: str,
    parameters: dict[str, Any] | None,
    objective_metric_name: str,
    objective_type: str,
    objective_goal: float | None,
    algorithm_name: str,
    max_trial_count: int,
    parallel_trial_count: int,
    max_failed_trial_count: int | None,
    experiment: dict[str, Any] | None,
    fixed: dict[str, Any] | None,
    dataset_path: str | None,
    model_path: str,
) -> tuple[dict[str, Any], float, dict[str, Any]]:
    """Tune; (best parameters, best objective value, model metadata). Raises on failure."""
    from tuner.settings import TunerSettings
    from tuner.status import best_trial
    from tuner.store import Store

    settings = TunerSettings()
    if dataset_path is not None:
        os.environ[DATASET_ENV] = dataset_path
    extra = dict(fixed or {})
    if dataset_path is not None:
        extra["dataset"] = dataset_path
    inputs = {INPUTS_ANNOTATION: inputs_digest(dataset_path, fixed)}
    if experiment:
        from tuner.runner import run_experiment
        from tuner.spec.loader import parse_experiment

        metadata = dict(experiment.get("metadata") or {})
        metadata["annotations"] = {**(metadata.get("annotations") or {}), **inputs}
        spec = parse_experiment({**experiment, "metadata": metadata})
        check_inputs(settings, spec.metadata.namespace, spec.metadata.name, inputs)
        outcome = run_experiment(spec, settings=settings)
        record, objective_spec = outcome.record, spec.spec.objective
        metric = objective_spec.objective_metric_name
    else:
        from tuner.sdk import tune

        if not objective or not parameters or not objective_metric_name:
            raise ValueError(
                "tune: give either experiment (a Katib Experiment) or objective, parameters "
                "and objective_metric_name"
            )
        function = functools.partial(call_objective, load_objective(objective), extra)
        check_inputs(settings, "default", name, inputs)
        result = tune(
            name=name,
            objective=function,
            parameters=search_space(parameters),
            objective_metric_name=objective_metric_name,
            objective_type=objective_type,
            objective_goal=objective_goal,
            algorithm_name=algorithm_name,
            max_trial_count=max_trial_count,
            parallel_trial_count=parallel_trial_count,
            max_failed_trial_count=max_failed_trial_count,
            settings=settings,
            annotations=inputs,
        )
        record = result.experiment
        from tuner.spec.models import Experiment

        objective_spec = Experiment.model_validate(record.spec).spec.objective
        metric = objective_metric_name
    store = Store(settings.store_url)
    try:
        trials = store.trials(record.uid)
    finally:
        store.close()
    best = best_trial(objective_spec, trials)
    if best is None or best.objective_value is None:
        raise RuntimeError(
            f"experiment {record.name} ended {record.phase.value} ({record.reason}) "
            "with no succeeded trial"
        )
    if record.phase.value != "Succeeded":
        raise RuntimeError(
            f"experiment {record.name} ended {record.phase.value} ({record.reason}): "
            f"{record.message}"
        )
    saved = Path(best.trial_dir) / "artifacts"
    if not saved.is_dir() or not any(saved.iterdir()):
        raise RuntimeError(
            f"the best trial {best.name} saved no model: trials write it under "
            "$HYPERFLOW_ARTIFACTS_DIR"
        )
    shutil.copytree(saved, model_path, dirs_exist_ok=True)
    metadata = {
        "experiment": record.name,
        "trial": best.name,
        "objective_metric": metric,
        "objective_value": best.objective_value,
        "parameters": dict(best.assignments),
    }
    return dict(best.assignments), float(best.objective_value), metadata
