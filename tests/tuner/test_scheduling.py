"""FairTrialQueue: the bound holds, slots go round fairly, waiting trials are woken."""

from __future__ import annotations

import random
import threading

import pytest

from tuner.scheduling import FairTrialQueue


def test_capacity_bounds_running_trials_and_the_rest_wait_in_order() -> None:
    q = FairTrialQueue(2)
    woken: list[str] = []
    assert q.acquire("a", "a-1", lambda: woken.append("a-1"))
    assert q.acquire("a", "a-2", lambda: woken.append("a-2"))
    assert not q.acquire("a", "a-3", lambda: woken.append("a-3"))
    assert not q.acquire("a", "a-3", lambda: woken.append("a-3"))  # keeps its place
    assert (q.running(), q.queued(), q.queued("a")) == (2, 1, 1)
    q.release("a", "a-1")
    assert woken == ["a-3"]
    assert q.acquire("a", "a-3", lambda: None)  # granted while it waited
    assert (q.running(), q.queued()) == (2, 0)


def test_a_free_slot_goes_to_the_experiment_with_the_fewest_running() -> None:
    q = FairTrialQueue(3)
    for i in range(3):
        q.acquire("big", f"big-{i}", lambda: None)
    for i in range(3, 6):
        assert not q.acquire("big", f"big-{i}", lambda: None)
    assert not q.acquire("small", "small-0", lambda: None)
    q.release("big", "big-0")  # big waited first, but small has none running
    assert q.acquire("small", "small-0", lambda: None)
    assert not q.acquire("big", "big-3", lambda: None)
    q.release("small", "small-0")
    assert q.acquire("big", "big-3", lambda: None)


def test_adopted_trials_count_even_above_capacity_and_release_is_idempotent() -> None:
    q = FairTrialQueue(1)
    q.adopt("a", "a-1")
    q.adopt("b", "b-1")
    assert q.running() == 2
    assert not q.acquire("c", "c-1", lambda: None)
    q.release("a", "a-1")
    q.release("a", "a-1")
    assert not q.acquire("c", "c-1", lambda: None)  # b-1 still holds the only slot
    q.release("b", "b-1")
    assert q.acquire("c", "c-1", lambda: None)
    q.release("c", "never-asked")
    assert q.running() == 1


def test_withdrawn_waiting_trials_lose_their_place() -> None:
    q = FairTrialQueue(1)
    q.acquire("a", "a-1", lambda: None)
    assert not q.acquire("a", "a-2", lambda: None)
    q.release("a", "a-2")  # killed while queued
    assert q.queued() == 0
    q.release("a", "a-1")
    assert q.running() == 0


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        FairTrialQueue(0)


def test_many_threads_never_exceed_the_bound() -> None:
    q = FairTrialQueue(3)
    lock = threading.Lock()
    holding: set[str] = set()
    peak = [0]
    errors: list[str] = []

    def worker(owner: str) -> None:
        rng = random.Random(owner)
        for i in range(200):
            trial = f"{owner}-{i}"
            granted = threading.Event()
            while not q.acquire(owner, trial, granted.set):
                granted.wait(1)
            with lock:
                holding.add(trial)
                peak[0] = max(peak[0], len(holding))
                if len(holding) > 3:
                    errors.append(f"{len(holding)} running")
            if rng.random() < 0.5:
                threading.Event().wait(0.0001)
            with lock:
                holding.discard(trial)
            q.release(owner, trial)

    threads = [threading.Thread(target=worker, args=(f"e{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and peak[0] <= 3 and q.running() == 0
