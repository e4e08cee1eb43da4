"""An experiment driven by someone else's loop, recorded in hyperflow's store.

Ray Tune's ``Tuner.fit()`` decides when trials start and end; :class:`ExperimentRecorder`
writes what it decided through the same :class:`~tuner.store.Store` calls the controller
makes (experiment row and conditions, trial rows, observations, the claim), so the
experiment, its trials, their parameters, status and metrics show in ``hyperflow
experiment get/trials``, the API and the UI as any other. No schema of its own.

A trial's value is reduced from its observations as the controller does
(:func:`tuner.results.objective_value` with the objective's ``metricStrategies``), so
what the store shows as a trial's objective is what the suggestion service was told.
Not thread-safe: Ray Tune calls a searcher from its one driver thread.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tuner.results import objective_value, summarize
from tuner.types import ExperimentPhase, ExperimentReason, Observation, TrialPhase, TrialResult

if TYPE_CHECKING:
    from tuner.settings import TunerSettings
    from tuner.spec.models import Experiment
    from tuner.store import ExperimentRecord, Store, TrialRecord


class RecordConflict(RuntimeError):
    """The store already has a finished experiment of that name (``str()`` says which)."""


@dataclass(slots=True)
class _Trial:
    record: TrialRecord
    observations: list[Observation] = field(default_factory=list)


class ExperimentRecorder:
    """Writes one experiment's life to the store (module docstring).

    ``backend``: the name recorded with the experiment (``hyperflow experiment get``
    shows it), e.g. ``ray-tune``. ``settings``: ``HYPERFLOW_HOME`` and the store's URL
    (default: from the environment, as the CLI reads them). ``store``: an open store;
    the recorder's own (from ``settings``) otherwise, closed by :meth:`close`.
    """

    def __init__(
        self,
        experiment: Experiment,
        *,
        backend: str,
        store: Store | None = None,
        settings: TunerSettings | None = None,
    ) -> None:
        self.experiment = experiment
        self.backend = backend
        if settings is None:
            from tuner.settings import TunerSettings

            settings = TunerSettings()
        self._home = settings.home
        self._own_store = store is None
        if store is None:
            from tuner.store import Store

            settings.ensure_home()
            store = Store(settings.store_url)
        self.store = store
        self.record: ExperimentRecord | None = None
        self._trials: dict[str, _Trial] = {}
        self._pid = os.getpid()
        self._renew_at = 0.0

    # -- the experiment ---------------------------------------------------------------

    def open(self, *, resume: bool) -> ExperimentRecord:
        """Create the experiment (or, with ``resume``, take up the stored one), claim it
        for this process and mark it Running.

        Without ``resume`` a stored experiment of the same name that has finished is a
        :class:`RecordConflict` (Katib keeps a finished experiment as it is); an
        unfinished one (a run that was interrupted) is taken up.
        """
        from tuner.store import ExperimentExists

        md = self.experiment.metadata
        record = self.store.get_experiment(md.namespace, md.name)
        if record is None:
            try:
                record = self.store.create_experiment(
                    md.namespace, md.name, self.experiment.to_dict(), None, self.backend
                )
            except ExperimentExists:
                record = self.store.get_experiment(md.namespace, md.name)
                assert record is not None
        elif record.phase.finished and not resume:
            raise RecordConflict(
                f"experiment {md.namespace}/{md.name} already ran to the end "
                f"({record.phase.value}) in the store; give the searcher another name= "
                "or delete it (hyperflow experiment delete)"
            )
        self.store.claim(record.uid, self._pid)
        self.record = record
        for trial in self.store.trials(record.uid):
            self._trials[trial.name] = _Trial(trial, self.store.observations(trial.id))
        if record.phase.finished:
            self.store.set_experiment_phase(
                record.uid,
                ExperimentPhase.RESTARTING,
                "ExperimentRestarting",
                "Experiment is restarting: Ray Tune restored it",
            )
        self.store.set_experiment_phase(
            record.uid,
            ExperimentPhase.RUNNING,
            ExperimentReason.RUNNING.value,
            "Experiment is running",
        )
        return record

    def complete(self, reason: ExperimentReason, message: str) -> ExperimentRecord:
        """End the experiment: Succeeded with ``reason``, or Failed when no trial succeeded
        (as the controller: a failure is never reported as success). Releases the claim."""
        record = self._opened()
        succeeded = [t for t in self._trials.values() if t.record.phase is TrialPhase.SUCCEEDED]
        if succeeded:
            self.store.set_experiment_phase(
                record.uid, ExperimentPhase.SUCCEEDED, reason.value, message
            )
        else:
            self.store.set_experiment_phase(
                record.uid,
                ExperimentPhase.FAILED,
                ExperimentReason.FAILED.value,
                "Experiment has failed because no trial succeeded",
            )
        self.store.release(record.uid, self._pid)
        return self.store.get_experiment_by_uid(record.uid)

    def close(self) -> None:
        """Let go of the experiment (still running: a restored run takes it up again)."""
        if self.record is not None:
            self.store.release(self.record.uid, self._pid)
        if self._own_store:
            self.store.close()

    # -- trials -------------------------------------------------------------------------

    def trial_started(self, name: str, assignments: dict[str, float | int | str]) -> None:
        """A new trial, Running (Tune starts it as soon as the searcher suggested it)."""
        from tuner.controller import experiment_dir

        record = self._opened()
        # Where a trial's files would be (the log and artifacts routes look there; Ray
        # Tune keeps them in its own storage_path).
        folder = experiment_dir(self._home, self.experiment) / name
        trial = self.store.add_trial(
            record.uid,
            name,
            len(self._trials),
            dict(assignments),
            str(folder),
            secrets.token_hex(16),
        )
        self.store.set_trial_phase(trial.id, TrialPhase.RUNNING, "TrialRunning", "Trial is running")
        trial.phase = TrialPhase.RUNNING
        self._trials[name] = _Trial(trial)

    def trial_restarted(self, name: str, kept: list[Observation]) -> None:
        """The trial runs again (Ray Tune restored it): its observations become ``kept``
        (what it had reported up to the point it resumes from)."""
        trial = self._trials[name]
        self.store.reset_trial_observations(trial.record.id)
        self.store.add_observations(trial.record.id, kept, collected=True)
        trial.observations = list(kept)
        self.store.set_trial_phase(
            trial.record.id,
            TrialPhase.RUNNING,
            "TrialRunning",
            "Trial is running again: Ray Tune restored the experiment",
        )
        trial.record.phase = TrialPhase.RUNNING

    def observe(self, name: str, observations: list[Observation]) -> None:
        """Observations the trial reported (committed before they are told onwards)."""
        self._opened()
        trial = self._trials[name]
        if observations:
            self.store.add_observations(trial.record.id, observations, collected=True)
            trial.observations.extend(observations)

    def trial_ended(self, name: str, *, error: str | None) -> TrialResult:
        """The trial's end from its observations (``error``: why it failed), stored; the
        result to tell the suggestion service."""
        self._opened()
        trial = self._trials[name]
        objective = self.experiment.spec.objective
        summaries = summarize(trial.observations)
        value = objective_value(objective, summaries)
        if error is not None:
            phase, reason, message = TrialPhase.FAILED, "TrialFailed", f"Trial has failed: {error}"
        elif value is None:
            phase, reason = TrialPhase.METRICS_UNAVAILABLE, "TrialMetricsUnavailable"
            message = (
                f"Metrics are not available: no {objective.objective_metric_name!r} was reported"
            )
        else:
            phase, reason, message = TrialPhase.SUCCEEDED, "TrialSucceeded", "Trial has succeeded"
        self.store.set_trial_phase(
            trial.record.id,
            phase,
            reason,
            message,
            metrics={n: s.to_dict() for n, s in summaries.items()},
            objective_value=value,
        )
        trial.record.phase = phase
        trial.record.objective_value = value
        trial.record.completed_at = time.time()
        steps = [o for o in trial.observations if o.name == objective.objective_metric_name]
        return TrialResult(
            trial_name=name,
            assignments=dict(trial.record.assignments),
            phase=phase,
            objective_value=value,
            intermediate=[
                (o.step if o.step is not None else i, o.value) for i, o in enumerate(steps)
            ],
        )

    def completed(self) -> int:
        """How many trials have ended."""
        return sum(1 for t in self._trials.values() if t.record.phase.finished)

    def _opened(self) -> ExperimentRecord:
        assert self.record is not None, "ExperimentRecorder.open() first"
        now = time.monotonic()
        if now >= self._renew_at:  # the claim's heartbeat, as a controller renews it
            self._renew_at = now + self.store.claim_lease / 3
            self.store.renew(self.record.uid, self._pid)
        return self.record
