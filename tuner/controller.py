"""The experiment controller: Katib's reconcile loop, run in one process.

Each turn of the loop: collect new observations from running trials, apply the
early-stopping rule, settle finished trials (Succeeded / Failed / MetricsUnavailable /
EarlyStopped), decide whether the experiment is over (goal reached, max trials reached,
too many failures, suggestions exhausted), and otherwise ask for new assignments and
launch trials up to ``parallelTrialCount``.

Crash safety: every state change is committed to the store *before* it is acted on. A
trial row exists (phase Created, with its assignments) before its process is launched;
observations are committed before they are logged or acknowledged. A controller killed
with SIGKILL and started again on the same experiment re-attaches to trials still running
(``TrialBackend.adopt``), collects only observations it had not stored, re-launches trials
that were created but never started, and rebuilds the suggestion service from the store.

Group commit: a turn of the loop puts all its changes (observations, trials that ended,
new trials) into one :class:`~tuner.store.batch.Batch` and commits it in one transaction;
what acts on them (launching, killing, tracking, events, freeing slots) is queued and
runs after that commit. The suggestion service is told about results before the commit,
so that the same turn's suggestions take them into account: its state is never a record
(it is rebuilt from the store on every start). A launched trial's Running mark is the one
change nothing acts on (resuming asks the backend what was started); it is committed with
the next turn's changes, or on its own after ``_LAZY_COMMIT`` seconds.

A trial on deck: for an algorithm whose suggestions ignore results (random, grid, sobol)
and while trials are short (under ``_DECK_BELOW``), one trial more than the free slots is
created and committed; it waits, Created, and starts as soon as a running trial ends, in
the turn that sees the exit and before that turn's bookkeeping (ending the trial, the
suggestion, the commit), so no slot waits for the loop. Where a trial's result can end the
experiment (an objective goal, ``maxFailedTrialCount``), it starts once the ended trial
is settled instead, and only if the experiment goes on. Elsewhere, once its row is
committed, it is also handed to the backend's ``launch_next`` (if it takes it), which
starts it as a running trial ends, with no turn of the loop in between; the turn that sees
the exit then finds it started. A handed trial is withdrawn from the backend where one on
deck is withdrawn, and when the budget is edited (fewer slots, a new maxFailedTrialCount);
one the backend had started by then is killed with the running ones (or, on an edit, runs
as launched). The local backend also takes it back itself when a trial it waits for is
killed (that trial's group may outlive the process the reaper reaps). Never more than
``parallelTrialCount`` trials run at once. A trial on deck when the experiment ends (goal,
failures, an interrupt) is withdrawn: it never started, its row is deleted and the tracker
never heard of it (it is told of a trial on deck when the trial starts). A restarted
controller starts the Created trials it finds only as slots are free.
"""

from __future__ import annotations

import functools
import hmac
import logging
import os
import queue
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuner import failures
from tuner.backends.base import TrialBackend, TrialExit, TrialRun
from tuner.earlystopping import MedianStop
from tuner.heap import frozen_heap
from tuner.results import (
    final_metrics,
    goal_reached,
    is_better,
    objective_value,
    summarize,
)
from tuner.scheduling import TrialSlots
from tuner.spec.models import Experiment, MetricsCollectorKind
from tuner.store import ExperimentExists, ExperimentRecord, Store, TrialRecord
from tuner.store.batch import Batch
from tuner.suggestion import SuggestionClient, ignores_results
from tuner.suggestion.http_client import ServiceError
from tuner.tracking import NullTracker, Tracker
from tuner.trial_template import TemplateError, active_deadline_seconds, render_trial
from tuner.types import ExperimentPhase, ExperimentReason, Observation, TrialPhase, TrialResult

log = logging.getLogger(__name__)

# A Running mark waits at most this long for other changes to share its commit.
_LAZY_COMMIT = 0.02
# A trial goes on deck (see _ask_ahead) only while trials take less than this (seconds):
# for longer ones the loop's turn between two trials does not matter.
_DECK_BELOW = 1.0
# At most this many trials are created in one turn: a huge parallelTrialCount is filled
# over several turns (a stop or a delete is heard between two of them), not by one
# suggestion call that asks for all of it.
_MOST_PER_TURN = 100

_TRIAL_REASONS = {
    TrialPhase.CREATED: "TrialCreated",
    TrialPhase.RUNNING: "TrialRunning",
    TrialPhase.SUCCEEDED: "TrialSucceeded",
    TrialPhase.FAILED: "TrialFailed",
    TrialPhase.KILLED: "TrialKilled",
    TrialPhase.EARLY_STOPPED: "TrialEarlyStopped",
    TrialPhase.METRICS_UNAVAILABLE: "TrialMetricsUnavailable",
}


# Katib's trial names are Kubernetes object names (DNS-1123 labels); here they are also
# folder names, so nothing that could climb out of the experiment's folder.
_TRIAL_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,251}[a-z0-9])?")


def experiment_dir(home: Path, experiment: Experiment) -> Path:
    """The folder of an experiment's trials (and its push URL, its MLflow sync mark)."""
    md = experiment.metadata
    return home / "experiments" / md.namespace / md.name


class ExperimentConflict(RuntimeError):
    """The store already has an experiment of that name with a spec it cannot take."""


# Katib's webhook: the spec fields a user may edit on an existing experiment.
_EDITABLE = ("parallelTrialCount", "maxTrialCount", "maxFailedTrialCount")


@dataclass(slots=True)
class TrialState:
    """The controller's in-memory view of one trial (the store is the truth)."""

    record: TrialRecord
    observations: list[Observation] = field(default_factory=list)
    objective_history: list[float] = field(default_factory=list)
    launched: bool = False
    kill_phase: TrialPhase | None = None
    kill_message: str = ""
    kill_reason: str | None = None  # the trial's condition reason, when not the phase's own
    # The tracker knows it (False for a trial on deck: it is told when the trial starts).
    tracked: bool = True
    # On deck and given to the backend's ``launch_next`` (see ``_hand_over``).
    handed: bool = False

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def phase(self) -> TrialPhase:
        return self.record.phase


@dataclass(slots=True)
class Snapshot:
    """What a progress display needs, handed to the observer after every change."""

    experiment: ExperimentRecord
    trials: list[TrialRecord]
    best_trial: str | None
    best_value: float | None


Observer = Callable[[Snapshot], None]


