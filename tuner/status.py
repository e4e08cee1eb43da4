"""Katib-shaped status objects built from the store.

``experiment_object`` returns what ``kubectl get experiment NAME -o json`` would show for
a Katib Experiment: the spec plus ``status`` with conditions, trial counts and lists, and
``currentOptimalTrial`` (metric values as strings, as Katib keeps them).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tuner.pids import pid_alive
from tuner.spec.models import ObjectiveSpec, ObjectiveType
from tuner.types import TrialPhase

if TYPE_CHECKING:
    from tuner.store import ExperimentRecord, TrialRecord


def rfc3339(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _num(value: float) -> str:
    # Katib keeps metric values as strings.
    return repr(float(value))


INTERRUPTED = "Interrupted"


def controller_alive(pid: int | None) -> bool:
    return pid is not None and pid > 0 and pid_alive(pid)


def display_phase(record: ExperimentRecord) -> str:
    """The phase people see: ``Interrupted`` for an unfinished experiment nobody runs.

    Katib has no such condition (its controller never stops); here the process running an
    experiment can be stopped (Ctrl-C) or killed, and the experiment stays as it was until
    the same command runs it again.
    """
    if not record.phase.finished and not controller_alive(record.controller_pid):
        return INTERRUPTED
    return record.phase.value


def best_trial(objective: ObjectiveSpec, trials: list[TrialRecord]) -> TrialRecord | None:
    best: TrialRecord | None = None
    for t in trials:
        if t.phase is not TrialPhase.SUCCEEDED or t.objective_value is None:
            continue
        if (
            best is None
            or best.objective_value is None
            or (
                objective.type is ObjectiveType.MINIMIZE
                and t.objective_value < best.objective_value
            )
            or (
                objective.type is ObjectiveType.MAXIMIZE
                and t.objective_value > best.objective_value
            )
        ):
            best = t
    return best


def trial_metrics(trial: TrialRecord) -> list[dict[str, str]]:
    return [
        {"name": name, "min": _num(m["min"]), "max": _num(m["max"]), "latest": _num(m["latest"])}
        for name, m in (trial.metrics or {}).items()
    ]


def optimal_trial(objective: ObjectiveSpec, trials: list[TrialRecord]) -> dict[str, Any]:
    return optimal_trial_object(best_trial(objective, trials))


def optimal_trial_object(best: TrialRecord | None) -> dict[str, Any]:
    """Katib's ``currentOptimalTrial`` for the best trial (empty fields when there is none)."""
    if best is None:
        return {"bestTrialName": "", "parameterAssignments": [], "observation": {"metrics": []}}
    return {
        "bestTrialName": best.name,
        "parameterAssignments": [{"name": k, "value": str(v)} for k, v in best.assignments.items()],
        "observation": {"metrics": trial_metrics(best)},
    }


_LISTS = {
    TrialPhase.SUCCEEDED: "succeededTrialList",
    TrialPhase.FAILED: "failedTrialList",
    TrialPhase.KILLED: "killedTrialList",
    TrialPhase.EARLY_STOPPED: "earlyStoppedTrialList",
    TrialPhase.METRICS_UNAVAILABLE: "metricsUnavailableTrialList",
    TrialPhase.RUNNING: "runningTrialList",
    TrialPhase.CREATED: "pendingTrialList",
}
_COUNTS = {
    TrialPhase.SUCCEEDED: "trialsSucceeded",
    TrialPhase.FAILED: "trialsFailed",
    TrialPhase.KILLED: "trialsKilled",
    TrialPhase.EARLY_STOPPED: "trialsEarlyStopped",
    TrialPhase.METRICS_UNAVAILABLE: "trialMetricsUnavailable",
    TrialPhase.RUNNING: "trialsRunning",
    TrialPhase.CREATED: "trialsPending",
}


def conditions(record: ExperimentRecord) -> list[dict[str, Any]]:
    """Latest condition per type; only the current phase (and Created) is "True", as Katib.
    A restart removes Succeeded and Failed, as Katib's ``MarkExperimentStatusRestarting``
    does: the one the continued run reaches comes last again."""
    latest: dict[str, dict[str, Any]] = {}
    for c in record.conditions:
        if c.type == "Restarting":
            latest.pop("Succeeded", None)
            latest.pop("Failed", None)
        latest[c.type] = {
            "type": c.type,
            "status": "False",
            "reason": c.reason,
            "message": c.message,
            "lastTransitionTime": rfc3339(c.time),
            "lastUpdateTime": rfc3339(c.time),
        }
    for type_, cond in latest.items():
        if type_ == record.phase.value or type_ == "Created":
            cond["status"] = "True"
    return list(latest.values())


def experiment_status(
    record: ExperimentRecord, objective: ObjectiveSpec, trials: list[TrialRecord]
) -> dict[str, Any]:
    return status_of(record, optimal_trial(objective, trials), [(t.name, t.phase) for t in trials])


def status_of(
    record: ExperimentRecord,
    optimal: dict[str, Any],
    phases: Sequence[tuple[str, TrialPhase]],
) -> dict[str, Any]:
    """The status from each trial's (name, phase) in creation order and the optimal trial:
    what a reader needs without loading whole trial records."""
    status: dict[str, Any] = {
        "conditions": conditions(record),
        "startTime": rfc3339(record.started_at),
        "completionTime": rfc3339(record.completed_at),
        "currentOptimalTrial": optimal,
        "trials": len(phases),
    }
    lists: dict[TrialPhase, list[str]] = {phase: [] for phase in _LISTS}
    for name, phase in phases:
        lists[phase].append(name)
    for phase, key in _COUNTS.items():
        status[key] = len(lists[phase])
    for phase, key in _LISTS.items():
        if lists[phase]:
            status[key] = lists[phase]
    return {k: v for k, v in status.items() if v is not None}


def experiment_object(
    record: ExperimentRecord, objective: ObjectiveSpec, trials: list[TrialRecord]
) -> dict[str, Any]:
    return object_of(record, experiment_status(record, objective, trials))


def object_of(record: ExperimentRecord, status: dict[str, Any]) -> dict[str, Any]:
    """The stored spec with ``metadata.uid``/``creationTimestamp`` and ``status``."""
    obj = dict(record.spec)
    obj["metadata"] = {
        **obj.get("metadata", {}),
        "uid": record.uid,
        "creationTimestamp": rfc3339(record.created_at),
    }
    obj["status"] = status
    return obj


def trial_object(experiment: ExperimentRecord, trial: TrialRecord) -> dict[str, Any]:
    """A Katib Trial object (kubeflow.org/v1beta1 kind Trial)."""
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Trial",
        "metadata": {
            "name": trial.name,
            "namespace": experiment.namespace,
            "labels": {"katib.kubeflow.org/experiment": experiment.name},
            "creationTimestamp": rfc3339(trial.created_at),
        },
        "spec": {
            # As Katib's Trial: the experiment's objective (its metricStrategies say how
            # each metric's observations reduce to the one value shown).
            "objective": (experiment.spec.get("spec") or {}).get("objective", {}),
            "parameterAssignments": [
                {"name": k, "value": str(v)} for k, v in trial.assignments.items()
            ],
        },
        "status": {
            "conditions": [
                {
                    "type": trial.phase.value,
                    "status": "True",
                    "reason": trial.reason,
                    "message": trial.message,
                }
            ],
            "startTime": rfc3339(trial.started_at),
            "completionTime": rfc3339(trial.completed_at),
            "observation": {"metrics": trial_metrics(trial)},
        },
    }
