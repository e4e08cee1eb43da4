"""The controllers the control plane owns: one thread per running experiment.

Each experiment the server runs gets what ``experiment run`` composes (a backend of
``settings.backend``: local processes by default, or Ray tasks; the in-process suggestion service, an MLflow tracker), plus the server's trial
slots and its push route, so the guarantees are the same: every change is committed
before it is acted on, and a server killed with SIGKILL resumes each experiment it was
running on its next start (trials still running are adopted, none runs twice).

Stopping the server detaches the controllers: running trials go on and are adopted by
the next start, as after a crash. Deleting an experiment stops its controller and kills
its trials.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyperflow.handlers.events import ADDED, MODIFIED, EventBus
from tuner.controller import ExperimentController, Snapshot
from tuner.scheduling import TrialSlots
from tuner.settings import TunerSettings
from tuner.spec.models import Experiment
from tuner.store import ExperimentRecord, Store
from tuner.store.queries import owned_experiments
from tuner.suggestion import InProcessSuggestionClient, SuggestionClient
from tuner.suggestion.base import Suggestion
from tuner.tracking import MlflowTracker, NullTracker, Tracker
from tuner.types import ExperimentPhase, TrialPhase, TrialResult

log = logging.getLogger(__name__)

OWNER = "server"

SuggestTimer = Callable[[float], None]


class TimedSuggestions(SuggestionClient):
    """Delegates to ``inner``; reports how long each ``suggest`` took (for /metrics)."""

    def __init__(self, inner: SuggestionClient, observe: SuggestTimer) -> None:
        self.inner = inner
        self.observe = observe

    def restore(self, experiment: Experiment, trials: Sequence[TrialResult]) -> None:
        self.inner.restore(experiment, trials)

    def suggest(self, experiment: Experiment, count: int) -> list[Suggestion]:
        start = time.perf_counter()
        try:
            return self.inner.suggest(experiment, count)
        finally:
            self.observe(time.perf_counter() - start)

    def report(self, experiment: Experiment, result: TrialResult) -> None:
        self.inner.report(experiment, result)

    def report_intermediate(
        self, experiment: Experiment, trial_name: str, step: int, value: float
    ) -> bool:
        return self.inner.report_intermediate(experiment, trial_name, step, value)

    def close(self, namespace: str, name: str) -> None:
        self.inner.close(namespace, name)


@dataclass
class _Running:
    controller: ExperimentController
    thread: threading.Thread
    stopped: threading.Event = field(default_factory=threading.Event)
    detached: bool = False


class _Events:
    """Turns controller snapshots into events: the experiment's phase and counts, each
    trial created, queued, started and finished. Looks only at trials new or unfinished
    since the last snapshot, so a change costs O(active trials), not O(all trials)."""

    def __init__(self, bus: EventBus, namespace: str, name: str) -> None:
        self.bus = bus
        self.namespace = namespace
        self.name = name
        self.seen: dict[str, tuple[TrialPhase, str]] = {}
        self.unfinished: set[str] = set()
        self.count = 0
        self.experiment: tuple[str, str] | None = None

    def __call__(self, snap: Snapshot) -> None:
        owner = f"experiments/{self.name}"
        changed_trials = False
        candidates = [t for t in snap.trials[self.count :]]
        candidates += [t for t in snap.trials[: self.count] if t.name in self.unfinished]
        self.count = len(snap.trials)
        for t in candidates:
            state = (t.phase, t.reason)
            before = self.seen.get(t.name)
            if before == state:
                continue
            self.seen[t.name] = state
            if t.phase.finished:
                self.unfinished.discard(t.name)
            else:
                self.unfinished.add(t.name)
            changed_trials = True
            status: dict[str, Any] = {"phase": t.phase.value}
            if t.objective_value is not None:
                status["objectiveValue"] = t.objective_value
            self.bus.publish(
                ADDED if before is None else MODIFIED,
                "Trial",
                self.namespace,
                t.name,
                owner=owner,
                reason=t.reason,
                message=t.message,
                status=status,
            )
        record = snap.experiment
        phase = (record.phase.value, record.reason)
        if phase != self.experiment or changed_trials:
            self.experiment = phase
            self.bus.publish(
                MODIFIED,
                "Experiment",
                self.namespace,
                self.name,
                reason=record.reason,
                message=record.message,
                status={
                    "phase": record.phase.value,
                    "trials": len(snap.trials),
                    "trialsRunning": sum(
                        1 for n in self.unfinished if self.seen[n][0] is TrialPhase.RUNNING
                    ),
                    "currentOptimalTrial": snap.best_trial or "",
                },
            )


class ExperimentManager:
    def __init__(
        self,
        store: Store,
        settings: TunerSettings,
        *,
        events: EventBus,
        slots: TrialSlots | None,
        push_base_url: Callable[[], str],
        track: bool = True,
        observe_suggest: SuggestTimer | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.events = events
        self.slots = slots
        self.push_base_url = push_base_url
        self.track = track
        self.observe_suggest = observe_suggest or (lambda _s: None)
        self._running: dict[tuple[str, str], _Running] = {}
        self._lock = threading.Lock()
        self._closed = False
        self.resumed: list[ExperimentRecord] = []

    # -- lifecycle -------------------------------------------------------------------

    def resume_all(self) -> list[ExperimentRecord]:
        """Start a controller for every unfinished experiment this server owns."""
        records = owned_experiments(self.store, OWNER)
        for record in records:
            self.start(record)
        self.resumed = records
        return records

    def take_over_orphans(self) -> list[ExperimentRecord]:
        """Start a controller for every unfinished experiment of the control plane that no
        live controller runs (the server replica running it died, or stopped), as
        :meth:`Store.claim` judges a claim: another host's after its heartbeat is
        ``claim_lease`` seconds old. One never claimed is left alone for that long too (its
        replica may be about to start it). Two replicas taking the same one over meet at
        the claim's compare-and-set: one runs it."""
        now = self.store.clock()
        lease = self.store.claim_lease
        taken = []
        for record in owned_experiments(self.store, OWNER):
            if self.is_running(record.namespace, record.name):
                continue
            if record.controller_pid is None:
                if now - (record.controller_heartbeat or record.created_at) < lease:
                    continue
            elif self.store.claim_alive(
                record.controller_pid, record.controller_host, record.controller_heartbeat
            ):
                continue
            log.info("taking over experiment %s/%s", record.namespace, record.name)
            self.start(record)
            taken.append(record)
        return taken

    def shutdown(self, timeout: float = 30.0) -> None:
        """Detach every controller (trials keep running) and wait for their loops."""
        with self._lock:
            self._closed = True
            running = list(self._running.values())
        for r in running:
            r.detached = True
            r.controller.detach()
        deadline = time.monotonic() + timeout
        for r in running:
            r.thread.join(max(0.0, deadline - time.monotonic()))

    def stop_all(self, timeout: float = 60.0) -> None:
        """Stop every controller, killing its trials (tests; not a server shutdown)."""
        with self._lock:
            keys = list(self._running)
        for namespace, name in keys:
            self.stop(namespace, name, timeout)

    # -- one experiment --------------------------------------------------------------

    def start(self, record: ExperimentRecord) -> None:
        key = (record.namespace, record.name)
        experiment = Experiment.model_validate(record.spec)
        experiment.base_dir = Path(record.base_dir) if record.base_dir else None
        from tuner.backends import BackendError, create_backend

        try:
            backend = create_backend(self.settings.backend, self.settings, experiment=experiment)
        except BackendError as exc:
            # It can never run on this server's backend: failed, saying why (not a 500).
            log.warning("experiment %s/%s: %s", record.namespace, record.name, exc)
            self.store.set_experiment_phase(
                record.uid,
                ExperimentPhase.FAILED,
                "ExperimentFailed",
                f"backend {self.settings.backend}: {str(exc).removeprefix('backend: ')}",
            )
            return
        tracker: Tracker = (
            MlflowTracker(
                self.settings.tracking_uri, artifact_root=self.settings.home / "mlartifacts"
            )
            if self.track
            else NullTracker()
        )
        base = self.push_base_url()
        controller = ExperimentController(
            experiment,
            store=self.store,
            backend=backend,
            suggestion=TimedSuggestions(InProcessSuggestionClient(), self.observe_suggest),
            tracker=tracker,
            home=self.settings.home,
            observer=_Events(self.events, record.namespace, record.name),
            slots=self.slots,
            push_url=f"{base}/apis/v1/namespaces/{record.namespace}/experiments/{record.name}",
        )
        with self._lock:
            if self._closed:
                return
            if key in self._running:
                raise RuntimeError(f"experiment {key[0]}/{key[1]} already has a controller")
            thread = threading.Thread(
                target=self._run,
                args=(key, controller, backend, tracker),
                name=f"experiment-{record.namespace}-{record.name}",
                daemon=True,
            )
            running = _Running(controller, thread)
            self._running[key] = running
        self.events.publish(
            ADDED if record.phase.value == "Created" else MODIFIED,
            "Experiment",
            record.namespace,
            record.name,
            reason=record.reason,
            message=record.message,
            status={"phase": record.phase.value},
        )
        thread.start()

    def controller(self, namespace: str, name: str) -> ExperimentController | None:
        with self._lock:
            running = self._running.get((namespace, name))
        return None if running is None else running.controller

    def running_count(self) -> int:
        with self._lock:
            return len(self._running)

    def is_running(self, namespace: str, name: str) -> bool:
        with self._lock:
            return (namespace, name) in self._running

    def stop(self, namespace: str, name: str, timeout: float = 60.0) -> bool:
        """Stop the experiment's controller, killing its trials; True once it has stopped
        (False: it had none, or it did not stop within ``timeout``)."""
        with self._lock:
            running = self._running.get((namespace, name))
        if running is None:
            return False
        running.controller.stop()
        return running.stopped.wait(timeout)

    def _run(
        self,
        key: tuple[str, str],
        controller: ExperimentController,
        backend: object,
        tracker: Tracker,
    ) -> None:
        with self._lock:
            running = self._running[key]
        try:
            controller.run()
        except Exception:
            log.exception("the controller of experiment %s/%s failed", *key)
            self.events.publish(
                MODIFIED,
                "Experiment",
                *key,
                reason="ControllerError",
                message="the experiment's controller stopped with an error; see the server log",
            )
        finally:
            if not (running.detached or controller.detached):
                backend.close()  # type: ignore[attr-defined]
            with self._lock:
                if self._running.get(key) is running:
                    del self._running[key]
            running.stopped.set()
            tracker.close(timeout=60)
