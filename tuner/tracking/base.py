"""The tracker interface the controller logs through, and the tracker that logs nothing."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from tuner.spec.models import Experiment
from tuner.types import ExperimentPhase, Observation, TrialPhase


class Tracker(ABC):
    """Where an experiment's runs, parameters, metrics and artifacts are recorded.

    Contract every implementation keeps:

    * The logging methods (``start_experiment`` ... ``end_experiment``) return at once: they
      never wait on I/O, never raise because the tracking backend is slow, down or rejects
      data (such problems are logged with :mod:`logging`), and may be called from any thread.
    * Calls are applied in the order they were made. ``start_experiment`` comes first; one
      tracker records one experiment.
    * Nothing is dropped silently: :meth:`flush` waits until everything logged before it was
      written, :meth:`close` flushes and releases the tracker. Data the backend rejects as
      invalid (a parameter whose value changed, a run deleted by a user) is logged as an
      error and skipped rather than retried forever.
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
    def start_trial(self, trial_name: str, assignments: dict[str, float | int | str]) -> None:
        """A trial started with these parameter assignments (called again on resume)."""

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
    ) -> None:
        """A trial finished in ``phase``.

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

    def start_trial(self, trial_name: str, assignments: dict[str, float | int | str]) -> None:
        pass

    def log_observations(self, trial_name: str, observations: Sequence[Observation]) -> None:
        pass

    def end_trial(
        self,
        trial_name: str,
        phase: TrialPhase,
        metrics: dict[str, float],
        trial_dir: Path | None,
    ) -> None:
        pass

    def end_experiment(
        self,
        phase: ExperimentPhase,
        reason: str,
        best_trial_name: str | None,
        best_metrics: dict[str, float],
    ) -> None:
        pass

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self, timeout: float | None = None) -> None:
        pass

    def describe(self) -> str:
        return "tracking disabled"
