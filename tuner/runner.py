"""Compose a controller from settings: store, backend, suggestion client, MLflow tracker."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.backends.base import TrialBackend
from tuner.controller import ExperimentController, Observer, experiment_dir
from tuner.interrupts import interrupts_stop
from tuner.settings import TunerSettings
from tuner.spec.models import Experiment
from tuner.store import ExperimentRecord, Store
from tuner.suggestion import HttpSuggestionClient, InProcessSuggestionClient, SuggestionClient
from tuner.tracking import MlflowTracker, NullTracker, Tracker
from tuner.tracking.base import Unwritten


@dataclass(slots=True)
class RunOutcome:
    record: ExperimentRecord
    tracking: str | None
    # True when the store already had this experiment finished: nothing was run.
    already_finished: bool = False
    # What MLflow did not get before the run ended (the drain's time limit, Ctrl-C, a
    # store that failed): written by the next run of the same experiment.
    unwritten: Unwritten | None = None
    # Ctrl-C came while waiting for MLflow at the end (the experiment itself had ended).
    interrupted: bool = False


class TrackingUnavailable(RuntimeError):
    """The MLflow tracking store cannot be used; ``str()`` is one line saying why."""


_SYNCED = ".mlflow-synced"


def _synced(folder: Path, uid: str, uri: str) -> bool:
    """Whether everything of the (finished) experiment ``uid`` is known to be in ``uri``."""
    try:
        mark = json.loads((folder / _SYNCED).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(mark, dict) and mark == {"uid": uid, "tracking_uri": uri}


def _mark_synced(folder: Path, uid: str, uri: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f"{_SYNCED}.{os.getpid()}"
    temporary.write_text(json.dumps({"uid": uid, "tracking_uri": uri}))
    temporary.replace(folder / _SYNCED)


def make_suggestion_client(
    url: str | None, store: Store, namespace: str, *, check: bool = True
) -> SuggestionClient:
    if not url:
        return InProcessSuggestionClient()

    def history(experiment_name: str) -> list[Any]:
        from tuner.types import TrialResult

        record = store.get_experiment(namespace, experiment_name)
        if record is None:
            return []
        trials = store.trials(record.uid)
        obs = store.observations_by_trial(t.id for t in trials)
        objective = record.spec["spec"]["objective"]["objectiveMetricName"]
        return [
            TrialResult(
                trial_name=t.name,
                assignments=dict(t.assignments),
                phase=t.phase,
                objective_value=t.objective_value,
                intermediate=[
                    (o.step if o.step is not None else i, o.value)
                    for i, o in enumerate(o for o in obs[t.id] if o.name == objective)
                ],
            )
            for t in trials
        ]

    client = HttpSuggestionClient(url, history=history)
    if check:
        client.check()  # ServiceError naming the URL when nothing answers there
    return client


def run_experiment(
    experiment: Experiment,
    *,
    settings: TunerSettings | None = None,
    backend: TrialBackend | None = None,
    suggestion_url: str | None = None,
    track: bool = True,
    observer: Observer | None = None,
    on_controller: Callable[[ExperimentController], None] | None = None,
    trial_deadline_seconds: float | None = None,
    on_finished: Callable[[RunOutcome], None] | None = None,
) -> RunOutcome:
    """Run (or resume) ``experiment`` in the foreground until it finishes or is interrupted.

    With ``track``, MLflow is checked first (:class:`TrackingUnavailable`, one line, before
    anything runs), an experiment that had finished is reconciled with MLflow unless the
    last run confirmed everything was written, and at the end the run waits at most
    ``settings.mlflow_drain_seconds`` for MLflow. ``backend`` runs the trials (default: a
    new one of ``settings.backend``, created only once the run starts; it is closed at the
    end). ``on_finished`` is called when the
    experiment has ended (or was interrupted), before that wait: the user sees the result
    without waiting for MLflow.
    """
    settings = settings or TunerSettings()
    settings.ensure_home()
    store = Store(settings.store_url)
    try:
        return _run(
            experiment,
            store,
            settings,
            backend,
            suggestion_url,
            track,
            observer,
            on_controller,
            trial_deadline_seconds,
            on_finished,
        )
    finally:
        store.close()


def _run(
    experiment: Experiment,
    store: Store,
    settings: TunerSettings,
    backend: TrialBackend | None,
    suggestion_url: str | None,
    track: bool,
    observer: Observer | None,
    on_controller: Callable[[ExperimentController], None] | None,
    trial_deadline_seconds: float | None,
    on_finished: Callable[[RunOutcome], None] | None,
) -> RunOutcome:
    uri = settings.tracking_uri
    folder = experiment_dir(settings.home, experiment)
    md = experiment.metadata
    existing = store.get_experiment(md.namespace, md.name)
    # A finished experiment run again with the same spec runs nothing; MLflow is needed
    # only if the last run could not confirm that it holds everything.
    settled = (
        existing is not None
        and existing.phase.finished
        and existing.spec.get("spec") == experiment.to_dict().get("spec")
        and _synced(folder, existing.uid, uri)
    )
    tracking = track and not settled
    if tracking:
        from tuner.tracking.probe import check_tracking_uri

        problem = check_tracking_uri(uri)
        if problem is not None:
            raise TrackingUnavailable(problem)
        (folder / _SYNCED).unlink(missing_ok=True)  # until this run confirms it again
    created = backend is None
    if backend is None:
        from tuner.backends import create_backend

        backend = create_backend(settings.backend, settings, experiment=experiment)
    try:
        if created and (existing is None or not existing.phase.finished):
            # What the backend boots (the local backend's reaper: an interpreter, 10-20 ms
            # here) boots while the tracker, the suggestion service and the controller are
            # set up; the controller's own prestart call then finds it running.
            backend.prestart(experiment.spec.parallel_trial_count)
        # Before the tracker and before anything is stored: an unreachable service is
        # one error, and leaves no experiment behind.
        suggestion = make_suggestion_client(
            suggestion_url,
            store,
            md.namespace,
            # A finished experiment run again as it was asks nothing (its stored result
            # is shown); one continued with a new budget does.
            check=not (
                existing is not None
                and existing.phase.finished
                and existing.spec.get("spec") == experiment.to_dict().get("spec")
            ),
        )
        tracker: Tracker = (
            MlflowTracker(uri, artifact_root=settings.home / "mlartifacts")
            if tracking
            else NullTracker()
        )
        controller = ExperimentController(
            experiment,
            store=store,
            backend=backend,
            suggestion=suggestion,
            tracker=tracker,
            home=settings.home,
            observer=observer,
            trial_deadline_seconds=trial_deadline_seconds,
        )
        if on_controller is not None:
            on_controller(controller)
    except BaseException:
        backend.close()
        raise
    try:
        with interrupts_stop(controller) as interrupts:
            record = controller.run()
            if controller.already_finished and tracking:
                controller.reconcile_tracking()
    except BaseException:
        backend.close()
        tracker.abort()
        raise
    outcome = RunOutcome(record=record, tracking=None, already_finished=controller.already_finished)
    try:
        # (In the try: a Ctrl-C while the backend closes ends the wait for MLflow too.)
        if not controller.detached:  # a claim another controller took: its trials now
            backend.close()
        if on_finished is not None:
            on_finished(outcome)
        if interrupts.late:
            raise KeyboardInterrupt
        tracker.close(timeout=settings.mlflow_drain_seconds)
    except KeyboardInterrupt:
        # Ctrl-C after the experiment ended: MLflow is not waited for any longer.
        outcome.interrupted = True
        tracker.abort("interrupted")
    if not tracking:
        return outcome
    outcome.unwritten = tracker.unwritten()
    outcome.tracking = tracker.describe()
    if outcome.unwritten is None and not outcome.interrupted and record.phase.finished:
        _mark_synced(folder, record.uid, uri)
    return outcome
