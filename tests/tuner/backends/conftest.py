"""The conformance suite's fixture: one harness per registered trial backend.

As optuna's storage tests: every case in this folder takes ``harness`` and runs once per
entry of :data:`HARNESSES`. Adding a backend to the suite = one entry here (a class
that makes the backend and says what it needs, e.g. a cluster fixture).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tuner.backends import TrialBackend, create_backend
from tuner.settings import TunerSettings
from tuner.spec.models import Experiment


class Harness:
    """Makes backends of one kind: ``make()`` is a new controller process's backend."""

    name = ""
    # Fixtures the backend needs (e.g. a cluster); requested before the first make().
    needs: tuple[str, ...] = ()
    # What a backend cannot do by design; the cases check it refuses with a clear message
    # instead of skipping. ``functions``: SDK function trials. ``file_collector``: the
    # File collector. ``local_paths``: $HYPERFLOW_TRIAL_DIR / $HYPERFLOW_ARTIFACTS_DIR in
    # the trial's environment (paths of the controller's disk).
    functions = True
    file_collector = True
    local_paths = True

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.fixtures = {name: request.getfixturevalue(name) for name in self.needs}
        self.made: list[TrialBackend] = []

    def settings(self) -> TunerSettings:
        return TunerSettings()

    def experiment(self) -> Experiment | None:
        """The experiment the backend is made for (``None``: the backend needs none)."""
        return None

    def not_found(self, command: str) -> tuple[int | None, str]:
        """The exit code and message of a trial whose command does not exist."""
        return None, f"command not found: {command}"

    def make(self, function: Callable[..., Any] | None = None, workers: int = 1) -> TrialBackend:
        backend = create_backend(
            self.name,
            self.settings(),
            function=function,
            workers=workers,
            experiment=self.experiment(),
        )
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


class KubernetesHarness(Harness):
    """Trials as Jobs on the Kubernetes API stand-in (tests/kube/standin.py); the local
    kubelet stand-in (tests/kube/kubelet.py) runs each Job's container as a local process,
    so everything the backend sees comes over the API (status, the pod's log)."""

    name = "kubernetes"
    needs = ("tmp_path", "monkeypatch")
    functions = False
    file_collector = False  # read inside the pod: refused at launch
    local_paths = False

    def __init__(self, request: pytest.FixtureRequest) -> None:
        from tests.kube.kubelet import LocalKubelet
        from tests.kube.standin import KubeApiStandIn
        from tests.kube.trials import kubeconfig

        super().__init__(request)
        # The harness's own stand-in: it outlives every backend made here (see close).
        self.api = api = KubeApiStandIn().__enter__()
        # How a user points hyperflow at a cluster: a kubeconfig ($KUBECONFIG), as kubectl.
        config = Path(self.fixtures["tmp_path"]) / "kubeconfig"
        config.write_text(kubeconfig(api.url))
        self.fixtures["monkeypatch"].setenv("KUBECONFIG", str(config))
        self.kubelet = LocalKubelet(api, Path(self.fixtures["tmp_path"])).__enter__()

    def settings(self) -> TunerSettings:
        return TunerSettings(kube_namespace="default")

    def experiment(self) -> Experiment:
        from tests.kube.trials import experiment, job

        # Each case's TrialRun brings its own argv: the Job's container runs it.
        container = {
            "image": "python:3.12-slim",
            "command": ["python", "train.py"],
            "args": ["--x=${trialParameters.x}"],
        }
        return experiment(job(container))

    def not_found(self, command: str) -> tuple[int | None, str]:
        # As containerd reports it (the pod's container status).
        return 128, (
            f'exit code 128: StartError: exec: "{command}": executable file not found in $PATH'
        )

    def close(self) -> None:
        try:
            super().close()
        finally:
            try:
                self.kubelet.__exit__(None, None, None)
            finally:
                self.api.__exit__(None, None, None)


HARNESSES: dict[str, type[Harness]] = {
    "kubernetes": KubernetesHarness,
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
