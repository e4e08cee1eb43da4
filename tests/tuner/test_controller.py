"""The controller's bookkeeping against a scripted backend: no processes, a real store.

The backend below ends trials when the test says so and hands back what the test queued,
so races that real processes hit only now and then (a push acknowledged between two
steps of a loop turn, a restart between two steps) happen on every run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.util import wait_until
from tuner.backends.base import TrialBackend, TrialExit, TrialRun
from tuner.controller import ExperimentController, Snapshot, TrialState
from tuner.metrics.push import PushReceiver
from tuner.spec import parse_experiment
from tuner.spec.models import Experiment
from tuner.store import Store
from tuner.suggestion import InProcessSuggestionClient
from tuner.suggestion.base import Suggestion
from tuner.suggestion.http_client import ServiceError
from tuner.tracking import NullTracker
from tuner.types import ExperimentPhase, Observation, TrialPhase

EXIT_0 = TrialExit(True, 0, "exit code 0")


class ScriptedBackend(TrialBackend):
    """Every trial ends at its first poll; ``before_exit`` runs just before that."""

    def __init__(self, loss: Callable[[TrialRun], float | None] | None = None) -> None:
        self.runs: dict[str, TrialRun] = {}
        self.adopted: list[str] = []
        self.before_exit: Callable[[str], None] | None = None
        self._loss = loss
        self._pending: dict[str, list[Observation]] = {}

    def launch(self, run: TrialRun) -> None:
        self.runs[run.trial_name] = run
        value = self._loss(run) if self._loss else None
        self._pending[run.trial_name] = (
            [] if value is None else [Observation("loss", value, 0, time.time())]
        )

    def adopt(self, run: TrialRun, skip_observations: int) -> None:
        self.adopted.append(run.trial_name)
        self.launch(run)

    def poll(self, trial_name: str) -> TrialExit | None:
        if self.before_exit is not None:
            self.before_exit(trial_name)
        return EXIT_0

    def collect(self, trial_name: str) -> list[Observation]:
        out, self._pending[trial_name] = self._pending[trial_name], []
        return out

    def kill(self, trial_name: str) -> None:
        pass

    def log_path(self, trial_name: str) -> Path:
        return Path(self.runs[trial_name].trial_dir) / "trial.log"

    def release(self, trial_name: str) -> None:
        pass

    def close(self) -> None:
        pass


def experiment(name: str = "ctl", *, collector: str = "StdOut", **spec: Any) -> Experiment:
    body: dict[str, Any] = {
        "objective": {"type": "minimize", "objectiveMetricName": "loss"},
        "algorithm": {"algorithmName": "grid"},
        "parallelTrialCount": 2,
        "maxTrialCount": 4,
        "metricsCollectorSpec": {"collector": {"kind": collector}},
        "parameters": [
            {"name": "x", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "9"}}
        ],
        "trialTemplate": {
            "trialParameters": [{"name": "x", "reference": "x"}],
            "command": ["true", "${trialParameters.x}"],
        },
    }
    body.update(spec)
    return parse_experiment(
        {
            "apiVersion": "kubeflow.org/v1beta1",
            "kind": "Experiment",
            "metadata": {"name": name},
            "spec": body,
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.close()


def controller(
    exp: Experiment,
    store: Store,
    backend: TrialBackend,
    home: Path,
    suggestion: Any = None,
    observer: Callable[[Snapshot], None] | None = None,
) -> ExperimentController:
    return ExperimentController(
        exp,
        store=store,
        backend=backend,
        suggestion=suggestion or InProcessSuggestionClient(),
        home=home,
        observer=observer,
    )


def test_a_push_acknowledged_just_before_the_trial_exits_counts(
    tmp_path: Path, store: Store
) -> None:
    """report() got its 200, then the trial exited, both after this turn read the queue."""
    exp = experiment(collector="Push", maxTrialCount=2)
    backend = ScriptedBackend()
    ctl = controller(exp, store, backend, tmp_path)

    def push_then_exit(trial_name: str) -> None:
        x = float(backend.runs[trial_name].assignments["x"])
        ctl._on_pushed(trial_name, [Observation("loss", x, 0, time.time())])

    backend.before_exit = push_then_exit
    record = ctl.run()
    trials = store.trials(record.uid)
    assert [(t.phase, t.objective_value) for t in trials] == [
        (TrialPhase.SUCCEEDED, float(t.assignments["x"])) for t in trials
    ], [(t.name, t.phase, t.message) for t in trials]
    assert record.phase is ExperimentPhase.SUCCEEDED


def test_running_trials_can_push_as_soon_as_a_restarted_controller_publishes_its_url(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp = experiment(collector="Push", maxTrialCount=1, parallelTrialCount=1)
    # What a controller killed mid-run leaves: a Running trial with its push token.
    uid = store.create_experiment("default", "ctl", exp.to_dict(), None, "local").uid
    trial_dir = tmp_path / "experiments" / "default" / "ctl" / "ctl-running1"
    trial = store.add_trial(uid, "ctl-running1", 0, {"x": 3}, str(trial_dir), "tok3n")
    store.set_trial_phase(trial.id, TrialPhase.RUNNING, "TrialRunning")

    answers: list[int | None] = []
    write_url_file = PushReceiver.write_url_file

    def publish(self: PushReceiver, path: Path) -> None:
        # From here on the trial reads the new address and pushes to it.
        answers.append(self._check_token("ctl-running1", "tok3n"))
        write_url_file(self, path)

    monkeypatch.setattr(PushReceiver, "write_url_file", publish)
    backend = ScriptedBackend(loss=lambda run: 0.5)
    record = controller(exp, store, backend, tmp_path).run()
    assert answers == [None], "the running trial's push would be refused (404)"
    assert backend.adopted == ["ctl-running1"]
    assert record.phase is ExperimentPhase.SUCCEEDED


class RenamingClient(InProcessSuggestionClient):
    """A suggestion service that hands out a name of its choosing."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def suggest(self, experiment: Experiment, count: int) -> list[Suggestion]:
        return [Suggestion(self.name, s.assignments) for s in super().suggest(experiment, count)]


