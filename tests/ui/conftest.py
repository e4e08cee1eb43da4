"""Browser tests of the web UI: Playwright driving Debian's headless Chromium against a
real ``hyperflow server`` (on loopback sockets in this process) running real experiments.

One browser and one server for the session; each test gets a fresh page whose console
errors fail the test (a test that expects some, e.g. a 422 of a dry run, says which).
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.hyperflow.conftest import Running, serve_plane, server_settings
from tests.ui.browser import CHROMIUM, FLAGS
from tests.util import write_script

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
    maximize_acc: bool = False,
) -> dict[str, Any]:
    write_script(folder / "ui_trial.py", TRIAL)
    spec: dict[str, Any] = {
        "objective": {
            "type": "minimize",
            "objectiveMetricName": "loss",
            "additionalMetricNames": ["acc"],
            "metricStrategies": [{"name": "acc", "value": "max"}],
        }
        if not maximize_acc
        else {"type": "maximize", "objectiveMetricName": "acc", "additionalMetricNames": ["loss"]},
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
            ("default", experiment("acc-max", folder, trials=4, parallel=2, maximize_acc=True)),
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


# Text whose contrast with what is behind it is below WCAG AA (4.5:1; 3:1 for large text),
# as "TAG.class 'text' ratio". Disabled controls (exempt in WCAG) and plots' SVG text are
# not checked; backgrounds are composited up the ancestors.
CONTRAST = """() => {
  const parse = (c) => {
    const m = /rgba?\\(([^)]+)\\)/.exec(c);
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const lum = (rgb) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(rgb[0]) + 0.7152 * f(rgb[1]) + 0.0722 * f(rgb[2]);
  };
  const over = (top, below) => below.map((v, i) => top[i] * top[3] + v * (1 - top[3]));
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let base = [255, 255, 255];
    for (const c of layers.reverse()) base = over(c, base);
    return base;
  };
  const bad = [];
  const done = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const el = node.parentElement;
    if (!node.textContent.trim() || !el || done.has(el)) continue;
    done.add(el);
    if (el.closest("svg, .js-plotly-plot, option, button:disabled, input:disabled, select:disabled")) continue;
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (!box.width || !box.height || style.visibility === "hidden" || box.right < 0) continue;
    const bg = background(el);
    const fg = over(parse(style.color), bg);
    const [a, b] = [lum(fg), lum(bg)];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (Number(style.fontWeight) >= 700 && size >= 18.66);
    if (ratio < (large ? 3 : 4.5)) {
      bad.push(`${el.tagName}.${el.className} '${node.textContent.trim().slice(0, 30)}' ${ratio.toFixed(2)}`);
    }
  }
  return bad;
}"""


def layout_problems(page: Any) -> list[str]:
    """What a person at this width would trip over: the page wider than the screen
    (a table may scroll sideways inside its own box, the page may not), a view without
    its heading, text below WCAG AA contrast."""
    problems: list[str] = []
    width = page.evaluate("() => document.documentElement.scrollWidth")
    screen = page.viewport_size["width"]
    if width > screen + 1:
        problems.append(f"{page.url}: {width} px wide on a {screen} px screen")
    if page.locator("main h1").count() != 1:
        problems.append(f"{page.url}: {page.locator('main h1').count()} headings")
    problems += [f"{page.url}: contrast {p}" for p in page.evaluate(CONTRAST)]
    return problems
