"""The digits example tuned by the server, its best model deployed in one command: a new
version in the MLflow Model Registry, an InferenceService serving ``models:/NAME/VERSION``
that answers V1 and V2 predictions as the registered model predicts."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import joblib
import numpy as np
import yaml
from sklearn.datasets import load_digits

from tests.hyperflow.conftest import experiment, serve_plane, server_settings, wait_ready
from tests.util import REPO, run_hyperflow, wait_until

EXAMPLES = REPO / "examples" / "experiments"
API = "/apis/v1/namespaces/default"


def _digits_experiment(folder: Path) -> dict:
    shutil.copy(EXAMPLES / "train_digits.py", folder)
    doc = yaml.safe_load((EXAMPLES / "sklearn-digits.yaml").read_text())
    doc["metadata"]["annotations"] = {"hyperflow.io/base-dir": str(folder)}
    doc["spec"].update({"maxTrialCount": 3, "parallelTrialCount": 2})
    doc["spec"]["objective"].pop("goal")
    container = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"]
    container[0]["command"].append("--folds=2")
    return doc


def test_deploy_best_registers_and_serves_the_digits_model(
    hyperflow_home: Path, mlflow_db: Path, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    settings = server_settings(hyperflow_home, track=True)
    with serve_plane(settings) as server:
        http = server.http
        r = http.post(f"{API}/experiments", json=_digits_experiment(tmp_path))
        assert r.status_code == 201, r.text

        def finished() -> bool:
            status = http.get(f"{API}/experiments/sklearn-digits").json()["status"]
            return bool(status.get("completionTime"))

        wait_until(finished, timeout=300, interval=0.5)
        best = http.get(f"{API}/experiments/sklearn-digits/best").json()
        trial = best["currentOptimalTrial"]["bestTrialName"]

        out = run_hyperflow(
            "experiment", "deploy-best", "sklearn-digits", "--service", "digits", "--wait",
            "--server", server.url, timeout=300,
        )  # fmt: skip
        assert out.returncode == 0, out.stdout + out.stderr
        lines = out.stdout.splitlines()
        assert lines[0] == (
            f"registered model sklearn-digits version 1 (from runs:/{best['mlflowRunId']}/model, "
            f"trial {trial})"
        )
        assert lines[1] == (
            "inferenceservice.serving.kserve.io/digits created "
            "(storageUri models:/sklearn-digits/1)"
        )
        url = f"http://127.0.0.1:{settings.serving_port}/v2/models/digits"
        assert lines[2:] == [f"URL: {url}", "inferenceservice digits is Ready"]

        registry = MlflowClient(tracking_uri=f"sqlite:///{mlflow_db}")
        version = registry.get_model_version("sklearn-digits", "1")
        assert version.run_id == best["mlflowRunId"] and version.tags["hyperflow.trial"] == trial
        isvc = http.get(f"{API}/inferenceservices/digits").json()
        model = isvc["spec"]["predictor"]["model"]
        assert model == {
            "modelFormat": {"name": "sklearn"},
            "storageUri": "models:/sklearn-digits/1",
        }
        assert isvc["metadata"]["annotations"]["hyperflow.io/trial"] == trial

        # The served model is the registered one: the same predictions, over V1 and V2.
        import mlflow.artifacts

        files = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri="models:/sklearn-digits/1",
                dst_path=str(tmp_path / "registered"),
                tracking_uri=f"sqlite:///{mlflow_db}",
            )
        )
        registered = joblib.load(next(files.rglob("*.joblib")))
        x = load_digits().data[:8] / 16.0
        expected = registered.predict(x).tolist()
        v1 = httpx.post(
            url.replace("/v2/", "/v1/") + ":predict", json={"instances": x.tolist()}, timeout=60
        )
        assert v1.status_code == 200 and v1.json() == {"predictions": expected}
        v2 = httpx.post(
            f"{url}/infer",
            json={
                "inputs": [
                    {
                        "name": "x",
                        "shape": list(x.shape),
                        "datatype": "FP64",
                        "data": x.ravel().tolist(),
                    }
                ]
            },
            timeout=60,
        )
        assert v2.status_code == 200 and v2.json()["outputs"][0]["data"] == expected
        assert np.mean(np.array(expected) == load_digits().target[:8]) >= 0.75

        # Again, as a canary: version 2, a new revision with 30% of the traffic.
        again = http.post(
            f"{API}/experiments/sklearn-digits/deploy-best",
            json={"service": "digits", "canaryTrafficPercent": 30},
        )
        assert again.status_code == 200, again.text
        assert again.json()["registeredModel"]["version"] == "2" and not again.json()["created"]
        ready = wait_ready(http, "digits")
        predictor = ready["status"]["components"]["predictor"]
        assert [(t["revisionName"], t["percent"]) for t in predictor["traffic"]] == [
            ("digits-predictor-00001", 70),
            ("digits-predictor-00002", 30),
        ]
        assert ready["spec"]["predictor"]["model"]["storageUri"] == "models:/sklearn-digits/2"

        # What cannot be deployed says why.
        unknown = run_hyperflow(
            "experiment", "deploy-best", "nope", "--service", "x", "--server", server.url
        )
        assert unknown.returncode == 1 and 'experiments "nope" not found' in unknown.stderr
        r = http.post(
            f"{API}/experiments", json=experiment("plain", tmp_path, max_trials=1, parallel=1)
        )
        assert r.status_code == 201
        wait_until(
            lambda: bool(
                http.get(f"{API}/experiments/plain").json()["status"].get("completionTime")
            ),
            timeout=60,
        )
        nothing = http.post(f"{API}/experiments/plain/deploy-best", json={"service": "x"})
        assert nothing.status_code == 409 and "saved no model" in nothing.json()["error"]
        bad = http.post(f"{API}/experiments/plain/deploy-best", json={"service": "Bad_Name"})
        assert bad.status_code == 422 and bad.json()["details"][0]["path"] == "service"
