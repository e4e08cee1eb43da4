"""The conformance suite's fixture: one harness per registered trial backend.

As optuna's storage tests: every case in this folder takes ``harness`` and runs once per
entry of :data:`HARNESSES`. Adding a backend to the suite = one entry here (a class
that makes the backend and says what it needs, e.g. a cluster fixture).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tuner.backends import TrialBackend, create_backend
from tuner.settings import TunerSettings


class Harness:
    """Makes backends of one kind: ``make()`` is a new controller process's backend."""

    name = ""
    # Fixtures the backend needs (e.g. a cluster); requested before the first make().
    needs: tuple[str, ...] = ()

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.fixtures = {name: request.getfixturevalue(name) for name in self.needs}
        self.made: list[TrialBackend] = []

    def settings(self) -> TunerSettings:
        return TunerSettings()

    def make(self, function: Callable[..., Any] | None = None, workers: int = 1) -> TrialBackend:
        backend = create_backend(self.name, self.settings(), function=function, workers=workers)
        # Trials in these tests stop at once on SIGTERM: no need to wait 5 s for SIGKILL.
        if hasattr(backend, "kill_grace"):
            backend.kill_grace = 1.0
        self.made.append(backend)
        return backend

    def close(self) -> None:
        for backend in reversed(self.made):
            backend.close()


class LocalHarness(Harness):
    name = "local"


class RayHarness(Harness):
    name = "ray"
    needs = ("ray_address",)

    def settings(self) -> TunerSettings:
        return TunerSettings(ray_address=self.fixtures["ray_address"])


HARNESSES: dict[str, type[Harness]] = {
    "local": LocalHarness,
    "ray": RayHarness,
}


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    h = HARNESSES[request.param](request)
    try:
        yield h
    finally:
        h.close()