class ExperimentController:
    """Runs one experiment to completion (or until ``stop()``)."""

    def __init__(
        self,
        experiment: Experiment,
        *,
        store: Store,
        backend: TrialBackend,
        suggestion: SuggestionClient,
        tracker: Tracker | None = None,
        home: Path,
        observer: Observer | None = None,
        poll_interval: float = 0.05,
        trial_deadline_seconds: float | None = None,
        slots: TrialSlots | None = None,
        push_url: str | None = None,
    ) -> None:
        """``slots``: machine-wide trial slots to take before launching (the control
        plane's queue); None runs up to ``parallelTrialCount`` at once. ``push_url``: the
        API route trials ``report()`` to (``<push_url>/trials/<trial>/observations``,
        answered through :meth:`push`) instead of a push receiver of this controller's own.
        """
        self.experiment = experiment
        self.spec = experiment.spec
        self.store = store
        self.backend = backend
        self.suggestion = suggestion
        self.tracker = tracker or NullTracker()
        self.home = home
        self.observer = observer
        self.poll_interval = poll_interval
        self.trials: dict[str, TrialState] = {}
        # Kept up to date by _add_state/_set_phase, so a turn of the loop costs O(running
        # trials), not O(all trials): a 10,000-trial grid would otherwise be quadratic.
        self._running: dict[str, TrialState] = {}
        self._phase_counts: dict[TrialPhase, int] = dict.fromkeys(TrialPhase, 0)
        self._records: list[TrialRecord] = []
        self.best_trial: str | None = None
        self.best_value: float | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        # Set by ``set_trial_counts`` (any thread): the loop takes back trials handed ahead.
        self._budget_changed = threading.Event()
        self._pushed: queue.SimpleQueue[tuple[str, list[Observation]]] = queue.SimpleQueue()
        self._push_receiver: Any = None
        self._median_stop = (
            MedianStop.from_spec(self.spec.early_stopping, self.spec.objective)
            if self.spec.early_stopping is not None
            else None
        )
        self._median: float | None = None
        self._metric_names = [
            self.spec.objective.objective_metric_name,
            *self.spec.objective.additional_metric_names,
        ]
        self._suggestions_exhausted = False
        # Kubernetes' activeDeadlineSeconds of the trial Job (or the SDK's
        # trial_active_deadline_seconds): a trial running longer is killed and Failed.
        self._deadline = trial_deadline_seconds or active_deadline_seconds(experiment)
        self.record: ExperimentRecord | None = None
        self.already_finished = False
        self.slots = slots
        self.push_url = push_url
        md = experiment.metadata
        self._slot_owner = f"{md.namespace}/{md.name}"
        # Trials created and waiting for a slot, in creation order.
        self._queued: dict[str, tuple[TrialState, TrialRun]] = {}
        # Trials on deck: created (and committed) while every one of the
        # parallelTrialCount slots was taken; launched as soon as a trial ends.
        self._deck: dict[str, tuple[TrialState, TrialRun]] = {}
        self._may_ask_ahead = ignores_results(self.spec.algorithm.algorithm_name)
        self._last_run_time: float | None = None  # of the trial that ended last (seconds)
        self._detach = False
        # The turn's uncommitted changes, and what acts on them once they are committed.
        self._batch = Batch()
        self._after: list[Callable[[], None]] = []

    # -- public --------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """The experiment has ended (a signal now only cuts the bookkeeping short)."""
        return self.record is not None and self.record.phase.finished

    def stop(self) -> None:
        """Ask the loop to stop: running trials are killed, the experiment stays resumable."""
        self._stop.set()
        self._wake.set()

    @property
    def detached(self) -> bool:
        """The loop stopped (or stops) leaving its trials running: its backend must not
        be closed (a control plane shutting down, or a claim another controller took)."""
        return self._detach

    def detach(self) -> None:
        """Ask the loop to stop and leave running trials running (a control plane shutting
        down): the next controller adopts them, as after a crash. The caller must not
        ``close()`` the backend, which would kill them."""
        self._detach = True
        self.stop()

    def set_trial_counts(
        self,
        *,
        max_trial_count: int | None,
        parallel_trial_count: int,
        max_failed_trial_count: int | None,
    ) -> None:
        """Katib's editable budget, applied to the running loop (from any thread); None
        removes a limit.

        A lower ``parallelTrialCount`` kills nothing: fewer trials are started until the
        running ones are below it.
        """
        self.spec.max_trial_count = max_trial_count
        self.spec.parallel_trial_count = parallel_trial_count
        self.spec.max_failed_trial_count = max_failed_trial_count
        self._budget_changed.set()
        self._wake.set()

    def push(
        self, trial_name: str, token: str, observations: list[Observation], key: str | None
    ) -> bool:
        """Observations a trial pushed to the control plane's API route (``push_url``).

        Commits them before returning (as the push receiver does): False when ``key`` was
        stored before. Raises ``KeyError`` for a trial that is not running here and
        ``PermissionError`` for a token that is not the trial's.
        """
        state = self._running.get(trial_name)
        if state is None or not state.launched:
            raise KeyError(trial_name)
        if not hmac.compare_digest(state.record.push_token.encode(), token.encode()):
            raise PermissionError(trial_name)
        return self._on_pushed(trial_name, observations, key)

    def run(self) -> ExperimentRecord:
        # Full passes of the garbage collector scan only what the experiment allocates,
        # not the process's imported modules (180 ms a pass; tuner.heap).
        with frozen_heap():
            return self._run_to_end()

    def _run_to_end(self) -> ExperimentRecord:
        record = self._open()
        self.record = record
        if record.phase.finished:
            # Already ran to the end: the stored result is the answer (Katib keeps a
            # finished experiment as it is; delete it to run it again).
            self.already_finished = True
            return record
        # A backend with something to boot (a reaper, workers) boots it while the set-up
        # below runs, so that the first trial starts at once.
        self.backend.prestart(self.spec.parallel_trial_count)
        pid = os.getpid()
        self.store.claim(record.uid, pid)
        try:
            result = self._run(record)
        except BaseException:
            self.store.release(record.uid, pid)
            raise
        if result.phase.finished and result.controller_pid is None:
            return result  # its end released the claim (Store.set_experiment_phase)
        self.store.release(record.uid, pid)
        # Read after the release: an interrupted experiment has no controller any more.
        return self.store.get_experiment_by_uid(record.uid)

    @property
    def experiment_dir(self) -> Path:
        return experiment_dir(self.home, self.experiment)

    def reconcile_tracking(self) -> None:
        """Send a finished experiment's whole story to the tracker again (idempotent).

        For an experiment whose MLflow record may be incomplete (a run killed during the
        final drain, a tracking store that was down): missing runs get written, runs left
        RUNNING get their trial's status; complete runs are left as they are.
        """
        record = self.record
        assert record is not None and record.phase.finished
        self._load_trials(record.uid)
        self.tracker.start_experiment(self.experiment, record.uid)
        self._resend_trials()
        best_metrics: dict[str, float] = {}
        if self.best_trial is not None:
            best = self.trials[self.best_trial]
            best_metrics = final_metrics(self.spec.objective, summarize(best.observations))
        self.tracker.end_experiment(
            record.phase, record.reason, self.best_trial, best_metrics, record.completed_at
        )

    # -- set-up --------------------------------------------------------------------

    def _open(self) -> ExperimentRecord:
        md = self.experiment.metadata
        spec_dict = self.experiment.to_dict()
        existing = self.store.get_experiment(md.namespace, md.name)
        if existing is None:
            base_dir = getattr(self.experiment, "base_dir", None)
            try:
                return self.store.create_experiment(
                    md.namespace,
                    md.name,
                    spec_dict,
                    str(base_dir) if base_dir else None,
                    self.backend.kind,
                )
            except ExperimentExists:
                # Another run of the same file created it between the read and the
                # create: go on as with any stored one (its claim then says who runs it).
                existing = self.store.get_experiment(md.namespace, md.name)
                if existing is None:
                    raise
        old, new = existing.spec.get("spec") or {}, spec_dict.get("spec") or {}
        if old == new:
            return existing
        return self._edit(
            existing, spec_dict, sorted(k for k in {*old, *new} if old.get(k) != new.get(k))
        )

    def _edit(
        self, existing: ExperimentRecord, spec_dict: dict[str, Any], changed: list[str]
    ) -> ExperimentRecord:
        """A stored experiment run again with another spec: Katib's rules for editing one.

        Only ``parallelTrialCount``, ``maxTrialCount`` and ``maxFailedTrialCount`` may
        change, ``maxTrialCount`` must stay above the trials it has, and a finished
        experiment continues (``Restarting``, then ``Running``) only if it ended by
        reaching ``maxTrialCount``. Katib also requires ``resumePolicy`` LongRunning or
        FromVolume for that, because with Never its suggestion state is gone; here the
        state is rebuilt from the store, so every policy can continue.
        """
        md = self.experiment.metadata
        where = f"experiment {md.namespace}/{md.name}"
        delete = (
            f"delete it first (hyperflow experiment delete {md.name} -n {md.namespace}) or "
            "choose another metadata.name"
        )
        fixed = [k for k in changed if k not in _EDITABLE]
        if fixed:
            raise ExperimentConflict(
                f"{where} already exists with a different spec ({', '.join(f'spec.{k}' for k in fixed)}"
                f" changed; only {', '.join(f'spec.{k}' for k in _EDITABLE)} may change): {delete}"
            )
        if existing.phase.finished and not (
            existing.phase is ExperimentPhase.SUCCEEDED
            and existing.reason == ExperimentReason.MAX_TRIALS_REACHED
        ):
            raise ExperimentConflict(
                f"{where} has finished ({existing.phase.value}: {existing.reason}); only an "
                "experiment that ended by reaching maxTrialCount can be continued: " + delete
            )
        trials = len(self.store.trials(existing.uid))
        limit = (spec_dict.get("spec") or {}).get("maxTrialCount")
        if limit is not None and limit <= trials:
            raise ExperimentConflict(
                f"{where}: spec.maxTrialCount must be greater than the {trials} trials it "
                f"already has; got {limit}"
            )
        # Refuse (StoreError) before changing anything if another process runs it.
        self.store.claim(existing.uid, os.getpid())
        self.store.update_spec(existing.uid, spec_dict)
        if existing.phase.finished:
            self.store.set_experiment_phase(
                existing.uid,
                ExperimentPhase.RESTARTING,
                "ExperimentRestarting",
                "Experiment is restarted",
            )
        return self.store.get_experiment_by_uid(existing.uid)

    def _run(self, record: ExperimentRecord) -> ExperimentRecord:
        uid = record.uid
        # What cannot run at all fails now, not trial by trial.
        problems = self.backend.problems(self.experiment)
        if problems:
            self._set_experiment_phase(
                uid,
                ExperimentPhase.FAILED,
                ExperimentReason.FAILED,
                "Experiment cannot run on its backend: " + "; ".join(problems),
            )
            return self.store.get_experiment_by_uid(uid)

        self.experiment_dir.mkdir(parents=True, exist_ok=True)
        self._load_trials(uid)
        self.tracker.start_experiment(self.experiment, uid)
        self._resend_trials()
        try:
            self.suggestion.restore(
                self.experiment, [self._result(s) for s in self.trials.values()]
            )
        except ServiceError:
            # The service is down or broken: not the experiment's fault. It stays as it
            # is (resumable); the caller reports the error.
            raise
        except Exception as exc:  # an unsupported algorithm, a spec the service rejects
            self._set_experiment_phase(
                uid, ExperimentPhase.FAILED, ExperimentReason.FAILED, str(exc)
            )
            return self.store.get_experiment_by_uid(uid)

        if (
            self.spec.metrics_collector_spec.collector.kind is MetricsCollectorKind.PUSH
            and self.push_url is None
        ):
            self._start_push_receiver()
        self._set_experiment_phase(
            uid, ExperimentPhase.RUNNING, ExperimentReason.RUNNING, "Experiment is running"
        )
        self._resume_active_trials()
        self._notify()
        try:
            return self._loop(uid)
        except ServiceError:
            # The suggestion service went away mid-run: stop as an interrupt would (running
            # trials Killed, the experiment resumable), then let the caller report it.
            self._kill_active(
                TrialPhase.KILLED, "Trial is killed: the suggestion service is unavailable"
            )
            self._settle_all_killed()
            raise
        finally:
            self._shutdown()

    def _resend_trials(self) -> None:
        """Every stored trial to the tracker, with its own times.

        The tracker writes in the background: a crash may have come before a trial's run
        was (completely) written. Re-sending is idempotent: runs are found by tag, a run
        whose final status is written is complete and left alone, metrics of the same step
        and time are not logged twice.
        """
        for state in self.trials.values():
            r = state.record
            self.tracker.start_trial(state.name, r.assignments, r.started_at or r.created_at)
            # A running trial's stored observations too: the killed controller may have
            # stored them and died before its tracker wrote them, and the adopted trial's
            # collection skips what is stored (they were lost from MLflow for good).
            self.tracker.log_observations(state.name, state.observations)
            if state.phase.finished:
                summaries = summarize(state.observations)
                self.tracker.end_trial(
                    state.name,
                    state.phase,
                    final_metrics(self.spec.objective, summaries),
                    Path(r.trial_dir),
                    r.completed_at,
                )

    def _load_trials(self, uid: str) -> None:
        records = self.store.trials(uid)
        observations = self.store.observations_by_trial(r.id for r in records)
        objective = self.spec.objective
        for r in records:
            state = TrialState(record=r, observations=observations.get(r.id, []))
            state.objective_history = [
                o.value for o in state.observations if o.name == objective.objective_metric_name
            ]
            self._add_state(state)
            if (
                r.phase is TrialPhase.SUCCEEDED
                and r.objective_value is not None
                and is_better(objective, r.objective_value, self.best_value)
            ):
                self.best_value, self.best_trial = r.objective_value, r.name
        self._rebuild_median()

    def _resume_active_trials(self) -> None:
        to_launch: list[tuple[TrialState, TrialRun]] = []
        for state in list(self._running.values()):
            run = self._trial_run(state.record)
            if run is None:
                continue
            if not self.backend.reattaches:
                # The trial died with the process that ran it: run it again from
                # scratch, under the same name, dropping what its lost run had reported.
                self.store.reset_trial_observations(state.record.id)
                state.observations.clear()
                state.objective_history.clear()
                to_launch.append((state, run))
            elif state.phase is TrialPhase.RUNNING or self.backend.may_have_started(run):
                self.backend.adopt(run, skip_observations=state.record.collected_count)
                if self.slots is not None:
                    self.slots.adopt(self._slot_owner, state.name)
                state.launched = True
                if state.phase is TrialPhase.CREATED:
                    self._set_phase(state, TrialPhase.RUNNING, "Trial is running", lazy=True)
            else:
                to_launch.append((state, run))
        # Never more than parallelTrialCount at once: a trial that was on deck (or a count
        # lowered since) waits for a slot.
        held = sum(1 for state in self._running.values() if state.launched)
        for state, run in to_launch:
            if held < self.spec.parallel_trial_count:
                held += 1
                self._launch(state, run)
            else:
                self._deck[state.name] = (state, run)
        self._commit(force=True)

    def _start_push_receiver(self) -> None:
        from tuner.metrics.push import PushReceiver

        receiver = PushReceiver(self._on_pushed)
        # Trials still running from before a restart read the new address as soon as the
        # URL file is written: their tokens must be accepted from that moment on, not only
        # once _resume_active_trials gets to them (a 404 fails their report()).
        for state in self._running.values():
            receiver.register(state.name, state.record.push_token)
        receiver.start()
        url_file = self.experiment_dir / "push-url"
        receiver.write_url_file(url_file)
        self._push_receiver = receiver

    def _on_pushed(
        self, trial_name: str, observations: list[Observation], key: str | None = None
    ) -> bool:
        """Runs on the push receiver's thread: commit first, then hand to the loop.

        False (nothing stored or handed on) when the request ``key`` was stored before.
        """
        state = self.trials.get(trial_name)
        if state is None:
            raise KeyError(f"unknown trial {trial_name}")
        kept = [o for o in observations if o.name in self._metric_names]
        if not self.store.add_observations(state.record.id, kept, collected=False, request_key=key):
            return False
        self._pushed.put((trial_name, kept))
        self._wake.set()
        return True

    # -- the loop ------------------------------------------------------------------

    def _loop(self, uid: str) -> ExperimentRecord:
        idle = 0.001
        backend_wait = getattr(self.backend, "wait", None)
        renew_at = 0.0
        while True:
            if time.monotonic() >= renew_at:
                renew_at = time.monotonic() + self.store.claim_lease / 3
                self._keep_claim(uid)
            if self._budget_changed.is_set():
                # A trial handed ahead was handed for the slots and rules of then (fewer
                # slots now, or a maxFailedTrialCount whose failure must stop it).
                self._budget_changed.clear()
                self._withdraw_deck()
            changed = self._reconcile_trials()
            done = self._check_completion(uid)
            if done is not None:
                return done
            if self._stop.is_set() and self._detach:
                # One the backend started meanwhile is Running (the controller taking over
                # adopts it); one that never started stays Created (it launches it).
                self._withdraw_deck()
                self._commit(force=True)
                return self.store.get_experiment_by_uid(uid)
            if self._stop.is_set():
                self._commit(force=True)
                self._kill_active(
                    TrialPhase.KILLED, "Trial is killed: the experiment run was interrupted"
                )
                self._settle_all_killed()
                return self.store.get_experiment_by_uid(uid)
            checked = self._completion_inputs()
            launched = self._launch_queued() or self._launch_new()
            # One transaction for the whole turn, then what acts on it (launches ...).
            self._commit()
            if changed or launched:
                self._notify()
                idle = 0.001
                if backend_wait is None or self._completion_inputs() != checked:
                    continue
                # Nothing the completion check reads has changed since it ran: on to the
                # backend's wait, which returns at once if a trial has news already (a
                # turn less per trial than looking again first).
            timeout = self.poll_interval
            if self._batch.lazy_since is not None:
                timeout = min(timeout, self._batch.lazy_since + _LAZY_COMMIT - time.monotonic())
                if timeout <= 0:
                    self._commit(force=True)
                    continue
            if backend_wait is not None:
                backend_wait(timeout)
            else:
                self._wake.wait(min(idle, timeout))
                self._wake.clear()
                idle = min(idle * 2, self.poll_interval)

    def _keep_claim(self, uid: str) -> None:
        """Renew the claim's heartbeat (other hosts judge it alive by it). A claim taken
        over meanwhile (this process stalled past the lease): leave the trials to the
        controller that holds it now."""
        if not self.store.renew(uid, os.getpid()):
            log.error(
                "experiment %s: another controller took it over; leaving its trials to it",
                uid,
            )
            self.detach()

    def _commit(self, force: bool = False) -> None:
        """Commit the turn's changes, then run what acts on them (in order).

        Without ``force``, a batch of Running marks only waits for more changes (see
        ``_LAZY_COMMIT``); the actions queued run either way, as the changes they act
        on are committed.
        """
        batch = self._batch
        if batch and (force or batch.urgent):
            self._batch = Batch()
            self.store.commit(batch)
        while self._after:
            after, self._after = self._after, []
            for action in after:
                action()

    def _then(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the changes made so far are committed."""
        self._after.append(action)

    def _add_state(self, state: TrialState) -> None:
        self.trials[state.name] = state
        self._records.append(state.record)
        self._phase_counts[state.phase] += 1
        if not state.phase.finished:
            self._running[state.name] = state

    def _active(self) -> list[TrialState]:
        """Trials not finished yet (Created or Running), in creation order."""
        return list(self._running.values())

    def _take_pushed(self) -> bool:
        """Hand the observations the push receiver committed to their trials."""
        changed = False
        while True:
            try:
                trial_name, observations = self._pushed.get_nowait()
            except queue.Empty:
                return changed
            state = self.trials.get(trial_name)
            if state is not None and observations:
                self._take_observations(state, observations)
                changed = True

    def _reconcile_trials(self) -> bool:
        changed = self._take_pushed()
        now = time.time() if self._deadline is not None else 0.0
        for state in self._active():
            if not state.launched:
                continue
            if self._deadline is not None:
                self._check_deadline(state, now)
            exit_ = self.backend.poll(state.name)
            collected = self.backend.collect(state.name)
            if collected:
                kept = [o for o in collected if o.name in self._metric_names]
                self._batch.add_observations(state.record, collected, collected=True)
                self._take_observations(state, kept)
                changed = True
            if exit_ is not None:
                # Its slot is free: the trial on deck (committed in an earlier turn) starts
                # now, before this trial's bookkeeping, when no result of this trial can end
                # the experiment; otherwise once the trial is settled (below).
                early = bool(self._deck) and not self._results_may_end() and not self._ending()
                if early:
                    self._launch_deck(freed=1)
                # What the trial pushed (and was acknowledged) before it exited is queued by
                # now, possibly since the queue was last read at the top of this turn.
                self._take_pushed()
                # A final collect after the exit: the backend flushes what the trial wrote last.
                tail = self.backend.collect(state.name)
                if tail:
                    self._batch.add_observations(state.record, tail, collected=True)
                    self._take_observations(
                        state, [o for o in tail if o.name in self._metric_names]
                    )
                self._finish(state, exit_)
                changed = True
                if not early and self._deck and not self._ending():
                    self._launch_deck()
        return changed

    def _take_observations(self, state: TrialState, observations: list[Observation]) -> None:
        """Observations in the turn's batch (or committed by the push receiver)."""
        state.observations.extend(observations)
        name = state.name
        self._then(lambda: self.tracker.log_observations(name, observations))
        objective_name = self.spec.objective.objective_metric_name
        new_objective = [o for o in observations if o.name == objective_name]
        if not new_objective or state.phase.finished or state.kill_phase is not None:
            return
        for o in new_objective:
            state.objective_history.append(o.value)
            if self.spec.algorithm.algorithm_name == "hyperband":
                step = o.step if o.step is not None else len(state.objective_history) - 1
                if self.suggestion.report_intermediate(self.experiment, state.name, step, o.value):
                    self._early_stop(state, f"pruned by hyperband at step {step}")
                    return
        if self._median_stop is not None and self._median_stop.should_stop(
            state.objective_history, self._median
        ):
            self._early_stop(
                state,
                f"medianstop: {objective_name}={state.objective_history[-1]:g} is worse than "
                f"the median {self._median:g} of succeeded trials",
            )

    def _check_deadline(self, state: TrialState, now: float) -> None:
        """Kill a trial that has been running for longer than the deadline.

        As a Kubernetes Job past ``activeDeadlineSeconds`` fails with reason
        ``DeadlineExceeded``, and Katib's trial takes the Job's reason and message.
        """
        started = state.record.started_at
        if (
            self._deadline is None
            or started is None
            or state.kill_phase is not None
            or now - started < self._deadline
        ):
            return
        state.kill_phase = TrialPhase.FAILED
        state.kill_reason = "TrialFailed. Job reason: DeadlineExceeded"
        state.kill_message = (
            "Trial has failed. Job message: Job was active longer than specified deadline"
        )
        self.backend.kill(state.name)

    def _early_stop(self, state: TrialState, message: str) -> None:
        state.kill_phase, state.kill_message = TrialPhase.EARLY_STOPPED, message
        # Once the observations that decided it are committed.
        name = state.name
        self._then(lambda: self.backend.kill(name))

    def _finish(self, state: TrialState, exit_: TrialExit) -> None:
        objective = self.spec.objective
        summaries = summarize(state.observations)
        value = objective_value(objective, summaries)
        metrics = {name: s.to_dict() for name, s in summaries.items()}
        reason: str | None = None
        if state.kill_phase is not None:
            phase, message, reason = state.kill_phase, state.kill_message, state.kill_reason
        elif not exit_.succeeded:
            phase, message = TrialPhase.FAILED, f"Trial has failed: {exit_.message}"
        elif value is None:
            phase = TrialPhase.METRICS_UNAVAILABLE
            message = (
                f"Metrics are not available: no {objective.objective_metric_name!r} was reported"
            )
            trial_dir = Path(state.record.trial_dir)
            printed = failures.other_names(
                self.spec, failures.printed_metric_names(self.spec, trial_dir)
            )
            missing = failures.missing_metrics_file(self.spec, trial_dir)
            if missing is not None:
                message += f" (its metrics file {missing} does not exist)"
            elif printed:
                message += f" (it reported {', '.join(repr(n) for n in printed)})"
        else:
            phase, message = TrialPhase.SUCCEEDED, "Trial has succeeded"
        self._set_phase(
            state,
            phase,
            message,
            reason=reason,
            at=exit_.ended_at,
            exit_code=exit_.exit_code,
            metrics=metrics,
            objective_value=value,
        )
        # Told now, so that this turn's suggestions know it (see the module docstring).
        self.suggestion.report(self.experiment, self._result(state))
        started, ended_at = state.record.started_at, state.record.completed_at
        if started is not None and ended_at is not None:
            self._last_run_time = ended_at - started
        name, trial_dir, final = (
            state.name,
            Path(state.record.trial_dir),
            final_metrics(objective, summaries),
        )

        def ended() -> None:
            if self._push_receiver is not None:
                self._push_receiver.unregister(name)
            self.backend.release(name)
            self.tracker.end_trial(name, phase, final, trial_dir, ended_at)

        self._then(ended)
        if phase is TrialPhase.SUCCEEDED and value is not None:
            if is_better(objective, value, self.best_value):
                self.best_value, self.best_trial = value, state.name
            if self._median_stop is not None:
                self._median = self._median_stop.add_succeeded(state.objective_history)

    def _rebuild_median(self) -> None:
        """On start or resume: the rule's threshold from every trial that succeeded."""
        if self._median_stop is None:
            return
        self._median_stop.reset()
        for s in self.trials.values():
            if s.phase is TrialPhase.SUCCEEDED:
                self._median_stop.add_succeeded(s.objective_history)
        self._median = self._median_stop.threshold()

    def _counts(self) -> dict[TrialPhase, int]:
        return dict(self._phase_counts)

    def _check_completion(self, uid: str) -> ExperimentRecord | None:
        """Katib's order (experiment status util): goal, failures, trial budget, search end."""
        spec = self.spec
        counts = self._counts()
        active = counts[TrialPhase.CREATED] + counts[TrialPhase.RUNNING]
        completed = len(self.trials) - active
        if goal_reached(spec.objective, self.best_value):
            self._kill_active(TrialPhase.KILLED, "Trial is killed: the experiment reached its goal")
            self._settle_all_killed()
            return self._complete(
                uid,
                ExperimentPhase.SUCCEEDED,
                ExperimentReason.GOAL_REACHED,
                "Experiment has succeeded because Objective goal has reached",
            )
        if self._too_many_failures():
            # Said before the kill: the trials killed because of it are not its cause.
            why = failures.describe(spec, self._records)
            self._kill_active(TrialPhase.KILLED, "Trial is killed: the experiment failed")
            self._settle_all_killed()
            return self._complete(
                uid,
                ExperimentPhase.FAILED,
                ExperimentReason.FAILED,
                "Experiment has failed because max failed count has reached: " + why,
            )
        if spec.max_trial_count is not None and completed >= spec.max_trial_count:
            return self._complete_unless_none_succeeded(
                uid,
                ExperimentReason.MAX_TRIALS_REACHED,
                "Experiment has succeeded because max trial count has reached",
            )
        if self._suggestions_exhausted and active == 0:
            return self._complete_unless_none_succeeded(
                uid,
                ExperimentReason.SUGGESTION_END_REACHED,
                "Experiment has succeeded because suggestion service has reached the end",
            )
        return None

    def _completion_inputs(self) -> tuple[object, ...]:
        """What :meth:`_check_completion` decides on (finished counts, trial count, best
        value, suggestions' end): unchanged since it ran, it would decide the same."""
        counts = self._phase_counts
        finished = tuple(counts[phase] for phase in TrialPhase if phase.finished)
        return (finished, len(self.trials), self.best_value, self._suggestions_exhausted)

    def _complete_unless_none_succeeded(
        self, uid: str, reason: ExperimentReason, message: str
    ) -> ExperimentRecord:
        """Succeeded as Katib says, but never when not one trial succeeded.

        Katib would end such an experiment Succeeded (with maxFailedTrialCount unset): a
        failure reported as success. It ends Failed, saying what the trials did.
        """
        if self._phase_counts[TrialPhase.SUCCEEDED] == 0:
            return self._complete(
                uid,
                ExperimentPhase.FAILED,
                ExperimentReason.FAILED,
                "Experiment has failed because no trial succeeded: "
                + (failures.describe(self.spec, self._records) or "no trial ran"),
            )
        return self._complete(uid, ExperimentPhase.SUCCEEDED, reason, message)

    def _complete(
        self, uid: str, phase: ExperimentPhase, reason: ExperimentReason, message: str
    ) -> ExperimentRecord:
        self._commit(force=True)  # the trials' ends first
        self._set_experiment_phase(uid, phase, reason, message)
        best_metrics: dict[str, float] = {}
        if self.best_trial is not None:
            best = self.trials[self.best_trial]
            best_metrics = final_metrics(self.spec.objective, summarize(best.observations))
        self.tracker.end_experiment(phase, reason.value, self.best_trial, best_metrics)
        try:
            meta = self.experiment.metadata
            self.suggestion.close(meta.namespace, meta.name)
        except (
            ServiceError
        ) as exc:  # the outcome is stored; freeing the service's state is best effort
            log.warning("could not release the suggestion state of %s: %s", uid, exc)
        self._notify()
        assert self.record is not None  # read back after the phase change, unchanged since
        return self.record

    def _launch_new(self) -> bool:
        deck = self._launch_deck()
        if self._suggestions_exhausted:
            return deck
        spec = self.spec
        free = self._free_slots()
        want = free - len(self._deck) + (1 if self._ask_ahead() else 0)
        if spec.max_trial_count is not None:
            want = min(want, spec.max_trial_count - len(self.trials))
        want = min(want, _MOST_PER_TURN)
        if self.slots is not None:
            # Created trials wait for a machine-wide slot: no more of them than the
            # machine runs at once (a larger parallelTrialCount is not a queue of its own).
            want = min(want, self.slots.capacity - len(self._queued))
        if want <= 0:
            return deck
        suggestions = self.suggestion.suggest(self.experiment, want)
        self._check_trial_names([s.trial_name for s in suggestions])
        if len(suggestions) < want:
            self._suggestions_exhausted = True
        record = self.record
        assert record is not None
        for suggestion in suggestions:
            trial_dir = self.experiment_dir / suggestion.trial_name
            trial = TrialRecord(
                id=0,  # set when the batch commits
                experiment_uid=record.uid,
                name=suggestion.trial_name,
                seq=len(self.trials),
                assignments=dict(suggestion.assignments),
                phase=TrialPhase.CREATED,
                reason=_TRIAL_REASONS[TrialPhase.CREATED],
                message="Trial is created",
                trial_dir=str(trial_dir),
                push_token=secrets.token_hex(16),
                exit_code=None,
                metrics=None,
                objective_value=None,
                observation_count=0,
                collected_count=0,
                created_at=time.time(),
                started_at=None,
                completed_at=None,
            )
            self._batch.add_trial(trial)
            state = TrialState(record=trial)
            self._add_state(state)
            on_deck = free <= 0
            if on_deck:
                state.tracked = False  # the tracker hears of it when it starts
            else:
                free -= 1
                self._then(
                    functools.partial(self.tracker.start_trial, trial.name, trial.assignments)
                )
            run = self._trial_run(trial)
            if run is None:
                continue
            if on_deck:
                self._deck[state.name] = (state, run)
                self._then(functools.partial(self._hand_over, state, run))
            else:
                self._launch(state, run)
        return deck or bool(suggestions)

    def _free_slots(self) -> int:
        """Slots of ``parallelTrialCount`` no trial holds (trials on deck hold none)."""
        return self.spec.parallel_trial_count - (len(self._running) - len(self._deck))

    def _ask_ahead(self) -> bool:
        """Whether to put a trial on deck: created while the slots are all taken, so that
        when a trial ends the next one starts at once instead of after the loop's turn
        (ending the trial, the suggestion, the commit). Only for algorithms whose
        suggestions ignore results (asking early changes nothing they suggest), while
        trials are short (below ``_DECK_BELOW``, where that turn is a visible share of a
        trial), one trial at a time, and without the machine-wide slots of the control
        plane (whose queue holds created trials already)."""
        return (
            self._may_ask_ahead
            and not self._deck
            and self.slots is None
            and self._last_run_time is not None
            and self._last_run_time < _DECK_BELOW
        )

    def _launch_deck(self, freed: int = 0) -> bool:
        """Launch trials on deck into the free slots, right away: their creation was
        committed in an earlier turn (their ``id`` is set then). ``freed``: slots of trials
        that have exited but are not settled yet."""
        launched = False
        for state, run in list(self._deck.values()):
            if self._free_slots() + freed <= 0 or state.record.id == 0:
                break
            del self._deck[state.name]
            self._launch(state, run, now=True)
            launched = True
        return launched

    def _hand_over(self, state: TrialState, run: TrialRun) -> None:
        """Once its creation is committed, a trial on deck goes to the backend's
        ``launch_next`` (if it has one): it starts the moment a running trial ends, before
        the controller hears of that end. Not where a trial's result can end the
        experiment: there, the next trial waits for it (``_reconcile_trials``)."""
        if state.name not in self._deck or self._results_may_end() or self._ending():
            return
        if self._push_receiver is not None:  # before it can start (and push)
            self._push_receiver.register(state.name, state.record.push_token)
        state.handed = self.backend.launch_next(run)

    def _withdraw(self, state: TrialState, run: TrialRun) -> bool:
        """Take back a trial on deck from the backend: whether it never started."""
        if not state.handed:
            return True
        state.handed = False
        if self.backend.withdraw(state.name):
            return True
        # It started before the withdrawal came: a running trial from now on.
        del self._deck[state.name]
        self._start(state, run, now=True)
        return False

    def _withdraw_deck(self) -> None:
        """Take every trial on deck back from the backend (see ``_withdraw``)."""
        for state, run in list(self._deck.values()):
            self._withdraw(state, run)

    def _drop_deck(self) -> None:
        """The experiment ends (or stops): trials on deck that this run created never
        started, and go as if never created (no row, no MLflow run). One a restarted
        controller found waiting was told to the tracker already: it is killed instead;
        so is one that the backend had started (``_withdraw``)."""
        for state, run in list(self._deck.values()):
            if state.tracked or state.launched or not self._withdraw(state, run):
                continue
            if self._push_receiver is not None:
                self._push_receiver.unregister(state.name)
            del self._deck[state.name]
            del self.trials[state.name]
            self._running.pop(state.name, None)
            self._records.remove(state.record)
            self._phase_counts[state.phase] -= 1
            self._batch.remove_trial(state.record)

    def _ending(self) -> bool:
        """Whether the next completion check ends the experiment early (goal, failures, an
        interrupt): then no trial on deck starts."""
        return (
            self._stop.is_set()
            or goal_reached(self.spec.objective, self.best_value)
            or self._too_many_failures()
        )

    def _results_may_end(self) -> bool:
        """Whether a trial's result can end the experiment (an objective goal, or
        ``maxFailedTrialCount``): then a trial on deck waits until the ended trial is
        settled."""
        return self.spec.objective.goal is not None or self.spec.max_failed_trial_count is not None

    def _too_many_failures(self) -> bool:
        """``maxFailedTrialCount`` reached; as Katib counts them, a trial that reported no
        objective value failed too."""
        max_failed = self.spec.max_failed_trial_count
        counts = self._phase_counts
        failed = counts[TrialPhase.FAILED] + counts[TrialPhase.METRICS_UNAVAILABLE]
        return max_failed is not None and failed != 0 and failed >= max_failed

    def _launch_queued(self) -> bool:
        """Launch the queued trials that have been granted a slot meanwhile."""
        launched = False
        for state, run in list(self._queued.values()):
            if state.kill_phase is not None or state.phase.finished:
                continue
            assert self.slots is not None
            if self.slots.acquire(self._slot_owner, state.name, self._wake.set):
                self._start(state, run)
                launched = True
        return launched

    def _check_trial_names(self, names: list[str]) -> None:
        """Refuse names a (remote) suggestion service must not hand out.

        A trial's name is a folder under the experiment's and a unique key in the store: a
        name like ``../x`` would put a trial's files (and a later ``delete``) outside the
        experiment's folder, a repeated one would make the store refuse the trial.
        """
        seen: set[str] = set()
        for name in names:
            if not isinstance(name, str) or not _TRIAL_NAME.fullmatch(name):
                raise ServiceError(
                    f"the suggestion service returned an invalid trial name {name!r}"
                )
            if name in self.trials or name in seen:
                raise ServiceError(f"the suggestion service returned trial name {name!r} twice")
            seen.add(name)

    def _trial_run(self, trial: TrialRecord) -> TrialRun | None:
        """The run description; a trial whose template cannot render fails right away."""
        base_dir = getattr(self.experiment, "base_dir", None)
        trial_dir = Path(trial.trial_dir)
        env = {
            "HYPERFLOW_TRIAL_NAME": trial.name,
            "HYPERFLOW_EXPERIMENT_NAME": self.experiment.metadata.name,
            "KATIB_TRIAL_NAME": trial.name,
        }
        if self._push_receiver is not None:
            env["HYPERFLOW_PUSH_URL_FILE"] = str(self.experiment_dir / "push-url")
            env["HYPERFLOW_PUSH_TOKEN"] = trial.push_token
        elif (
            self.push_url is not None
            and self.spec.metrics_collector_spec.collector.kind is MetricsCollectorKind.PUSH
        ):
            env["HYPERFLOW_PUSH_URL"] = self.push_url
            env["HYPERFLOW_PUSH_TOKEN"] = trial.push_token
        command: list[str] | None = None
        cwd = Path(base_dir) if base_dir else Path.cwd()
        resources: dict[str, str] = {}
        entrypoint = False
        if not self.backend.runs_functions:
            try:
                rendered = render_trial(self.experiment, trial.name, trial.assignments, cwd)
            except (TemplateError, KeyError) as exc:
                state = self.trials[trial.name]
                self._set_phase(state, TrialPhase.FAILED, f"Trial has failed: {exc}")
                self.suggestion.report(self.experiment, self._result(state))
                name = trial.name
                if not state.tracked:
                    state.tracked = True
                    self._then(functools.partial(self.tracker.start_trial, name, trial.assignments))
                self._then(lambda: self.tracker.end_trial(name, TrialPhase.FAILED, {}, None))
                return None
            command = rendered.command
            env.update(rendered.env)
            cwd = rendered.cwd or cwd
            resources = rendered.resources
            entrypoint = rendered.entrypoint
        return TrialRun(
            experiment_name=self.experiment.metadata.name,
            trial_name=trial.name,
            command=command,
            env=env,
            cwd=cwd,
            trial_dir=trial_dir,
            assignments=dict(trial.assignments),
            collector=self.spec.metrics_collector_spec,
            metric_names=list(self._metric_names),
            resources=resources,
            entrypoint=entrypoint,
            experiment_uid=self.record.uid if self.record is not None else "",
        )

    def _launch(self, state: TrialState, run: TrialRun, now: bool = False) -> None:
        """Launch the trial once the turn is committed (``now``: it is already), or queue it
        for a machine slot."""
        if self.slots is not None and not self.slots.acquire(
            self._slot_owner, state.name, self._wake.set
        ):
            # Created, waiting for a machine-wide slot: shown as such in its status.
            self._queued[state.name] = (state, run)
            message = "Trial is queued: waiting for a free trial slot on this machine"
            self._batch.set_trial_phase(state.record, TrialPhase.CREATED, "TrialQueued", message)
            state.record.reason, state.record.message = "TrialQueued", message
            return
        self._start(state, run, now)

    def _start(self, state: TrialState, run: TrialRun, now: bool = False) -> None:
        """Launch (after the commit; ``now``: it is committed already) a trial that holds
        its slot, if it needs one."""
        self._queued.pop(state.name, None)

        def launch() -> None:
            if state.kill_phase is not None or state.phase.finished:
                return  # stopped before it could start: nothing to launch
            if not state.tracked:
                state.tracked = True
                self.tracker.start_trial(state.name, state.record.assignments)
            if self._push_receiver is not None:
                self._push_receiver.register(state.name, state.record.push_token)
            self.backend.launch(run)
            state.launched = True
            self._set_phase(state, TrialPhase.RUNNING, "Trial is running", lazy=True)

        if now:
            launch()
        else:
            self._then(launch)

    def _set_phase(
        self,
        state: TrialState,
        phase: TrialPhase,
        message: str,
        *,
        reason: str | None = None,
        lazy: bool = False,
        at: float | None = None,
        **kw: Any,
    ) -> None:
        """The trial's new phase: in memory now, in the store with the turn's commit;
        ``at``: when it changed, if not now."""
        reason = reason or _TRIAL_REASONS[phase]
        now = time.time() if at is None else at
        self._batch.set_trial_phase(state.record, phase, reason, message, at=now, lazy=lazy, **kw)
        r = state.record
        self._phase_counts[r.phase] -= 1
        self._phase_counts[phase] += 1
        if phase.finished:
            self._running.pop(state.name, None)
            self._queued.pop(state.name, None)
            self._deck.pop(state.name, None)
            if self.slots is not None:
                slots, owner, name = self.slots, self._slot_owner, state.name
                self._then(lambda: slots.release(owner, name))
        r.phase, r.reason, r.message = phase, reason, message
        if phase is TrialPhase.RUNNING:
            r.started_at = now
        if phase.finished:
            r.completed_at = now
            r.exit_code = kw.get("exit_code")
            r.metrics = kw.get("metrics")
            r.objective_value = kw.get("objective_value")

    def _kill_active(self, phase: TrialPhase, message: str) -> None:
        self._drop_deck()
        self._commit(force=True)  # what led to the kill is stored before it happens
        for state in self._active():
            if state.kill_phase is None:
                state.kill_phase, state.kill_message = phase, message
            if state.launched:
                self.backend.kill(state.name)

    def _settle_all_killed(self, timeout: float = 15.0) -> None:
        """Wait for killed trials to exit and record them (Killed / EarlyStopped)."""
        deadline = time.monotonic() + timeout
        while self._active() and time.monotonic() < deadline:
            for state in self._active():
                if not state.launched:
                    self._set_phase(
                        state, state.kill_phase or TrialPhase.KILLED, state.kill_message
                    )
                    continue
                exit_ = self.backend.poll(state.name)
                if exit_ is not None:
                    self._take_pushed()
                    tail = self.backend.collect(state.name)
                    if tail:
                        self._batch.add_observations(state.record, tail, collected=True)
                        state.observations.extend(o for o in tail if o.name in self._metric_names)
                    self._finish(state, exit_)
            self._commit(force=True)
            time.sleep(0.01)
        self._commit(force=True)

    def _result(self, state: TrialState) -> TrialResult:
        objective = self.spec.objective
        steps = [
            (o.step if o.step is not None else i, o.value)
            for i, o in enumerate(
                o for o in state.observations if o.name == objective.objective_metric_name
            )
        ]
        return TrialResult(
            trial_name=state.name,
            assignments=dict(state.record.assignments),
            phase=state.phase,
            objective_value=state.record.objective_value,
            intermediate=steps,
        )

    def _set_experiment_phase(
        self, uid: str, phase: ExperimentPhase, reason: str, message: str
    ) -> None:
        self.store.set_experiment_phase(uid, phase, reason, message)
        # Only this controller changes the experiment while it runs: keep its record here
        # instead of reading it back from the store on every change of a trial.
        self.record = self.store.get_experiment_by_uid(uid)

    def _notify(self) -> None:
        if self.observer is None or self.record is None:
            return
        self.observer(
            Snapshot(
                experiment=self.record,
                trials=list(self._records),
                best_trial=self.best_trial,
                best_value=self.best_value,
            )
        )

    def _shutdown(self) -> None:
        if self._push_receiver is not None:
            self._push_receiver.stop()
            self._push_receiver = None
