"""What the trial backend tests share: a trial's run description, a script file, waits
for a trial's exit and its observations (the conformance suite and LocalBackend's own
tests)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

from tests.util import wait_until
from tuner.backends import TrialBackend, TrialExit, TrialRun
from tuner.spec.models import MetricsCollectorSpec
from tuner.types import Observation


def make_run(
    tmp: Path,
    name: str,
    command: list[str] | None,
    *,
    env: dict[str, str] | None = None,
    collector: MetricsCollectorSpec | None = None,
    metric_names: tuple[str, ...] = ("loss",),
) -> TrialRun:
    return TrialRun(
        experiment_name="exp",
        trial_name=name,
        command=command,
        env=env or {},
        cwd=tmp,
        trial_dir=tmp / "trials" / name,
        assignments={"x": 1.0},
        collector=collector or MetricsCollectorSpec(),
        metric_names=list(metric_names),
        experiment_uid=f"conformance-{os.getpid()}-{tmp.name}",
    )


def script(tmp: Path, name: str, body: str) -> str:
    path = tmp / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def wait_exit(backend: TrialBackend, name: str, timeout: float = 180.0) -> TrialExit:
    result: list[TrialExit] = []

    def done() -> bool:
        exit_ = backend.poll(name)
        if exit_ is not None:
            result.append(exit_)
        return bool(result)

    wait_until(done, timeout=timeout)
    return result[0]


def collect_until(
    backend: TrialBackend, name: str, count: int, timeout: float = 180.0
) -> list[Observation]:
    seen: list[Observation] = []
    wait_until(lambda: bool(seen.extend(backend.collect(name))) or len(seen) >= count, timeout)
    return seen


# Blocks until a file named on the command line exists: the test decides when it goes on.
WAIT_FOR = """
import os, sys, time
def wait_for(path):
    while not os.path.exists(path):
        time.sleep(0.01)
"""
