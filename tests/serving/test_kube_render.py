"""``hyperflow serve render`` / ``serve deploy --kubernetes``: every rendered object is
valid on every Kubernetes version KServe supports (official schemas, strict), and deploy
applies them to the Kubernetes API stand-in (tests/kube/standin.py)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from serving.cli import app
from serving.initializer import main as initializer_main
from serving.spec import parse_inference_service
from tests.kube import schemas
from tests.kube.standin import KubeApiStandIn

runner = CliRunner()

ISVC = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: iris
  labels: {team: ml}
spec:
  predictor:
    minReplicas: 2
    maxReplicas: 5
    scaleMetric: cpu
    scaleTarget: 60
    serviceAccountName: models
    model:
      modelFormat: {name: sklearn}
      protocolVersion: v2
      storageUri: {uri}
"""


def isvc_file(
    tmp_path: Path, uri: str = "gs://kfserving-examples/models/sklearn/1.0/model", extra: str = ""
) -> Path:
    path = tmp_path / "isvc.yaml"
    path.write_text(ISVC.replace("{uri}", uri) + textwrap.dedent(extra))
    return path


def render(*args: str) -> list[dict[str, Any]]:
    result = runner.invoke(app, ["render", *args])
    assert result.exit_code == 0, result.output
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def test_target_kserve_is_the_inference_service_valid_for_kserve(tmp_path: Path) -> None:
    [isvc] = render("-f", str(isvc_file(tmp_path)), "--target", "kserve", "-n", "models")
    assert (isvc["apiVersion"], isvc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    assert isvc["metadata"] == {"name": "iris", "namespace": "models", "labels": {"team": "ml"}}
    assert isvc["spec"]["predictor"]["model"]["storageUri"].startswith("gs://")
    assert isvc["spec"]["predictor"]["serviceAccountName"] == "models"
    for version in schemas.kserve_versions():  # metadata and containers by the official schemas
        api = KubeApiStandIn(kubernetes_version=version)  # its checks, not its server
        api._validate(api._kind_of("serving.kserve.io/v1beta1", "InferenceService"), isvc)


def test_target_deployment_is_what_kserve_raw_mode_makes(tmp_path: Path) -> None:
    objects = render(
        "-f",
        str(isvc_file(tmp_path)),
        "--target",
        "deployment",
        "--image",
        "reg.example/hyperflow:1",
    )
    assert [o["kind"] for o in objects] == ["Deployment", "Service", "HorizontalPodAutoscaler"]
    for obj in objects:
        schemas.assert_valid(obj)  # every version KServe supports, strict
        assert obj["metadata"]["name"] == "iris-predictor"
    deployment, service, hpa = objects
    pod = deployment["spec"]["template"]["spec"]
    # the HPA owns the replica count: a Deployment `replicas` would reset it on each apply
    assert "replicas" not in deployment["spec"] and hpa["spec"]["minReplicas"] == 2
    assert pod["serviceAccountName"] == "models"
    [init] = pod["initContainers"]
    assert init["name"] == "storage-initializer"
    assert init["image"].startswith("kserve/storage-initializer:")
    assert init["args"] == ["gs://kfserving-examples/models/sklearn/1.0/model", "/mnt/models"]
    [server] = pod["containers"]
    assert server["name"] == "kserve-container" and server["image"] == "reg.example/hyperflow:1"
    assert server["command"] == ["python", "-m", "serving.replica"]
    args = server["args"]
    served = parse_inference_service(json.loads(args[args.index("--isvc-json") + 1]))
    assert served.predictor.storage_uri == "/mnt/models" and served.name == "iris"
    assert args[args.index("--host") + 1] == "0.0.0.0"
    token = server["env"][0]
    assert token["name"] == "HYPERFLOW_REPLICA_TOKEN"
    assert token["valueFrom"]["secretKeyRef"] == {"name": "iris-token", "key": "token"}
    assert {"name": "kserve-provision-location", "emptyDir": {}} in pod["volumes"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"] == selector
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["targetPort"] == 8080
    assert hpa["spec"]["scaleTargetRef"]["name"] == "iris-predictor"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    assert hpa["spec"]["metrics"][0]["resource"] == {
        "name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": 60},
    }


def test_storage_uris_a_cluster_can_and_cannot_read(tmp_path: Path) -> None:
    objects = render(
        "-f", str(isvc_file(tmp_path, "pvc://models-pvc/iris/v1")), "--target", "deployment"
    )
    pod = objects[0]["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    assert pod["volumes"] == [
        {
            "name": "kserve-pvc-source",
            "persistentVolumeClaim": {"claimName": "models-pvc", "readOnly": True},
        }
    ]
    args = pod["containers"][0]["args"]
    assert json.loads(args[1])["spec"]["predictor"]["model"]["storageUri"] == "/mnt/pvc/iris/v1"
    schemas.assert_valid(objects[0])

    mlflow = isvc_file(tmp_path, "models:/iris/3")
    objects = render(
        "-f", str(mlflow), "--target", "deployment", "--mlflow-tracking-uri", "http://mlflow:5000"
    )
    [init] = objects[0]["spec"]["template"]["spec"]["initContainers"]
    assert init["command"] == ["python", "-m", "serving.initializer"]
    assert init["env"] == [{"name": "MLFLOW_TRACKING_URI", "value": "http://mlflow:5000"}]
    schemas.assert_valid(objects[0])

    for uri, target, message in [
        ("./model", "deployment", "is a path on this machine"),
        ("file:///srv/model", "kserve", "is a path on this machine"),
        ("models:/iris/3", "kserve", "does not read MLflow's models:/ URIs"),
        ("models:/iris/3", "deployment", "--mlflow-tracking-uri"),
    ]:
        result = runner.invoke(
            app,
            ["render", "-f", str(isvc_file(tmp_path, uri)), "--target", target],
            env={"MLFLOW_TRACKING_URI": ""},
        )
        assert result.exit_code == 1, result.output
        assert "spec.predictor.model.storageUri: " in result.stderr and message in result.stderr


def test_what_a_deployment_cannot_express_is_an_error_naming_the_field(tmp_path: Path) -> None:
    path = isvc_file(tmp_path).read_text().replace("scaleMetric: cpu", "scaleMetric: concurrency")
    (tmp_path / "c.yaml").write_text(
        path.replace("minReplicas: 2", "minReplicas: 2\n    canaryTrafficPercent: 10")
    )
    result = runner.invoke(
        app, ["render", "-f", str(tmp_path / "c.yaml"), "--target", "deployment"]
    )
    assert result.exit_code == 1
    assert "spec.predictor.scaleMetric: concurrency needs Knative" in result.stderr
    assert "spec.predictor.canaryTrafficPercent" in result.stderr
    assert (
        runner.invoke(app, ["render", "-f", str(tmp_path / "c.yaml"), "--target", "x"]).exit_code
        == 2
    )


def test_deploy_applies_to_the_cluster_and_again_without_change(
    tmp_path: Path, kube_api: KubeApiStandIn
) -> None:
    path = str(isvc_file(tmp_path))
    result = runner.invoke(app, ["deploy", "-f", path])
    assert result.exit_code == 2 and "--kubernetes" in result.stderr
    args = ["deploy", "--kubernetes", "-f", path, "--server", kube_api.url]
    for _ in range(2):  # server-side apply: the second time changes nothing
        result = runner.invoke(app, [*args, "--target", "deployment"])
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines() == [
            "deployment.apps/iris-predictor serverside-applied",
            "service/iris-predictor serverside-applied",
            "horizontalpodautoscaler.autoscaling/iris-predictor serverside-applied",
        ]
    [deployment] = kube_api.objects("apps/v1", "Deployment")
    assert deployment["metadata"]["generation"] == 1
    assert kube_api.get_object("autoscaling/v2", "HorizontalPodAutoscaler", "iris-predictor")
    result = runner.invoke(app, [*args, "--target", "kserve"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "inferenceservice.serving.kserve.io/iris serverside-applied"
    assert kube_api.get_object("serving.kserve.io/v1beta1", "InferenceService", "iris")
    # The API server's refusal is an error, not a success.
    result = runner.invoke(app, [*args, "--target", "kserve", "-n", "nowhere"])
    assert result.exit_code == 1 and 'namespaces "nowhere" not found' in result.stderr


def test_the_initializer_puts_the_model_files_in_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.joblib").write_bytes(b"weights")
    assert initializer_main([str(model), str(tmp_path / "mnt")]) == 0
    assert (tmp_path / "mnt" / "model.joblib").read_bytes() == b"weights"
    assert initializer_main(["s3://bucket/x", str(tmp_path / "mnt")]) == 1
    assert "not supported" in capsys.readouterr().err
