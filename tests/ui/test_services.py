"""Inference services in the browser, against a real server that tracks in MLflow: the
model a trial saved, deployed from the experiment page, becomes a Ready service without a
reload; its page shows URL, traffic, replicas, request rate and latency from the router,
its events and YAML; "try it" gets the model's answer; the list shows it."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import httpx

from tests.hyperflow.conftest import serve_plane, server_settings
from tests.ui.conftest import Console, layout_problems, wait_finished
from tests.util import wait_until

EXP = "/apis/v1/namespaces/default/experiments/irises"

# Fits a logistic regression on iris (4 features) and saves it where MLflow picks it up.
SAVER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(C=float(sys.argv[1]), max_iter=500).fit(X, y)
    print(f"loss={1 - model.score(X, y):.6f}", flush=True)
    out = Path(os.environ["HYPERFLOW_ARTIFACTS_DIR"]) / "model"
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out / "model.joblib")
    """
)


def _irises(folder: Path) -> dict[str, Any]:
    (folder / "saver.py").write_text(SAVER)
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": "irises", "annotations": {"hyperflow.io/base-dir": str(folder)}},
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": "loss"},
            "algorithm": {"algorithmName": "random"},
            "parallelTrialCount": 1,
            "maxTrialCount": 1,
            "parameters": [
                {
                    "name": "c",
                    "parameterType": "double",
                    "feasibleSpace": {"min": "0.1", "max": "10"},
                }
            ],
            "trialTemplate": {
                "trialParameters": [{"name": "c", "reference": "c"}],
                "command": ["python", "saver.py", "${trialParameters.c}"],
            },
        },
    }


def test_a_saved_model_deployed_from_the_page_is_served_and_answers(
    page: Any, console: Console, hyperflow_home: Path, mlflow_db: Path, tmp_path: Path
) -> None:
    settings = server_settings(hyperflow_home, track=True)
    with serve_plane(settings) as server:
        r = server.http.post("/apis/v1/namespaces/default/experiments", json=_irises(tmp_path))
        assert r.status_code == 201, r.text
        wait_finished(server, "default", "irises", timeout=240)
        best: dict[str, Any] = {}

        def tracked() -> bool:  # the trial's run is in MLflow once its writer has drained
            best.update(server.http.get(f"{EXP}/best").json())
            return best["mlflowRunId"] is not None

        wait_until(tracked, timeout=120, interval=0.2)
        assert best["storageUri"] == f"runs:/{best['mlflowRunId']}/model"

        # The best trial's card: "Deploy…" (deploy-best, as the CLI's) with the model's
        # format found from its files and the registered model named after the experiment.
        page.goto(f"{server.url}/experiments/default/irises")
        page.click("#deploy")
        page.fill("#deploy-name", "iris")
        page.wait_for_function("() => document.querySelector('#deploy-format').value === 'sklearn'")
        assert page.input_value("#deploy-model") == "irises"
        page.click("dialog button[type=submit]")
        page.wait_for_url(f"{server.url}/services/default/iris")
        # Ready, seen without a reload (the page follows the service's events).
        page.evaluate("() => { window.__notReloaded = true; }")
        page.wait_for_function(
            "() => document.querySelector('h1 .badge')?.textContent === 'Ready'", timeout=180_000
        )
        assert page.evaluate("() => window.__notReloaded") is True
        url = f"http://127.0.0.1:{settings.serving_port}/v2/models/iris"
        status = page.inner_text("#svc-status")
        assert url in status
        assert "iris-predictor-00001 100%" in status
        assert "1 ready / 1 desired" in status
        # Served from a new version in MLflow's Model Registry, made from the best run.
        assert "storageUri: models:/irises/1" in page.inner_text("#svc-yaml")
        from mlflow import MlflowClient

        registry = MlflowClient(tracking_uri=f"sqlite:///{mlflow_db}")
        version = registry.get_model_version("irises", "1")
        assert version.run_id == best["mlflowRunId"]
        assert version.tags["hyperflow.trial"] == best["currentOptimalTrial"]["bestTrialName"]
        page.wait_for_selector("#svc-events td:text-is('RevisionReady')")
        # Reasons and messages, not the watch stream's ADDED/MODIFIED.
        assert page.locator("#svc-events th").all_inner_texts() == ["Time", "Reason", "Message"]
        assert "MODIFIED" not in page.inner_text("#svc-events")

        # Try it: the example (an iris setosa) through the router, in the service's
        # protocol: none given, so KServe's default V1.
        assert page.inner_text("label[for=try-body]") == "V1 predict request (JSON)"
        page.click("#try-send")
        page.wait_for_selector("#try-answer[data-status='200']")
        answer = page.inner_text("#try-answer")
        assert "/v1/models/iris:predict" in answer and '"predictions"' in answer
        direct = httpx.post(
            f"{url}/infer",
            json={
                "inputs": [
                    {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}
                ]
            },
            timeout=60,
        ).json()
        assert direct["outputs"][0]["data"] == [0]
        assert page.evaluate(
            "() => JSON.parse(document.querySelector('#try-answer').dataset.body).predictions"
        ) == [0]
        # A bad request is the router's 4xx, shown as such (not a failure of the page).
        page.fill("#try-body", '{"instances": "none"}')
        page.click("#try-send")
        page.wait_for_selector("#try-answer[data-status^='4']")

        # Requests through the router show as a rate and a latency (sampled from its metrics).
        for _ in range(20):
            httpx.post(
                f"{url}/infer",
                json={
                    "inputs": [
                        {
                            "name": "x",
                            "shape": [1, 4],
                            "datatype": "FP64",
                            "data": [6.7, 3.0, 5.2, 2.3],
                        }
                    ]
                },
                timeout=60,
            )
        page.wait_for_function(
            "() => (document.querySelector('#plot-rate')?.data?.[0]?.y || []).some((v) => v > 0)",
            timeout=30_000,
        )
        page.wait_for_function(
            "() => (document.querySelector('#plot-latency')?.data?.[0]?.y || []).some((v) => v > 0)"
        )
        # The x axis is the last hour, however few the samples.
        span = page.evaluate(
            "() => { const r = document.querySelector('#plot-rate').layout.xaxis.range;"
            " return (new Date(r[1]) - new Date(r[0])) / 1000; }"
        )
        assert span == 3600
        assert layout_problems(page) == []

        # The list: URL, ready, revisions and traffic, replicas.
        page.click('header nav a[data-nav="services"]')
        row = page.locator('#services tbody tr[data-key="default/iris"]')
        row.wait_for()
        text = row.inner_text()
        assert url in text and "Ready" in text and "iris-predictor-00001 100%" in text
        assert layout_problems(page) == []
        # At phone width too.
        page.set_viewport_size({"width": 390, "height": 844})
        assert layout_problems(page) == []
        page.goto(f"{server.url}/services/default/iris")
        page.wait_for_selector("#try-send")
        assert layout_problems(page) == []

        # A trial that saved a model offers "Deploy…" on its own page.
        trial = best["currentOptimalTrial"]["bestTrialName"]
        page.goto(f"{server.url}/experiments/default/irises/trials/{trial}")
        page.wait_for_selector("#deploy")
        # Leave the server's pages (their event streams would hold its shutdown open).
        page.goto("about:blank")
