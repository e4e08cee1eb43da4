"""How a hyperflow experiment maps onto MLflow: names, tags, params, statuses.

Pure functions with no MLflow import, so the layout is readable (and testable) on its own:

* one MLflow experiment per hyperflow experiment, named ``metadata.name`` (prefixed
  ``<namespace>/`` outside the ``default`` namespace);
* one parent run per hyperflow experiment uid (run name = experiment name);
* one nested run per trial (run name = trial name, tag ``mlflow.parentRunId``).
"""

from __future__ import annotations

import getpass
import re
from typing import Protocol

from tuner.spec.models import Experiment
from tuner.types import ExperimentPhase, ExperimentReason, TrialPhase

TAG_EXPERIMENT = "hyperflow.experiment"
TAG_NAMESPACE = "hyperflow.namespace"
TAG_UID = "hyperflow.uid"
TAG_ALGORITHM = "hyperflow.algorithm"
TAG_TRIAL = "hyperflow.trial"
TAG_STATUS = "hyperflow.status"
TAG_REASON = "hyperflow.reason"
TAG_BEST_TRIAL = "hyperflow.best_trial"
TAG_BEST_RUN_ID = "hyperflow.best_run_id"
# Distinguishes the parent run from trial runs in searches (MLflow cannot filter on a
# missing tag).
TAG_RUN_TYPE = "hyperflow.run_type"
RUN_TYPE_EXPERIMENT = "experiment"
RUN_TYPE_TRIAL = "trial"
RUN_TYPE_PIPELINE_RUN = "pipeline_run"
RUN_TYPE_PIPELINE_TASK = "pipeline_task"
# Run types of parent runs (the others are nested runs keyed by TAG_TRIAL).
PARENT_RUN_TYPES = frozenset({RUN_TYPE_EXPERIMENT, RUN_TYPE_PIPELINE_RUN})
TAG_PARENT_RUN_ID = "mlflow.parentRunId"
# MLflow's "User" column (what mlflow.start_run records from the OS user).
TAG_USER = "mlflow.user"

SPEC_ARTIFACT = "experiment.yaml"
TRIAL_LOG = "trial.log"
TRIAL_ARTIFACTS_DIR = "artifacts"
FINAL_METRIC_PREFIX = "final_"
BEST_METRIC_PREFIX = "best_"

# MLflow's limits (mlflow.utils.validation); longer values are cut rather than rejected.
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_KEY_LENGTH = 250
_INVALID_KEY_CHARS = re.compile(r"[^\w\-. /]")

RUNNING = "RUNNING"
FINISHED = "FINISHED"
FAILED = "FAILED"
KILLED = "KILLED"

_TRIAL_STATUS = {
    TrialPhase.CREATED: RUNNING,
    TrialPhase.RUNNING: RUNNING,
    TrialPhase.SUCCEEDED: FINISHED,
    TrialPhase.FAILED: FAILED,
    TrialPhase.METRICS_UNAVAILABLE: FAILED,
    TrialPhase.KILLED: KILLED,
    TrialPhase.EARLY_STOPPED: KILLED,
}


