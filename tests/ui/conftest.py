"""Browser tests of the web UI: Playwright driving Debian's headless Chromium against a
real ``hyperflow server`` (on loopback sockets in this process) running real experiments.

One browser and one server for the session; each test gets a fresh page whose console
errors fail the test (a test that expects some, e.g. a 422 of a dry run, says which).
"""

from __future__ import annotations

import shutil
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.hyperflow.conftest import Running, serve_plane, server_settings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# A trial that reports its loss and accuracy at 8 steps (StdOut collector: each line is
# the next step), so the intermediate-values plot and medianstop have curves to work on.
TRIAL = textwrap.dedent(
    """
    import sys, time
    x, opt = float(sys.argv[1]), sys.argv[2]
    shift = 0.0 if opt == "adam" else 0.2
    for step in range(8):
        loss = (x - 0.3) ** 2 + shift + 1.0 / (step + 1)
        print(f"loss={loss:.6f}", flush=True)
        print(f"acc={1.0 - loss / 3:.6f}", flush=True)
        time.sleep(float(sys.argv[3]))
    """
)


def experiment(
    name: str,
    folder: Path,
    *,
    trials: int,
    parallel: int = 2,
    step_seconds: float = 0.0,
    early_stopping: bool = False,
    namespace: str | None = None,
) -> dict[str, Any]:
    (folder / "ui_trial.py").write_text(TRIAL)
    spec: dict[str, Any] = {
        "objective": {
            "type": "minimize",
            "objectiveMetricName": "loss",
            "additionalMetricNames": ["acc"],
            "metricStrategies": [{"name": "acc", "value": "max"}],
        },
        "algorithm": {
            "algorithmName": "random",
            "algorithmSettings": [{"name": "random_state", "value": "5"}],
        },
        "parallelTrialCount": parallel,
        "maxTrialCount": trials,
        "parameters": [
            {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}},
            {
                "name": "opt",
                "parameterType": "categorical",
                "feasibleSpace": {"list": ["sgd", "adam"]},
            },
        ],
        "trialTemplate": {
            "trialParameters": [
                {"name": "x", "reference": "x"},
                {"name": "opt", "reference": "opt"},
            ],
            "command": [
                "python",
                "ui_trial.py",
                "${trialParameters.x}",
                "${trialParameters.opt}",
                str(step_seconds),
            ],
        },
    }
    if early_stopping:
        spec["earlyStopping"] = {
            "algorithmName": "medianstop",
            "algorithmSettings": [
                {"name": "min_trials_required", "value": "2"},
                {"name": "start_step", "value": "2"},
            ],
        }
    metadata: dict[str, Any] = {"name": name, "annotations": {"hyperflow.io/base-dir": str(folder)}}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": metadata,
        "spec": spec,
    }


def wait_finished(
    server: Running, namespace: str, name: str, timeout: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        obj = server.http.get(f"/apis/v1/namespaces/{namespace}/experiments/{name}").json()
        if obj["status"].get("completionTime"):
            return obj
        time.sleep(0.1)
    raise TimeoutError(f"{namespace}/{name} did not finish in {timeout}s")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("no Chromium installed (make test installs Debian's chromium package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Site:
    """The session's server with its finished experiments."""

    server: Running
    folder: Path
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    home = tmp_path_factory.mktemp("ui-home")
    folder = tmp_path_factory.mktemp("ui-trials")
    with serve_plane(server_settings(home, max_running_trials=4)) as server:
        s = Site(server, folder)
        bodies = [
            (
                "default",
                experiment(
                    "quad", folder, trials=24, parallel=4, early_stopping=True, step_seconds=0.03
                ),
            ),
            ("default", experiment("quad-small", folder, trials=6, parallel=3)),
            ("team-b", experiment("other", folder, trials=4, parallel=2, namespace="team-b")),
        ]
        for ns, body in bodies:
            r = server.http.post(f"/apis/v1/namespaces/{ns}/experiments", json=body)
            assert r.status_code == 201, r.text
        for ns, body in bodies:
            name = body["metadata"]["name"]
            s.experiments[name] = wait_finished(server, ns, name)
        yield s


class Console:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.allowed: list[str] = []

    def allow(self, fragment: str) -> None:
        """A console error containing ``fragment`` is expected by the test."""
        self.allowed.append(fragment)

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(a in e for a in self.allowed)]


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page(browser: Any, console: Console) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(20_000)

    def on_console(message: Any) -> None:
        if message.type == "error":
            console.errors.append(f"{message.text} ({message.location.get('url', '')})")

    pg.on("console", on_console)
    pg.on("pageerror", lambda exc: console.errors.append(f"page error: {exc}"))
    try:
        yield pg
    finally:
        context.close()
    assert console.unexpected() == [], console.unexpected()