@pytest.mark.parametrize("name", ["../../escaped", "ctl-/../../x", "CTL-UPPER", ""])
def test_a_trial_name_from_the_service_never_becomes_a_path_outside_the_experiment(
    tmp_path: Path, store: Store, name: str
) -> None:
    exp = experiment(parallelTrialCount=1)
    backend = ScriptedBackend()
    home = tmp_path / "home"
    with pytest.raises(ServiceError, match="invalid trial name"):
        controller(exp, store, backend, home, suggestion=RenamingClient(name)).run()
    assert backend.runs == {}
    record = store.get_experiment("default", "ctl")
    assert record is not None and store.trials(record.uid) == []
    assert not record.phase.finished  # resumable once the service behaves


def test_a_repeated_trial_name_from_the_service_is_refused(tmp_path: Path, store: Store) -> None:
    exp = experiment(parallelTrialCount=2)
    with pytest.raises(ServiceError, match="twice"):
        controller(
            exp, store, ScriptedBackend(), tmp_path, suggestion=RenamingClient("ctl-same0000")
        ).run()


def test_a_loop_turn_does_not_look_at_finished_trials(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 10,000 finished trials a turn must cost what it costs with none (no O(n))."""
    exp = experiment(maxTrialCount=None, parallelTrialCount=3)
    backend = ScriptedBackend(loss=lambda run: 1.0)
    ctl = controller(exp, store, backend, tmp_path)
    ctl.record = store.create_experiment("default", "ctl", exp.to_dict(), None, "local")
    from tuner.store import TrialRecord

    for i in range(10_000):
        record = TrialRecord(
            i, ctl.record.uid, f"old-{i}", i, {"x": 1}, TrialPhase.SUCCEEDED, "", "", "", "",
            0, None, 1.0, 1, 1, 0.0, 0.0, 0.0,
        )  # fmt: skip
        ctl._add_state(TrialState(record=record))
    reads = 0
    phase = TrialState.phase

    def counting(self: TrialState) -> TrialPhase:
        nonlocal reads
        reads += 1
        return phase.fget(self)  # type: ignore[attr-defined, no-any-return]

    monkeypatch.setattr(TrialState, "phase", property(counting))
    ctl._reconcile_trials()
    assert ctl._check_completion(ctl.record.uid) is None
    ctl._active()
    assert ctl._counts()[TrialPhase.SUCCEEDED] == 10_000
    assert reads < 100


def test_progress_snapshots_do_not_read_the_experiment_back_per_change(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp = experiment(maxTrialCount=9, parallelTrialCount=1)
    snapshots: list[Snapshot] = []
    reads = 0
    get = Store.get_experiment_by_uid

    def counting(self: Store, uid: str) -> Any:
        nonlocal reads
        reads += 1
        return get(self, uid)

    monkeypatch.setattr(Store, "get_experiment_by_uid", counting)
    backend = ScriptedBackend(loss=lambda run: float(run.assignments["x"]))
    record = controller(exp, store, backend, tmp_path, observer=snapshots.append).run()
    assert record.reason == "ExperimentMaxTrialsReached"
    assert len(snapshots) > 5 and reads <= 2, (len(snapshots), reads)
    last = snapshots[-1]
    assert last.experiment.phase is ExperimentPhase.SUCCEEDED
    assert len(last.trials) == 9 and all(t.phase.finished for t in last.trials)
    assert last.best_value == 1.0


class EndlessBackend(ScriptedBackend):
    """Trials that run until killed; records the kills."""

    def __init__(self) -> None:
        super().__init__()
        self.killed: list[str] = []

    def poll(self, trial_name: str) -> TrialExit | None:
        return TrialExit(False, None, "killed") if trial_name in self.killed else None

    def kill(self, trial_name: str) -> None:
        self.killed.append(trial_name)


def test_a_controller_whose_claim_another_host_took_leaves_the_trials_to_it(
    tmp_path: Path,
) -> None:
    """A controller that stalled past its lease (or lost the store for that long) finds
    its claim taken over by another host's controller: it stops, killing nothing."""
    import threading

    url = f"sqlite:///{tmp_path / 'store.db'}"
    a = Store(url, host="node-a", claim_lease=0.3)  # renewed every 0.1 s
    backend = EndlessBackend()
    ctl = controller(experiment(), a, backend, tmp_path)
    thread = threading.Thread(target=ctl.run, daemon=True)
    thread.start()
    # node-b's clock is a minute ahead: node-a's heartbeat looks stale to it.
    b = Store(url, host="node-b", clock=lambda: time.time() + 60, claim_lease=0.3)
    try:
        wait_until(lambda: len(backend.runs) == 2, timeout=30)
        record = a.get_experiment("default", "ctl")
        assert record is not None and record.controller_host == "node-a"
        b.claim(record.uid, 4242)
        thread.join(30)
        assert not thread.is_alive() and ctl.detached
        assert backend.killed == []  # node-b's controller adopts them
        after = b.get_experiment_by_uid(record.uid)
        assert (after.controller_pid, after.controller_host) == (4242, "node-b")
        assert after.phase is ExperimentPhase.RUNNING
    finally:
        ctl.stop()
        thread.join(30)
        a.close()
        b.close()


class TimedBackend(ScriptedBackend):
    """Trials that end ``duration`` seconds after their launch; counts how many run at once
    and how many trials the store holds unfinished at each launch."""

    def __init__(
        self,
        store: Store,
        duration: float | Callable[[int], float],
        loss: Callable[[TrialRun], float | None] | None = None,
    ) -> None:
        super().__init__(loss=loss or (lambda run: float(run.assignments["x"])))
        self.store = store
        self.duration = duration if callable(duration) else (lambda i: duration)
        self.ends: dict[str, float] = {}
        self.running: set[str] = set()
        self.killed: set[str] = set()
        self.most_running = 0
        self.most_unfinished = 0  # Created or Running in the store, at a launch

    def launch(self, run: TrialRun) -> None:
        super().launch(run)
        record = self.store.get_experiment("default", "ctl")
        assert record is not None
        unfinished = [t for t in self.store.trials(record.uid) if not t.phase.finished]
        self.most_unfinished = max(self.most_unfinished, len(unfinished))
        self.running.add(run.trial_name)
        self.most_running = max(self.most_running, len(self.running))
        # Last: the trial's run time starts when the controller's launch returns.
        self.ends[run.trial_name] = time.monotonic() + self.duration(len(self.ends))

    def poll(self, trial_name: str) -> TrialExit | None:
        if trial_name in self.killed:
            self.running.discard(trial_name)
            return TrialExit(False, None, "killed")
        if time.monotonic() < self.ends[trial_name]:
            return None
        self.running.discard(trial_name)
        return EXIT_0

    def kill(self, trial_name: str) -> None:
        self.killed.add(trial_name)


def random_experiment(algorithm: str = "random", **spec: Any) -> Experiment:
    return experiment(
        algorithm={
            "algorithmName": algorithm,
            "algorithmSettings": [{"name": "random_state", "value": "3"}],
        },
        parameters=[
            {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "1", "max": "9"}}
        ],
        **spec,
    )


