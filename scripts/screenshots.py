"""Screenshots of the web UI for README, from a real run.

Starts ``hyperflow server`` (a fresh HYPERFLOW_HOME in a temporary folder, MLflow off),
runs examples/experiments/branin.yaml and a training-like experiment with intermediate
values and median early stopping, serves examples/serving/sklearn-v1.yaml (the model
trained by examples/serving/train_sklearn.py into the temporary folder) with some
traffic, and saves PNGs of the main pages under docs/ui/ with Debian's headless Chromium
(through Playwright).

Run:  .venv/bin/python scripts/screenshots.py [--out docs/ui]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.ui.browser import CHROMIUM, FLAGS  # noqa: E402

TRAIN = textwrap.dedent(
    """
    import math, sys, time
    lr, depth, dropout, opt = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    best = 0.08 + 0.3 * abs(math.log10(lr) + 2.5) / 3 + 0.004 * abs(depth - 6) + 0.2 * (dropout - 0.2) ** 2
    best += {"adam": 0.0, "sgd": 0.06, "rmsprop": 0.03}[opt]
    for epoch in range(12):
        loss = best * (1 + 0.6 / (epoch + 1))
        print(f"epoch={epoch} loss={loss:.5f} accuracy={1 - loss / 2:.5f}", flush=True)
        time.sleep(0.05)
    """
)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def train_experiment(folder: Path) -> dict[str, Any]:
    (folder / "train.py").write_text(TRAIN)
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": "train-mlp", "annotations": {"hyperflow.io/base-dir": str(folder)}},
        "spec": {
            "objective": {
                "type": "minimize",
                "objectiveMetricName": "loss",
                "additionalMetricNames": ["accuracy"],
            },
            "algorithm": {"algorithmName": "tpe", "algorithmSettings": [{"name": "random_state", "value": "3"}]},
            "earlyStopping": {
                "algorithmName": "medianstop",
                "algorithmSettings": [
                    {"name": "min_trials_required", "value": "4"},
                    {"name": "start_step", "value": "4"},
                ],
            },
            "parallelTrialCount": 3,
            "maxTrialCount": 60,
            "parameters": [
                {"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.0001", "max": "0.1", "distribution": "logUniform"}},
                {"name": "depth", "parameterType": "int", "feasibleSpace": {"min": "2", "max": "12"}},
                {"name": "dropout", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "0.6"}},
                {"name": "optimizer", "parameterType": "categorical", "feasibleSpace": {"list": ["adam", "sgd", "rmsprop"]}},
            ],
            "trialTemplate": {
                "trialParameters": [
                    {"name": n, "reference": n} for n in ("lr", "depth", "dropout", "optimizer")
                ],
                "command": ["python", "train.py"]
                + [f"${{trialParameters.{n}}}" for n in ("lr", "depth", "dropout", "optimizer")],
            },
        },
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "ui")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        port = _port()
        env = {**os.environ, "HYPERFLOW_HOME": str(home), "HYPERFLOW_TRACK": "false"}
        server = subprocess.Popen(
            [sys.executable, "-m", "hyperflow", "server", "--port", str(port), "--serving-port", str(_port()), "--max-running-trials", "3"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            http = httpx.Client(base_url=url, timeout=60)
            deadline = time.monotonic() + 60
            while True:
                try:
                    if http.get("/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError("the server did not start")
                time.sleep(0.2)
            branin = yaml.safe_load((ROOT / "examples/experiments/branin.yaml").read_text())
            branin["metadata"]["annotations"] = {
                "hyperflow.io/base-dir": str(ROOT / "examples/experiments")
            }
            branin["spec"]["objective"].pop("goal")
            random_search = yaml.safe_load(yaml.safe_dump(branin))
            random_search["metadata"]["name"] = "branin-random"
            random_search["spec"]["algorithm"] = {
                "algorithmName": "random",
                "algorithmSettings": [{"name": "random_state", "value": "7"}],
            }
            for body in (branin, random_search, train_experiment(Path(tmp))):
                r = http.post("/apis/v1/namespaces/default/experiments", json=body)
                r.raise_for_status()
            predict = serve_iris(Path(tmp), http)
            for name in ("branin", "branin-random", "train-mlp"):
                while (
                    not http.get(f"/apis/v1/namespaces/default/experiments/{name}")
                    .json()["status"]
                    .get("completionTime")
                ):
                    time.sleep(0.5)
            shoot(url, args.out, http, predict)
        finally:
            server.terminate()
            server.wait(30)


def serve_iris(folder: Path, http: httpx.Client) -> str:
    """examples/serving/sklearn-v1.yaml on a freshly trained model; its V1 predict URL."""
    subprocess.run(
        [sys.executable, str(ROOT / "examples/serving/train_sklearn.py"), "--out", str(folder / "model")],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    body = yaml.safe_load((ROOT / "examples/serving/sklearn-v1.yaml").read_text())
    body["metadata"]["annotations"] = {"hyperflow.io/base-dir": str(folder)}
    http.post("/apis/v1/namespaces/default/inferenceservices", json=body).raise_for_status()
    deadline = time.monotonic() + 180
    while True:
        status = http.get("/apis/v1/namespaces/default/inferenceservices/iris").json()["status"]
        if status["conditions"][-1]["status"] == "True":
            return f"{status['address']['url']}/v1/models/iris:predict"
        if time.monotonic() > deadline:
            raise TimeoutError(f"iris did not become ready: {status['conditions']}")
        time.sleep(0.5)


def traffic(predict: str, stop: threading.Event) -> None:
    """Requests until stopped, so that the service's rate and latency plots show."""
    with httpx.Client(timeout=30) as c:
        i = 0
        while not stop.is_set():
            r = c.post(predict, json={"instances": [[5.1 + i % 7 / 10, 3.5, 1.4, 0.2]]})
            if r.status_code != 200:
                print(f"traffic: {predict}: {r.status_code} {r.text}", file=sys.stderr)
                return
            i += 1
            time.sleep(0.01)


