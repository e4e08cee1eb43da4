"""What the tracker queues: one immutable record per call, stamped with the call's time.

Times are taken when the controller calls, not when the background writer gets to the
record, so run start/end times are right however far behind the writer is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tuner.tracking.layout import RunsLayout
from tuner.types import ExperimentPhase, Observation, TrialPhase

if TYPE_CHECKING:
    from tuner.spec.models import Experiment


@dataclass(frozen=True, slots=True)
class ExperimentStarted:
    # A tuner experiment, or any other parent-with-nested-runs object (a pipeline run).
    experiment: Experiment | RunsLayout
    uid: str
    time_ms: int


@dataclass(frozen=True, slots=True)
class TrialStarted:
    trial_name: str
    assignments: dict[str, float | int | str]
    time_ms: int
    # Tags of this nested run beyond the layout's (a pipeline task's component, cached).
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ObservationsLogged:
    trial_name: str
    observations: tuple[Observation, ...]
    time_ms: int


@dataclass(frozen=True, slots=True)
class TrialEnded:
    trial_name: str
    phase: TrialPhase
    metrics: dict[str, float]
    trial_dir: Path | None
    time_ms: int
    # artifact file name -> text, written into the run's artifacts with the trial's files
    texts: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExperimentEnded:
    phase: ExperimentPhase
    reason: str
    best_trial_name: str | None
    best_metrics: dict[str, float]
    time_ms: int


Event = ExperimentStarted | TrialStarted | ObservationsLogged | TrialEnded | ExperimentEnded