def test_a_trial_waits_on_deck_for_the_next_free_slot_while_trials_are_short(
    tmp_path: Path, store: Store
) -> None:
    """Random search, short trials: the next trial is created (and committed) while both
    slots are busy, so it starts as soon as one ends; never more than parallelTrialCount
    run at once."""
    backend = TimedBackend(store, duration=0.01)
    exp = random_experiment(maxTrialCount=20, parallelTrialCount=2)
    ctl = controller(exp, store, backend, tmp_path)
    finish = ctl._finish
    waiting_at_finish: list[str] = []  # committed trials on deck when an ended trial settles
    decks_launched_early = 0

    def finishing(state: Any, exit_: TrialExit) -> None:
        nonlocal decks_launched_early
        waiting_at_finish.extend(n for n, (s, _) in ctl._deck.items() if s.record.id)
        decks_launched_early += len(backend.running) == 2
        finish(state, exit_)

    ctl._finish = finishing  # type: ignore[method-assign]
    record = ctl.run()
    assert record.reason == "ExperimentMaxTrialsReached"
    trials = store.trials(record.uid)
    assert len(trials) == 20 and all(t.phase is TrialPhase.SUCCEEDED for t in trials)
    assert backend.most_running == 2
    assert backend.most_unfinished == 3  # two running, one on deck
    # No goal and no maxFailedTrialCount: no result can end the experiment, so the trial
    # on deck starts before the ended trial is settled (the other slot's trial and it run).
    assert waiting_at_finish == []
    assert decks_launched_early > 0


