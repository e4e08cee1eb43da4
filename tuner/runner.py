"""Compose a controller from settings: store, backend, suggestion client, MLflow tracker."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

from tuner.backends.base import TrialBackend
from tuner.controller import ExperimentController, Observer
from tuner.settings import TunerSettings
from tuner.spec.models import Experiment
from tuner.store import ExperimentRecord, Store
from tuner.suggestion import HttpSuggestionClient, InProcessSuggestionClient, SuggestionClient
from tuner.tracking import MlflowTracker, NullTracker, Tracker


@dataclass(slots=True)
class RunOutcome:
    record: ExperimentRecord
    tracking: str | None
    # True when the store already had this experiment finished: nothing was run.
    already_finished: bool = False


def make_suggestion_client(url: str | None, store: Store, namespace: str) -> SuggestionClient:
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

    return HttpSuggestionClient(url, history=history)


@contextlib.contextmanager
def _interrupts_stop(controller: ExperimentController) -> Iterator[None]:
    """SIGINT/SIGTERM ask the controller to stop cleanly (trials killed, state kept)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        controller.stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, prev in previous.items():
            signal.signal(sig, prev)


def run_experiment(
    experiment: Experiment,
    *,
    settings: TunerSettings | None = None,
    backend: TrialBackend | None = None,
    backend_kind: str = "local",
    suggestion_url: str | None = None,
    track: bool = True,
    observer: Observer | None = None,
    on_controller: Callable[[ExperimentController], None] | None = None,
    trial_deadline_seconds: float | None = None,
) -> RunOutcome:
    """Run (or resume) ``experiment`` in the foreground until it finishes or is interrupted."""
    settings = settings or TunerSettings()
    settings.ensure_home()
    store = Store(settings.store_url)
    if backend is None:
        from tuner.backends.local import LocalBackend

        backend = LocalBackend()
    tracker: Tracker = (
        MlflowTracker(settings.tracking_uri, artifact_root=settings.home / "mlartifacts")
        if track
        else NullTracker()
    )
    suggestion = make_suggestion_client(suggestion_url, store, experiment.metadata.namespace)
    controller = ExperimentController(
        experiment,
        store=store,
        backend=backend,
        suggestion=suggestion,
        tracker=tracker,
        home=settings.home,
        backend_kind=backend_kind,
        observer=observer,
        trial_deadline_seconds=trial_deadline_seconds,
    )
    if on_controller is not None:
        on_controller(controller)
    try:
        with _interrupts_stop(controller):
            record = controller.run()
    finally:
        backend.close()
        tracker.close()
        store.close()
    if controller.already_finished:
        return RunOutcome(record=record, tracking=None, already_finished=True)
    return RunOutcome(record=record, tracking=tracker.describe() if track else None)
