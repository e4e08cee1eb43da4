"""The tracker interface the controller logs through, and the tracker that logs nothing."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tuner.spec.models import Experiment
from tuner.types import ExperimentPhase, Observation, TrialPhase


@dataclass(frozen=True, slots=True)
class Unwritten:
    """What a tracker could not write before it was closed, and why."""

    reason: str
    trials: tuple[str, ...] = ()  # trials whose run is missing data (or is missing)
    experiment_end: bool = False  # the parent run's end (status, best trial) is missing
    events: int = 0

    def describe(self, limit: int = 5) -> str:
        parts = []
        if self.trials:
            shown = ", ".join(self.trials[:limit])
            more = f" and {len(self.trials) - limit} more" if len(self.trials) > limit else ""
            parts.append(f"the runs of {len(self.trials)} trial(s) ({shown}{more})")
        if self.experiment_end:
            parts.append("the experiment run's end (status, best trial)")
        if not parts:
            parts.append(f"{self.events} update(s) of the experiment's run")
        return f"{' and '.join(parts)} not written ({self.reason})"


class Tracker(ABC):
    """Where an experiment's runs, parameters, metrics and artifacts are recorded.

    Contract every implementation keeps:

    * The logging methods (``start_experiment`` ... ``end_experiment``) return at once: they
      never wait on I/O, never raise because the tracking backend is slow, down or rejects
      data (such problems are logged with :mod:`logging`), and may be called from any thread.
    * Calls are applied in the order they were made. ``start_experiment`` comes first; one
      tracker records one experiment.
    * Nothing is dropped silently: :meth:`flush` waits until everything logged before it was
      written, :meth:`close` flushes (for at most its ``timeout``) and releases the tracker,
      and what it could not write is logged as an error and returned by :meth:`unwritten`.
      Data the backend rejects as invalid (a parameter whose value changed, a run deleted
      by a user) is logged as an error and skipped rather than retried forever.
    * Re-sending is idempotent: a run whose final status is written is complete and is
      left as it is; ``started_at``/``ended_at`` give a run written late its real times.
    * Resuming is idempotent: a new tracker given the same ``uid`` (after a controller
      restart) continues the same runs; ``start_trial`` for a trial that already has a run
      continues that run instead of creating a second one.
    * ``trial_dir`` passed to :meth:`end_trial` must stay on disk until the next
      :meth:`flush` returns: files are read when they are written, not when they are queued.
    """

    @abstractmethod
    def start_experiment(self, experiment: Experiment, uid: str) -> None:
        """Begin (or, for a known ``uid``, resume) tracking ``experiment``.

        ``uid`` is the store's unique id of this experiment, stable across restarts.
        """

    @abstractmethod
    def start_trial(
        self,
        trial_name: str,
        assignments: dict[str, float | int | str],
        started_at: float | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        """A trial started with these parameter assignments (called again on resume);
        ``tags`` are added to its nested run.

        ``started_at`` (seconds since the epoch): when it started, if not now (a run
        written late, when an experiment is reconciled, gets its real times).
        """

    @abstractmethod
    def log_observations(self, trial_name: str, observations: Sequence[Observation]) -> None:
        """Metric values a running trial reported; steps and timestamps are kept."""

    @abstractmethod
    def end_trial(
        self,
        trial_name: str,
        phase: TrialPhase,
        metrics: dict[str, float],
        trial_dir: Path | None,
        ended_at: float | None = None,
    ) -> None:
        """A trial finished in ``phase`` (at ``ended_at``, if not now).

        ``metrics`` holds each metric's final value (after metricStrategies); ``trial_dir``
        holds ``trial.log`` and possibly ``artifacts/``, both recorded with the trial.
        """

    @abstractmethod
    def end_experiment(
        self,
        phase: ExperimentPhase,
        reason: str,
        best_trial_name: str | None,
        best_metrics: dict[str, float],
        ended_at: float | None = None,
    ) -> None:
        """The experiment finished; ``best_metrics`` are the best trial's final values."""

    @abstractmethod
    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything logged before this call is written.

        Returns False if ``timeout`` (seconds) passed first; the data stays queued.
        """

    @abstractmethod
    def close(self, timeout: float | None = None) -> None:
        """Flush (waiting at most ``timeout``), then stop. Later calls are ignored.

        Whatever could not be written within ``timeout`` is reported as an error log.
        Idempotent.
        """

    @abstractmethod
    def describe(self) -> str:
        """One line for people: where this experiment's runs are (call after :meth:`flush`)."""

    def run_id(self, trial_name: str | None = None) -> str | None:
        """The backend's id of a trial's run (``None``: the experiment's run), once written."""
        return None

    def unwritten(self) -> Unwritten | None:
        """After :meth:`close`: what could not be written, or None if everything was."""
        return None

    def abort(self, reason: str = "stopped") -> None:
        """Stop at once, writing nothing more (what is left shows in :meth:`unwritten`)."""
        self.close(timeout=0)

    def __enter__(self) -> Tracker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class NullTracker(Tracker):
    """Records nothing: tracking switched off."""

    def start_experiment(self, experiment: Experiment, uid: str) -> None:
        pass

    def start_trial(
        self,
        trial_name: str,
        assignments: dict[str, float | int | str],
        started_at: float | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        pass

    def log_observations(self, trial_name: str, observations: Sequence[Observation]) -> None:
        pass

    def end_trial(
        self,
        trial_name: str,
        phase: TrialPhase,
        metrics: dict[str, float],
        trial_dir: Path | None,
        ended_at: float | None = None,
    ) -> None:
        pass

    def end_experiment(
        self,
        phase: ExperimentPhase,
        reason: str,
        best_trial_name: str | None,
        best_metrics: dict[str, float],
        ended_at: float | None = None,
    ) -> None:
        pass

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self, timeout: float | None = None) -> None:
        pass

    def describe(self) -> str:
        return "tracking disabled"