@pytest.mark.parametrize(
    ("algorithm", "deck_below"), [("tpe", None), ("random", 0.005)], ids=["tpe", "long-trials"]
)
def test_no_trial_waits_on_deck_for_an_algorithm_that_learns_or_for_long_trials(
    tmp_path: Path,
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
    algorithm: str,
    deck_below: float | None,
) -> None:
    """TPE's next suggestion depends on the trial that is about to end: it is asked for
    only then. Trials longer than the deck's threshold gain nothing from one."""
    import tuner.controller

    if deck_below is not None:
        monkeypatch.setattr(tuner.controller, "_DECK_BELOW", deck_below)
    backend = TimedBackend(store, duration=0.01)
    exp = random_experiment(algorithm, maxTrialCount=12, parallelTrialCount=2)
    record = controller(exp, store, backend, tmp_path).run()
    assert record.reason == "ExperimentMaxTrialsReached"
    assert backend.most_running == 2 and backend.most_unfinished == 2


@pytest.mark.parametrize("ending", ["goal", "failures"])
def test_a_trial_on_deck_when_the_goal_is_reached_is_withdrawn(
    tmp_path: Path, store: Store, ending: str
) -> None:
    """The 8th trial reaches the goal (or is the failure ``maxFailedTrialCount`` allows no
    more of): the trial on deck then waits for the ended trial's result, and never starts."""
    launched: list[str] = []

    def loss(run: TrialRun) -> float | None:
        launched.append(run.trial_name)
        if len(launched) == 8:
            return 0.0 if ending == "goal" else None  # None: no objective value, failed
        return 5.0

    def duration(i: int) -> float:
        # Staggered short trials; the 8th reaches the goal and ends at once; from the 7th
        # on, the others run until killed, so none ends in the goal's turn (one that did
        # would start the trial on deck first).
        if i == 7:
            return 0.001
        return 0.03 + 0.017 * (i % 4) if i < 6 else 3600.0

    backend = TimedBackend(store, duration=duration, loss=loss)
    if ending == "goal":
        exp = random_experiment(
            maxTrialCount=30,
            parallelTrialCount=2,
            objective={"type": "minimize", "objectiveMetricName": "loss", "goal": 0.5},
        )
    else:
        exp = random_experiment(maxTrialCount=30, parallelTrialCount=2, maxFailedTrialCount=1)
    started: list[str] = []
    tracker = NullTracker()
    tracker.start_trial = lambda name, *args, **kwargs: started.append(name)  # type: ignore[method-assign]
    deck: list[str] = []
    ctl = controller(exp, store, backend, tmp_path)
    ctl.tracker = tracker
    drop = ctl._drop_deck

    def dropping() -> None:
        deck.extend(ctl._deck)
        drop()

    ctl._drop_deck = dropping  # type: ignore[method-assign]
    record = ctl.run()
    assert record.reason == ("ExperimentGoalReached" if ending == "goal" else "ExperimentFailed")
    assert len(deck) == 1, "a trial was on deck when the experiment ended"
    trials = store.trials(record.uid)
    # The trial on deck never started: gone from the store, never shown to the tracker.
    assert {t.name for t in trials} == set(backend.runs) == set(started)
    assert deck[0] not in backend.runs
    assert [t.seq for t in trials] == list(range(len(trials)))
    assert backend.most_running == 2


