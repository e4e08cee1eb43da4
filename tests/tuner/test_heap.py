"""tuner.heap: an experiment's full garbage-collector passes skip the process's old objects."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator

import pytest

from tuner.heap import frozen_heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    assert gc.get_freeze_count() == 0, "a test before this one left objects frozen"
    yield
    gc.unfreeze()


def tracked(obj: object) -> bool:
    """Whether the collector's passes see ``obj`` (frozen objects are in none of its
    generations). The freeze count alone cannot tell: it falls as frozen objects die."""
    return any(o is obj for o in gc.get_objects())


def test_objects_that_exist_at_the_start_are_frozen_until_the_end() -> None:
    old = Node()
    with frozen_heap():
        new = Node()
        assert not tracked(old) and tracked(new)
        assert gc.get_freeze_count() > 1000  # the process's modules, classes, functions
        gc.collect()  # a full pass does not thaw them
        assert not tracked(old)
    assert tracked(old) and gc.get_freeze_count() == 0


def test_old_garbage_is_collected_after_the_end_and_new_garbage_at_once() -> None:
    old = Node()
    old_ref = weakref.ref(old)
    del old  # garbage, but only the cyclic collector can see that
    with frozen_heap():
        new = Node()
        new_ref = weakref.ref(new)
        del new
        gc.collect()
        assert new_ref() is None, "a cycle made during the experiment is collected as before"
        assert old_ref() is not None, "frozen: out of the collector's passes"
    gc.collect()
    assert old_ref() is None, "nothing is leaked: after the end it is collected"


def test_nested_and_concurrent_experiments_thaw_when_the_last_one_ends() -> None:
    inner_entered, outer_may_end = threading.Event(), threading.Event()

    def other_experiment() -> None:
        with frozen_heap():
            inner_entered.set()
            outer_may_end.wait(10)

    thread = threading.Thread(target=other_experiment)
    try:
        with frozen_heap():
            thread.start()
            assert inner_entered.wait(10)
            with frozen_heap():
                pass
            # (The count falls as frozen objects are freed: compare with a floor.)
            assert gc.get_freeze_count() > 1000, "an inner end does not thaw"
        assert gc.get_freeze_count() > 1000, "the other thread's experiment still runs"
    finally:
        outer_may_end.set()
        thread.join(10)
    assert gc.get_freeze_count() == 0


def test_a_process_that_froze_objects_itself_keeps_its_own_arrangement() -> None:
    early = Node()
    gc.freeze()
    late = Node()
    with frozen_heap():
        assert tracked(late), "nothing more is frozen"
        assert not tracked(early)
    assert not tracked(early), "its freeze is not undone"


def test_the_frozen_heap_is_thawed_when_the_experiment_raises() -> None:
    with pytest.raises(RuntimeError), frozen_heap():
        raise RuntimeError("boom")
    assert gc.get_freeze_count() == 0
