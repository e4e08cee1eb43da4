"""Domain types shared across the tuner: trial and experiment states, observations."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class TrialPhase(StrEnum):
    """Katib's Trial condition types; the last one set is the trial's phase."""

    CREATED = "Created"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    KILLED = "Killed"
    EARLY_STOPPED = "EarlyStopped"
    METRICS_UNAVAILABLE = "MetricsUnavailable"

    @property
    def finished(self) -> bool:
        return self not in (TrialPhase.CREATED, TrialPhase.RUNNING)


class ExperimentPhase(StrEnum):
    """Katib's Experiment condition types."""

    CREATED = "Created"
    RUNNING = "Running"
    RESTARTING = "Restarting"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"

    @property
    def finished(self) -> bool:
        return self in (ExperimentPhase.SUCCEEDED, ExperimentPhase.FAILED)


class ExperimentReason(StrEnum):
    """Katib's condition reasons for experiments."""

    CREATED = "ExperimentCreated"
    RUNNING = "ExperimentRunning"
    GOAL_REACHED = "ExperimentGoalReached"
    MAX_TRIALS_REACHED = "ExperimentMaxTrialsReached"
    SUGGESTION_END_REACHED = "ExperimentSuggestionEndReached"
    FAILED = "ExperimentFailed"
    KILLED = "ExperimentKilled"


@dataclass(frozen=True, slots=True)
class Observation:
    """One reported value of one metric: Katib's ``MetricLog``."""

    name: str
    value: float
    step: int | None = None
    timestamp: float = 0.0


@dataclass(slots=True)
class Assignment:
    """One parameter value of a trial, as Katib's ``ParameterAssignment`` (value kept typed)."""

    name: str
    value: float | int | str


@dataclass(slots=True)
class TrialResult:
    """What a finished trial tells the suggestion service."""

    trial_name: str
    assignments: dict[str, float | int | str]
    phase: TrialPhase
    objective_value: float | None = None
    intermediate: list[tuple[int, float]] = field(default_factory=list)