def current_user() -> str:
    """The OS user name, as MLflow's own run context resolves it."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry and no $USER (some containers)
        return "unknown"


def tag_equals(tag: str, value: str) -> str:
    """An MLflow search filter clause: run tag ``tag`` equals ``value`` (quotes escaped)."""
    escaped = value.replace("'", "\\'")
    return f"tags.`{tag}` = '{escaped}'"


def key(name: str) -> str:
    """A metric/param key MLflow accepts: invalid characters become ``_``."""
    cleaned = _INVALID_KEY_CHARS.sub("_", name).strip() or "_"
    return cleaned[:MAX_KEY_LENGTH]


def param_value(value: object) -> str:
    return str(value)[:MAX_PARAM_VALUE_LENGTH]


def tag_value(value: object) -> str:
    return str(value)[:MAX_TAG_VALUE_LENGTH]


def trial_status(phase: TrialPhase) -> str:
    """MLflow run status of a trial in ``phase``."""
    return _TRIAL_STATUS[phase]


def experiment_status(phase: ExperimentPhase, reason: str) -> str:
    """MLflow run status of the parent run when the experiment ends."""
    if reason == ExperimentReason.KILLED:
        return KILLED
    if phase is ExperimentPhase.SUCCEEDED:
        return FINISHED
    if phase is ExperimentPhase.FAILED:
        return FAILED
    return RUNNING


def experiment_name(experiment: Experiment) -> str:
    meta = experiment.metadata
    return meta.name if meta.namespace == "default" else f"{meta.namespace}/{meta.name}"


def fallback_experiment_name(experiment: Experiment, uid: str) -> str:
    """Used when the plain name belongs to an MLflow experiment a user deleted.

    MLflow keeps deleted names reserved; restoring the deleted experiment would bring back
    runs the user threw away.
    """
    return f"{experiment_name(experiment)} ({uid[:8]})"


def experiment_tags(experiment: Experiment) -> dict[str, str]:
    return {
        TAG_EXPERIMENT: experiment.metadata.name,
        TAG_NAMESPACE: experiment.metadata.namespace,
    }


def parent_tags(experiment: Experiment, uid: str) -> dict[str, str]:
    return {
        TAG_EXPERIMENT: experiment.metadata.name,
        TAG_NAMESPACE: experiment.metadata.namespace,
        TAG_UID: uid,
        TAG_ALGORITHM: experiment.spec.algorithm.algorithm_name,
        TAG_RUN_TYPE: RUN_TYPE_EXPERIMENT,
        TAG_STATUS: ExperimentPhase.RUNNING.value,
    }


def trial_tags(
    experiment: Experiment, uid: str, trial_name: str, parent_run_id: str
) -> dict[str, str]:
    return {
        TAG_PARENT_RUN_ID: parent_run_id,
        TAG_EXPERIMENT: experiment.metadata.name,
        TAG_NAMESPACE: experiment.metadata.namespace,
        TAG_UID: uid,
        TAG_ALGORITHM: experiment.spec.algorithm.algorithm_name,
        TAG_RUN_TYPE: RUN_TYPE_TRIAL,
        TAG_TRIAL: tag_value(trial_name),
        TAG_STATUS: TrialPhase.RUNNING.value,
    }


def parent_params(experiment: Experiment) -> dict[str, str]:
    """The experiment's settings as parent-run params: algorithm, objective, budget, space."""
    spec = experiment.spec
    params: dict[str, object] = {"algorithm": spec.algorithm.algorithm_name}
    for name, value in spec.algorithm.settings().items():
        params[f"algorithm.{name}"] = value
    params["objective.type"] = spec.objective.type.value
    params["objective.metric"] = spec.objective.objective_metric_name
    if spec.objective.goal is not None:
        params["objective.goal"] = spec.objective.goal
    if spec.objective.additional_metric_names:
        params["objective.additionalMetrics"] = ",".join(spec.objective.additional_metric_names)
    params["parallelTrialCount"] = spec.parallel_trial_count
    if spec.max_trial_count is not None:
        params["maxTrialCount"] = spec.max_trial_count
    if spec.max_failed_trial_count is not None:
        params["maxFailedTrialCount"] = spec.max_failed_trial_count
    if spec.early_stopping is not None:
        params["earlyStopping"] = spec.early_stopping.algorithm_name
        for name, value in spec.early_stopping.settings().items():
            params[f"earlyStopping.{name}"] = value
    for parameter in spec.parameters:
        space = parameter.feasible_space
        if space.values is not None:
            described = "[" + ", ".join(space.values) + "]"
        else:
            described = f"[{space.min}, {space.max}]"
            if space.step is not None:
                described += f" step {space.step}"
        if space.distribution is not None:
            described += f" {space.distribution.value}"
        params[f"space.{parameter.name}"] = f"{parameter.parameter_type.value} {described}"
    return {key(k): param_value(v) for k, v in params.items()}


class RunsLayout(Protocol):
    """What the MLflow writer needs to know about the object it records as a parent run
    with nested runs: a tuner experiment (:class:`ExperimentLayout`), or a pipeline run.

    ``child`` is the name of a nested run (a trial, a pipeline task)."""

    def experiment_name(self) -> str: ...

    def fallback_experiment_name(self, uid: str) -> str: ...

    def experiment_tags(self) -> dict[str, str]: ...

    def parent_run_name(self) -> str: ...

    def parent_tags(self, uid: str) -> dict[str, str]: ...

    def child_tags(self, uid: str, child: str, parent_run_id: str) -> dict[str, str]: ...

    def parent_params(self) -> dict[str, str]: ...

    def spec_artifact(self) -> tuple[str, str]:
        """(file name, text) of the spec stored with the parent run."""
        ...


class ExperimentLayout:
    """The layout of a hyperflow experiment (the functions above)."""

    def __init__(self, experiment: Experiment) -> None:
        self.experiment = experiment

    def experiment_name(self) -> str:
        return experiment_name(self.experiment)

    def fallback_experiment_name(self, uid: str) -> str:
        return fallback_experiment_name(self.experiment, uid)

    def experiment_tags(self) -> dict[str, str]:
        return experiment_tags(self.experiment)

    def parent_run_name(self) -> str:
        return self.experiment.metadata.name

    def parent_tags(self, uid: str) -> dict[str, str]:
        return parent_tags(self.experiment, uid)

    def child_tags(self, uid: str, child: str, parent_run_id: str) -> dict[str, str]:
        return trial_tags(self.experiment, uid, child, parent_run_id)

    def parent_params(self) -> dict[str, str]:
        return parent_params(self.experiment)

    def spec_artifact(self) -> tuple[str, str]:
        import yaml

        return SPEC_ARTIFACT, yaml.safe_dump(self.experiment.to_dict(), sort_keys=False)


def as_layout(subject: Experiment | RunsLayout) -> RunsLayout:
    return ExperimentLayout(subject) if isinstance(subject, Experiment) else subject
