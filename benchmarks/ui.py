"""The web UI at 10,000 trials, against optuna-dashboard on the same study.

One experiment with 10,000 finished trials (6 parameters: 3 uniform doubles, a log-uniform
double, an int, a categorical; 20 intermediate values each) is written to hyperflow's
store, and the same trials (same parameters, values and intermediate values) to an optuna
storage (a journal file). ``hyperflow server`` and ``optuna-dashboard`` serve them; one
headless Chromium (Debian's, through Playwright) measures, each repetition in a fresh
browser context (cold cache):

* hyperflow: navigation -> the trial table's rows and the parallel-coordinates plot drawn
  (both are on the experiment page);
* optuna-dashboard: navigation -> the same on its "Smart Selection" page, the one that
  shows a parallel-coordinates plot (whose brushing filters the trials) and a trial table
  together (0.21 has no other trial table; its table shows 50 rows a page);
* re-sort: click the objective value's column header (ascending -> descending) -> the
  first row shows the new order, painted;
* transferred bytes of each page load (response bodies as sent, compressed or not);
* hyperflow's experiments list with 1,000 experiments: navigation -> the list drawn (it
  draws the rows in view; its table's aria-rowcount says all 1,000 are in it).

Timings are read inside the page (``performance.now()`` from navigation start, polled on
every animation frame by a script installed before the page's own), the same way for both
tools.

Run:  .venv/bin/python benchmarks/ui.py [--trials 10000] [--experiments 1000] [--reps 3]
optuna-dashboard is installed into benchmarks/.venvs/optuna-dashboard on first use.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

DASHBOARD_VENV = ROOT / "benchmarks" / ".venvs" / "optuna-dashboard"
from tests.ui.browser import CHROMIUM, FLAGS  # noqa: E402

STEPS = 20
PARAMS = [
    {"name": "x1", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}},
    {"name": "x2", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}},
    {"name": "x3", "parameterType": "double", "feasibleSpace": {"min": "-5", "max": "5"}},
    {
        "name": "lr",
        "parameterType": "double",
        "feasibleSpace": {"min": "0.00001", "max": "1", "distribution": "logUniform"},
    },
    {"name": "layers", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "64"}},
    {
        "name": "optimizer",
        "parameterType": "categorical",
        "feasibleSpace": {"list": ["sgd", "adam", "rmsprop"]},
    },
]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(url)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the study ------------------------------------------------------------------------


def trials(n: int) -> list[dict[str, Any]]:
    """n finished trials: parameters, objective and 20 intermediate values, seeded."""
    rng = random.Random(42)
    out = []
    for _ in range(n):
        p = {
            "x1": rng.random(),
            "x2": rng.random(),
            "x3": rng.uniform(-5, 5),
            "lr": 10 ** rng.uniform(-5, 0),
            "layers": rng.randint(1, 64),
            "optimizer": rng.choice(["sgd", "adam", "rmsprop"]),
        }
        base = (
            (p["x1"] - 0.3) ** 2
            + 0.5 * (p["x2"] - 0.7) ** 2
            + 0.05 * p["x3"] ** 2
            + 0.1 * abs(math.log10(p["lr"]) + 3)
            + (0.0 if p["optimizer"] == "adam" else 0.2)
            + 0.002 * abs(p["layers"] - 16)
        )
        curve = [base + 1.0 / (s + 1) + rng.gauss(0, 0.01) for s in range(STEPS)]
        out.append({"params": p, "curve": curve, "value": min(curve)})
    return out


def spec(name: str, n: int) -> dict[str, Any]:
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": "loss"},
            "algorithm": {"algorithmName": "random"},
            "parallelTrialCount": 4,
            "maxTrialCount": n,
            "parameters": PARAMS,
            "trialTemplate": {"command": ["python", "train.py"]},
        },
    }


def write_hyperflow(home: Path, data: list[dict[str, Any]], experiments: int) -> None:
    """The big experiment plus ``experiments - 1`` small ones (5 trials each) in a store,
    written with bulk inserts (as if `hyperflow server` had run them)."""
    from tuner.settings import TunerSettings
    from tuner.spec import parse_experiment
    from tuner.store import Store
    from tuner.store.models import ObservationRow, TrialRow
    from tuner.types import ExperimentPhase

    settings = TunerSettings(home=home)
    settings.ensure_home()
    store = Store(settings.store_url)
    now = time.time()

    def add(name: str, rows: list[dict[str, Any]]) -> None:
        body = parse_experiment(spec(name, len(rows))).to_dict()
        record = store.create_experiment("default", name, body, None, "local", owner=None)
        trial_rows = []
        for i, t in enumerate(rows):
            trial_rows.append(
                {
                    "experiment_uid": record.uid,
                    "name": f"{name}-{i:06d}",
                    "seq": i,
                    "assignments": {k: str(v) for k, v in t["params"].items()},
                    "phase": "Succeeded",
                    "reason": "TrialSucceeded",
                    "message": "Trial has succeeded",
                    "trial_dir": f"/nonexistent/{name}-{i}",
                    "push_token": "0" * 32,
                    "exit_code": 0,
                    "metrics": {
                        "loss": {
                            "min": t["value"],
                            "max": max(t["curve"]),
                            "latest": t["curve"][-1],
                        }
                    },
                    "objective_value": t["value"],
                    "observation_count": STEPS,
                    "collected_count": STEPS,
                    "created_at": now + i * 0.01,
                    "started_at": now + i * 0.01,
                    "completed_at": now + i * 0.01 + 5,
                }
            )
        with store.engine.begin() as conn:
            conn.execute(TrialRow.__table__.insert(), trial_rows)
            ids = dict(
                conn.execute(
                    TrialRow.__table__.select()
                    .with_only_columns(TrialRow.__table__.c.seq, TrialRow.__table__.c.id)
                    .where(TrialRow.__table__.c.experiment_uid == record.uid)
                ).all()
            )
            obs = [
                {"trial_id": ids[i], "name": "loss", "value": v, "step": s, "timestamp": now}
                for i, t in enumerate(rows)
                for s, v in enumerate(t["curve"])
            ]
            for k in range(0, len(obs), 50_000):
                conn.execute(ObservationRow.__table__.insert(), obs[k : k + 50_000])
        store.set_experiment_phase(
            record.uid, ExperimentPhase.SUCCEEDED, "ExperimentMaxTrialsReached", "done"
        )

    add("big", data)
    for e in range(experiments - 1):
        add(f"exp-{e:04d}", data[e * 5 % len(data) :][:5])
    store.close()


def write_optuna(path: Path, data: list[dict[str, Any]]) -> None:
    import optuna
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = {
        "x1": FloatDistribution(0, 1),
        "x2": FloatDistribution(0, 1),
        "x3": FloatDistribution(-5, 5),
        "lr": FloatDistribution(1e-5, 1, log=True),
        "layers": IntDistribution(1, 64),
        "optimizer": CategoricalDistribution(["sgd", "adam", "rmsprop"]),
    }
    # A journal file: optuna's RDB storage writes ~40 ms per trial here (minutes for
    # 10,000); optuna-dashboard reads either into the same in-memory cache.
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(path)))
    study = optuna.create_study(study_name="big", storage=storage, direction="minimize")
    study.add_trials(
        [
            optuna.trial.create_trial(
                params=t["params"],
                distributions=distributions,
                value=t["value"],
                intermediate_values=dict(enumerate(t["curve"])),
            )
            for t in data
        ]
    )


def ensure_dashboard() -> Path:
    exe = DASHBOARD_VENV / "bin" / "optuna-dashboard"
    if not exe.exists():
        uv = shutil.which("uv") or str(ROOT / ".venv" / "bin" / "uv")
        subprocess.run([uv, "venv", str(DASHBOARD_VENV), "--python", sys.executable], check=True)
        subprocess.run(
            [
                uv,
                "pip",
                "install",
                "--python",
                str(DASHBOARD_VENV / "bin" / "python"),
                "optuna-dashboard",
            ],
            check=True,
        )
    return exe


# -- measuring in the browser ---------------------------------------------------------

# Installed before the page's own scripts (an init script: it runs as the document is
# created) and polled on every animation frame: records performance.now() (ms since
# navigation start) the first time each condition holds. Polling from the start, not from
# whenever a poller sent after the navigation arrives, so a busy page is not measured late.
POLL = """(() => {
    const conds = %s;
    const seen = [];
    const tick = () => {
        conds.forEach((c, k) => {
            if (seen[k] === undefined) { try { if (eval(c)) seen[k] = performance.now(); } catch {} }
        });
        if (conds.every((_, k) => seen[k] !== undefined)) window.__seen = seen;
        else requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
})();"""

HF_TABLE = "document.querySelectorAll('#trials .vt-body .vt-row').length > 5"
HF_PARCOORDS = (
    "document.querySelector('#plot-parcoords')?.dataset.drawn !== undefined"
    " && document.querySelectorAll('#plot-parcoords .pc-axis').length === 7"
)
OD_PARCOORDS = "document.querySelectorAll('.js-plotly-plot .parcoords .y-axis').length >= 7"
OD_TABLE = "document.querySelectorAll('tbody tr').length > 5"
HF_SORT = "document.querySelector('#trials button[data-key=\"m:loss\"]')"
HF_FIRST = (
    "document.querySelector('#trials .vt-body .vt-row[aria-rowindex=\"2\"] .vt-cell:nth-child(4)')"
)
OD_SORT = (
    "[...document.querySelectorAll('thead th')].find((t) => t.textContent.startsWith('Value'))"
    ".querySelector('[role=button]')"
)
OD_FIRST = (
    "document.querySelector('tbody tr:first-child td:nth-child('"
    " + ([...document.querySelectorAll('thead th')].findIndex((t) => t.textContent.startsWith('Value')) + 1)"
    " + ')')"
)
# The list draws the rows in view (its table says how many there are in all).
HF_LIST = (
    "document.querySelector('#experiments')?.getAttribute('aria-rowcount') === '{rows}'"
    " && document.querySelectorAll('#experiments tbody tr[data-key]').length >= 10"
)


class Meter:
    def __init__(self, browser: Any) -> None:
        self.browser = browser

    def load(self, url: str, conditions: list[str], timeout: float = 300_000) -> dict[str, Any]:
        """A cold page load: ms from navigation start to each condition, and the bytes."""
        context = self.browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        sizes: list[int] = []
        errors: list[str] = []

        def finished(request: Any) -> None:
            with contextlib.suppress(Exception):  # a stream cut by the end of the context
                sizes.append(request.sizes()["responseBodySize"])

        page.on("requestfinished", finished)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.add_init_script(POLL % json.dumps(conditions))
        page.goto(url, wait_until="commit")
        try:
            handle = page.wait_for_function("() => window.__seen", polling=50, timeout=timeout)
            times = [float(t) for t in handle.json_value()]
        except Exception as exc:  # a peer that does not get there in time: say so
            print(
                f"{url}: not drawn within {timeout / 1000:.0f} s ({type(exc).__name__})", flush=True
            )
            times = [float("nan")] * len(conditions)
        page.wait_for_timeout(300)  # requests still finishing count as transferred
        return {
            "times": times,
            "bytes": sum(sizes),
            "page": page,
            "context": context,
            "errors": errors,
        }


def resort(page: Any, click: str, first_cell: str) -> float:
    """ms from a click on a column header (JS expression of the element) to the first row
    (expression of its cell) showing another value, painted."""
    return float(
        page.evaluate(
            f"""async () => {{
                const first = () => ({first_cell})?.textContent;
                const before = first();
                const t0 = performance.now();
                ({click}).click();
                for (;;) {{
                    await new Promise(requestAnimationFrame);
                    const now = first();
                    if (now !== undefined && now !== before) break;
                }}
                await new Promise(requestAnimationFrame);
                return performance.now() - t0;
            }}"""
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--experiments", type=int, default=1_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--peer-reps", type=int, default=3, help="optuna-dashboard loads")
    parser.add_argument("--peer-timeout", type=float, default=600, help="seconds per load")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit("no Chromium: apt-get install chromium")
    dashboard = ensure_dashboard()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        t0 = time.perf_counter()
        data = trials(args.trials)
        write_hyperflow(home, data, args.experiments)
        print(f"hyperflow store written in {time.perf_counter() - t0:.1f} s", flush=True)
        t0 = time.perf_counter()
        optuna_db = Path(tmp) / "optuna.journal"
        write_optuna(optuna_db, data)
        print(f"optuna storage written in {time.perf_counter() - t0:.1f} s", flush=True)
        hf_port, od_port = _free_port(), _free_port()
        env = {**os.environ, "HYPERFLOW_HOME": str(home), "HYPERFLOW_TRACK": "false"}
        hf = subprocess.Popen(
            [sys.executable, "-m", "hyperflow", "server", "--port", str(hf_port),
             "--serving-port", str(_free_port())],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        od = subprocess.Popen(
            [str(dashboard), str(optuna_db), "--host", "127.0.0.1", "--port", str(od_port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            hf_url, od_url = f"http://127.0.0.1:{hf_port}", f"http://127.0.0.1:{od_port}"
            _wait(f"{hf_url}/readyz", hf)
            _wait(f"{od_url}/api/studies", od)
            run(hf_url, od_url, args)
        finally:
            _stop(hf)
            _stop(od)


def _last(results: dict[str, list[float]], prefix: str) -> str:
    return ", ".join(f"{k} {v[-1]:.0f}" for k, v in results.items() if k.startswith(prefix))


def _med(values: list[float]) -> float:
    return statistics.median(values)


def run(hf_url: str, od_url: str, args: argparse.Namespace) -> None:
    from playwright.sync_api import sync_playwright

    results: dict[str, list[float]] = {}

    def note(key: str, value: float) -> None:
        results.setdefault(key, []).append(value)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        meter = Meter(browser)
        # Warm both servers (first requests import and cache), then measure.
        # The study's id as the dashboard knows it (a journal storage counts from 0).
        study = httpx.get(f"{od_url}/api/studies", timeout=60).json()["study_summaries"][0][
            "study_id"
        ]
        od_page = f"{od_url}/dashboard/studies/{study}/smartSelection"
        warm = meter.load(f"{hf_url}/experiments/default/big", [HF_TABLE, HF_PARCOORDS])
        warm["context"].close()
        # hyperflow first, then optuna-dashboard: its server keeps computing for a while
        # after its page is closed, which must not slow hyperflow's measurements down.
        for rep in range(args.reps):
            hf = meter.load(f"{hf_url}/experiments/default/big", [HF_TABLE, HF_PARCOORDS])
            table_ms, par_ms = hf["times"]
            note("hf_table", table_ms)
            note("hf_parcoords", par_ms)
            note("hf_both", max(table_ms, par_ms))
            note("hf_bytes", hf["bytes"])
            note("hf_resort", resort(hf["page"], HF_SORT, HF_FIRST))
            if hf["errors"]:
                print("hyperflow console errors:", hf["errors"][:3])
            hf["context"].close()
            lst = meter.load(f"{hf_url}/", [HF_LIST.format(rows=args.experiments + 1)])
            note("hf_list", lst["times"][0])
            note("hf_list_bytes", lst["bytes"])
            lst["context"].close()
            print(f"hyperflow rep {rep + 1}: " + _last(results, "hf_"), flush=True)
        for rep in range(args.peer_reps):
            od = meter.load(od_page, [OD_TABLE, OD_PARCOORDS], timeout=args.peer_timeout * 1000)
            table_ms, par_ms = od["times"]
            note("od_table", table_ms)
            note("od_parcoords", par_ms)
            note("od_both", max(table_ms, par_ms))
            note("od_bytes", od["bytes"])
            if math.isfinite(table_ms):
                note("od_resort", resort(od["page"], OD_SORT, OD_FIRST))
            od["context"].close()
            print(f"optuna-dashboard rep {rep + 1}: " + _last(results, "od_"), flush=True)
        browser.close()

    m: dict[str, float] = collections.defaultdict(lambda: float("nan"))
    m.update({k: _med(v) for k, v in results.items()})
    print()
    print(
        f"{args.trials} trials x 6 parameters x {STEPS} intermediate values; median of {args.reps} cold loads"
    )
    print(
        f"hyperflow experiment page: table {m['hf_table']:.0f} ms, parallel coordinates {m['hf_parcoords']:.0f} ms -> both {m['hf_both']:.0f} ms; {m['hf_bytes'] / 1e6:.2f} MB"
    )
    print(
        f"optuna-dashboard Smart Selection page: table {m['od_table']:.0f} ms, parallel coordinates {m['od_parcoords']:.0f} ms -> both {m['od_both']:.0f} ms; {m['od_bytes'] / 1e6:.2f} MB"
    )
    print(
        f"ratio (optuna-dashboard / hyperflow): both {m['od_both'] / m['hf_both']:.1f}x, parallel coordinates {m['od_parcoords'] / m['hf_parcoords']:.1f}x, table {m['od_table'] / m['hf_table']:.1f}x"
    )
    print(f"re-sort: hyperflow {m['hf_resort']:.0f} ms, optuna-dashboard {m['od_resort']:.0f} ms")
    print(
        f"experiments list, {args.experiments} experiments: {m['hf_list']:.0f} ms, {m['hf_list_bytes'] / 1e6:.2f} MB"
    )


if __name__ == "__main__":
    main()
