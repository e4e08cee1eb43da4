"""KServe fields read as KServe reads them: ``storage:`` specs, sidecar containers, the
apiVersion said first, and ``validate`` agreeing with what ``run`` will do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from serving.local import revision_specs
from serving.runtimes import UnsupportedModelError, create_model, deploy_problems
from serving.spec import SpecError, load_inference_services, parse_inference_service
from tests.util import run_hyperflow


def isvc(predictor: dict[str, Any], api_version: str = "serving.kserve.io/v1beta1") -> str:
    import yaml  # type: ignore[import-untyped]

    return yaml.safe_dump(
        {
            "apiVersion": api_version,
            "kind": "InferenceService",
            "metadata": {"name": "iris"},
            "spec": {"predictor": predictor},
        }
    )


STORAGE_SPEC = {
    "model": {
        "modelFormat": {"name": "sklearn"},
        "storage": {"key": "localMinIO", "path": "sklearn/model", "parameters": {"bucket": "m"}},
    }
}


def test_storage_spec_is_reported_as_not_available_locally(tmp_path: Path) -> None:
    (tmp_path / "sklearn" / "model").mkdir(parents=True)  # not a local path either way
    (tmp_path / "s.yaml").write_text(isvc(STORAGE_SPEC))
    r = run_hyperflow("serve", "validate", "-f", str(tmp_path / "s.yaml"))
    assert r.returncode == 0, r.stderr
    assert "storageUri -" in r.stdout
    assert (
        "note: cannot run locally: spec.predictor.model.storage: KServe's storage spec "
        "(key 'localMinIO', path 'sklearn/model') names an entry of the cluster's "
        "storage-config secret, which is not available locally"
    ) in r.stdout
    (service,) = load_inference_services(tmp_path / "s.yaml")
    with pytest.raises(UnsupportedModelError, match="storage-config secret"):
        create_model("iris", service.predictor, tmp_path)


def test_sidecar_containers_beside_a_model_are_accepted(tmp_path: Path) -> None:
    sidecars = {
        **STORAGE_SPEC,
        "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "./m"},
        "containers": [{"name": "log-shipper", "image": "fluent-bit"}, {"image": "envoy"}],
    }
    (tmp_path / "m").mkdir()
    (tmp_path / "s.yaml").write_text(isvc(sidecars))
    r = run_hyperflow("serve", "validate", "-f", str(tmp_path / "s.yaml"))
    assert r.returncode == 0, r.stderr + r.stdout
    assert "format sklearn" in r.stdout
    assert (
        "note: spec.predictor.containers: sidecar container(s) 'log-shipper', "
        "'containers[1]' are not run locally (only the predictor is)"
    ) in r.stdout
    (service,) = load_inference_services(tmp_path / "s.yaml")
    assert service.predictor.implementations() == ["model"]
    assert deploy_problems(service.predictor) == []
    (spec,) = revision_specs([service])
    assert spec.notes and "log-shipper" in spec.notes[0]


def test_a_transformer_explainer_and_logger_are_noted_as_not_run(tmp_path: Path) -> None:
    # They were dropped without a word: requests skipped the transformer's pre-processing.
    import yaml  # type: ignore[import-untyped]

    (tmp_path / "m").mkdir()
    document = yaml.safe_load(
        isvc(
            {
                "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "./m"},
                "logger": {"mode": "all", "url": "http://message-dumper"},
            }
        )
    )
    document["spec"]["transformer"] = {"containers": [{"name": "t", "image": "my/transformer"}]}
    document["spec"]["explainer"] = {"containers": [{"name": "e", "image": "my/explainer"}]}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(document))
    r = run_hyperflow("serve", "validate", "-f", str(tmp_path / "s.yaml"))
    assert r.returncode == 0, r.stderr + r.stdout
    for note in (
        "note: spec.transformer: not run locally: requests go straight to the predictor",
        "note: spec.explainer: not run locally (no :explain endpoint)",
        "note: spec.predictor.logger: not run locally: requests and responses are not sent "
        "to http://message-dumper",
    ):
        assert note in r.stdout, r.stdout
    (service,) = load_inference_services(tmp_path / "s.yaml")
    (spec,) = revision_specs([service])
    assert len(spec.notes) == 3  # what `serve run` prints at start


def test_a_kserve_container_beside_a_model_is_two_predictors() -> None:
    both = {
        "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "./m"},
        "containers": [{"name": "kserve-container", "image": "my/predictor"}],
    }
    with pytest.raises(SpecError) as info:
        parse_inference_service(isvc(both))
    (error,) = info.value.errors
    assert error.path == "spec.predictor"
    assert "(found: model, containers)" in error.message
    assert "'kserve-container' is the predictor" in error.message
    # Containers alone: the first (or kserve-container) is the predictor, the rest sidecars.
    alone = parse_inference_service(
        isvc({"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]})
    )
    assert alone.predictor.implementations() == ["containers"]
    assert alone.predictor.sidecars == ["b"]


@pytest.mark.parametrize(
    ("api_version", "hint"),
    [
        ("serving.kserve.io/v1alpha2", "v1alpha2 InferenceServices (KFServing) are not read"),
        ("serving.kubeflow.org/v1alpha2", "spec.default.predictor is spec.predictor"),
        ("serving.kubeflow.org/v1beta1", "KFServing's v1beta1 has the same fields"),
        ("serving.kserve.io/v2", None),
    ],
)
def test_api_version_is_said_first_and_alone(
    tmp_path: Path, api_version: str, hint: str | None
) -> None:
    v1alpha2 = isvc({}, api_version).replace(
        "predictor: {}", "default:\n    predictor:\n      sklearn: {storageUri: gs://m}"
    )
    (tmp_path / "old.yaml").write_text(v1alpha2)
    r = run_hyperflow("serve", "validate", "-f", str(tmp_path / "old.yaml"))
    assert r.returncode == 1
    lines = [ln.strip() for ln in r.stderr.splitlines()[1:]]
    assert len(lines) == 1, r.stderr  # nothing about spec.predictor or spec.default
    assert lines[0].startswith(
        f"apiVersion: must be 'serving.kserve.io/v1beta1', got '{api_version}'"
    )
    if hint:
        assert hint in lines[0]


def test_validate_and_run_agree_on_cpu_scaling(tmp_path: Path) -> None:
    # serving.kserve.io/metric: cpu was read as a concurrency target of 60.
    (tmp_path / "hpa.yaml").write_text(
        "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n"
        "metadata:\n  name: iris\n  annotations:\n    serving.kserve.io/metric: cpu\n"
        '    serving.kserve.io/targetUtilizationPercentage: "60"\n'
        "spec:\n  predictor:\n    maxReplicas: 3\n    model:\n      modelFormat: {name: sklearn}\n"
        "      storageUri: ./m\n      resources: {requests: {cpu: 500m}}\n"
    )
    r = run_hyperflow("serve", "validate", "-f", str(tmp_path / "hpa.yaml"))
    assert r.returncode == 0, r.stderr
    assert "replicas 1..3, HPA on cpu 60% of 0.5 core" in r.stdout
    assert "concurrency" not in r.stdout and "not supported" not in r.stdout
    (spec,) = revision_specs(load_inference_services(tmp_path / "hpa.yaml"))
    horizontal = spec.horizontal  # what serve run scales with
    assert horizontal is not None
    assert (horizontal.metric, horizontal.target, horizontal.resource_request) == ("cpu", 60, 0.5)
    assert f"HPA on {horizontal.describe()}" in r.stdout