def test_a_resumed_experiment_with_more_created_trials_than_slots_runs_them_in_turn(
    tmp_path: Path, store: Store
) -> None:
    """After a crash with a trial on deck (or a parallelTrialCount lowered since), the
    trials that never started are launched as slots free up, not all at once."""
    exp = random_experiment(maxTrialCount=4, parallelTrialCount=2)
    record = store.create_experiment("default", "ctl", exp.to_dict(), None, "local")
    for i in range(3):
        store.add_trial(
            record.uid, f"ctl-old{i}", i, {"x": 2.0 + i}, str(tmp_path / f"ctl-old{i}"), "t"
        )
    backend = TimedBackend(store, duration=0.02)
    done = controller(exp, store, backend, tmp_path).run()
    assert done.reason == "ExperimentMaxTrialsReached"
    assert {f"ctl-old{i}" for i in range(3)} <= set(backend.runs)
    assert backend.most_running == 2


def test_an_experiment_runs_with_the_processs_old_objects_out_of_full_collections(
    tmp_path: Path, store: Store
) -> None:
    import gc

    frozen: list[int] = []
    backend = ScriptedBackend(loss=lambda run: float(run.assignments["x"]))
    backend.before_exit = lambda name: frozen.append(gc.get_freeze_count())
    record = controller(experiment(), store, backend, tmp_path).run()
    assert record.phase is ExperimentPhase.SUCCEEDED
    # tuner.heap: a full pass would otherwise scan every imported module's objects.
    assert len(frozen) == 4 and min(frozen) > 1000
    assert gc.get_freeze_count() == 0, "thawed when the experiment ends"


def test_two_first_runs_racing_to_create_it_meet_on_the_stored_one(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other run created it between this run's read and its create: this one goes on
    with the stored experiment (it said "experiment default/ctl already exists")."""
    exp = experiment()
    ctl = controller(exp, store, ScriptedBackend(), tmp_path)
    other = store.create_experiment("default", "ctl", exp.to_dict(), None, "local")
    real = store.get_experiment
    calls = []

    def read(namespace: str, name: str) -> Any:
        calls.append(name)
        return None if len(calls) == 1 else real(namespace, name)  # the first read: too soon

    monkeypatch.setattr(store, "get_experiment", read)
    assert ctl._open().uid == other.uid