def shoot(url: str, out: Path, http: httpx.Client, predict: str) -> None:
    from playwright.sync_api import sync_playwright

    trial = http.get(
        "/apis/v1/namespaces/default/experiments/train-mlp/trials?sort=objective&limit=1"
    ).json()["items"][0]["metadata"]["name"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})

        def save(name: str, full: bool = False) -> None:
            page.wait_for_timeout(600)
            page.screenshot(path=str(out / f"{name}.png"), full_page=full)
            print(out / f"{name}.png")

        page.goto(url)
        page.wait_for_selector("#experiments tbody tr[data-key]")
        save("experiments")
        page.goto(f"{url}/experiments/default/train-mlp")
        page.wait_for_function("() => document.querySelector('#plot-parcoords')?.dataset.drawn")
        save("experiment")
        page.locator("#plot-parcoords").scroll_into_view_if_needed()
        page.evaluate(
            "() => document.querySelector('h2:nth-of-type(1)') && window.scrollTo(0, document.querySelector('#plot-parcoords').getBoundingClientRect().top + window.scrollY - 90)"
        )
        save("experiment-table")
        for tab in ("intermediate", "importance", "contour"):
            page.click(f"#tab-{tab}")
            page.wait_for_function(f"() => document.querySelector('#plot-{tab}')?.data")
            page.evaluate("() => document.querySelector('#plot-panel').scrollIntoView()")
            save(f"plot-{tab}")
        page.goto(f"{url}/experiments/default/train-mlp/trials/{trial}")
        page.wait_for_function("() => document.querySelector('#plot-curves')?.data")
        save("trial")
        page.goto(f"{url}/compare?e=default/branin&e=default/branin-random")
        page.wait_for_function("() => document.querySelector('#plot-compare-history')?.data")
        save("compare")
        page.goto(f"{url}/create")
        page.click("text=Insert an example")
        page.fill("#create-yaml", page.input_value("#create-yaml").replace("minimize", "minimise"))
        page.wait_for_selector("#create-problems li")
        save("create")
        page.goto(f"{url}/services")
        page.wait_for_selector('#services tbody tr[data-key="default/iris"]')
        save("services")
        stop = threading.Event()
        sender = threading.Thread(target=traffic, args=(predict, stop), daemon=True)
        sender.start()
        try:
            page.goto(f"{url}/services/default/iris")
            page.wait_for_function(
                "() => (document.querySelector('#plot-rate')?.data?.[0]?.y || [])"
                ".filter((v) => v > 0).length >= 3",
                timeout=120_000,
            )
            save("service")
        finally:
            stop.set()
            sender.join(30)
        phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
        phone.goto(f"{url}/experiments/default/branin")
        phone.wait_for_function("() => document.querySelector('#plot-parcoords')?.dataset.drawn")
        phone.wait_for_timeout(600)
        phone.screenshot(path=str(out / "phone.png"))
        print(out / "phone.png")
        browser.close()


if __name__ == "__main__":
    main()
