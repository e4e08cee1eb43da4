"""A killed process's zombie is not a live owner: of an experiment's claim, a pipeline run,
or the server's view of a controller."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tuner.pids import pid_alive, process_state


@pytest.fixture
def zombie() -> Iterator[int]:
    """A child killed with SIGKILL and not reaped yet (as under a lazily reaping init)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while process_state(child.pid) != "Z":
            assert time.monotonic() < deadline, "the child never became a zombie"
            time.sleep(0.01)
        yield child.pid
    finally:
        child.kill()
        child.wait()


def test_a_zombie_is_not_alive(zombie: int) -> None:
    assert not pid_alive(zombie)
    assert pid_alive(os.getpid()) and process_state(os.getpid()) == "R"


def test_an_experiment_claimed_by_a_zombie_is_free(zombie: int, tmp_path: Path) -> None:
    from tuner.store import Store

    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        assert not store.claim_alive(zombie, store.host, time.time())
        assert store.claim_alive(os.getpid(), store.host, time.time())
    finally:
        store.close()


def test_a_pipeline_run_owned_by_a_zombie_is_not_owned(zombie: int, tmp_path: Path) -> None:
    import psutil

    from pipelines.runner import owner_alive
    from pipelines.store import RunRecord

    record = RunRecord(
        uid="u", namespace="default", name="r", pipeline_name="p", spec={}, arguments={},
        resume_key="k", source="", parallelism=1, cache=True, pipeline_root="", state="RUNNING",
        message="", outputs=None, mlflow_run_id=None, created_at=0.0, started_at=None,
        finished_at=None, owner_pid=zombie, owner_started=None,
    )  # fmt: skip
    assert not owner_alive(record)
    me = replace(record, owner_pid=os.getpid(), owner_started=psutil.Process().create_time())
    assert owner_alive(me)
