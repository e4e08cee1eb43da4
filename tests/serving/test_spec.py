"""serving.spec: KServe examples load unchanged, the predictor is normalised, KPA knobs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from serving.spec import (
    SpecError,
    load_inference_services,
    parse_duration,
    parse_inference_service,
)
from tests.util import REPO, SHARED, needs_shared

KSERVE_EXAMPLES = sorted((SHARED / "kserve-examples").glob("*.yaml"))
kserve_examples = needs_shared("kserve-examples")
OUR_EXAMPLES = sorted((REPO / "examples" / "serving").glob("*.yaml"))


FRAMEWORKS = {"tensorflow", "pytorch", "triton", "huggingface", "pmml", "lightgbm", "paddle"}


def isvc_dict(**predictor: Any) -> dict[str, Any]:
    body = dict(predictor)
    if not {"model", "sklearn", "xgboost", "onnx", "containers", *FRAMEWORKS} & set(body):
        body["model"] = {"modelFormat": {"name": "sklearn"}, "storageUri": "./m"}
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "iris"},
        "spec": {"predictor": body},
    }


@kserve_examples
def test_kserve_examples_are_present() -> None:
    assert len(KSERVE_EXAMPLES) >= 6


@pytest.mark.parametrize("path", KSERVE_EXAMPLES + OUR_EXAMPLES, ids=lambda p: p.name)
def test_example_validates_and_round_trips(path: Path) -> None:
    (isvc,) = load_inference_services(path)
    assert isvc.base_dir == path.resolve().parent
    again = parse_inference_service(isvc.to_dict())
    assert again.to_dict() == isvc.to_dict()
    assert again.predictor.model_format == isvc.predictor.model_format


@kserve_examples
def test_v2_model_form() -> None:
    (isvc,) = load_inference_services(SHARED / "kserve-examples/01-sklearn-v2-modelformat.yaml")
    p = isvc.predictor
    assert (isvc.metadata.name, isvc.metadata.namespace) == ("sklearn-iris", "default")
    assert p.model_format == "sklearn"
    assert p.runtime == "kserve-sklearnserver"
    assert p.protocol_version == "v2"
    assert p.storage_uri == "gs://kfserving-examples/models/sklearn/1.0/model"
    assert p.effective_min_replicas == 1 and p.effective_max_replicas is None
    assert p.effective_scale_metric == "concurrency"
    assert p.canary_traffic_percent is None and p.batcher is None


@kserve_examples
def test_legacy_framework_form_is_normalised() -> None:
    (canary,) = load_inference_services(SHARED / "kserve-examples/04-canary.yaml")
    assert canary.predictor.model_format == "tensorflow"
    assert canary.predictor.storage_uri == "gs://kfserving-examples/models/tensorflow/flowers-2"
    assert canary.predictor.protocol_version == "v1"
    assert canary.predictor.runtime is None
    assert canary.predictor.canary_traffic_percent == 10
    (logger,) = load_inference_services(SHARED / "kserve-examples/06-logger.yaml")
    assert logger.predictor.model_format == "sklearn"
    assert logger.predictor.logger is not None and logger.predictor.logger.mode == "all"


@kserve_examples
def test_batcher_milliseconds_and_defaults() -> None:
    (isvc,) = load_inference_services(SHARED / "kserve-examples/05-batcher.yaml")
    batcher = isvc.predictor.batcher
    assert batcher is not None
    assert (batcher.max_batch_size, batcher.max_latency, batcher.timeout) == (16, 300, 60)
    empty = parse_inference_service(isvc_dict(batcher={}, sklearn={"storageUri": "m"}))
    assert empty.predictor.batcher is not None
    assert (empty.predictor.batcher.max_batch_size, empty.predictor.batcher.max_latency) == (
        32,
        5000,
    )


@kserve_examples
def test_hpa_and_transformer_examples() -> None:
    (hpa,) = load_inference_services(SHARED / "kserve-examples/03-hpa-standard-mode.yaml")
    knobs = hpa.autoscaling()
    assert (knobs.autoscaler_class, knobs.metric, knobs.target) == ("hpa", "cpu", 80.0)
    (kpa,) = load_inference_services(
        SHARED / "kserve-examples/02-kpa-autoscale-transformer-predictor.yaml"
    )
    assert kpa.spec.transformer is not None and kpa.spec.transformer.scale_metric == "rps"
    assert kpa.predictor.model_format == "pytorch"
    assert kpa.autoscaling().target == 2.0


def test_autoscaling_defaults_are_knatives() -> None:
    knobs = parse_inference_service(isvc_dict()).autoscaling()
    assert knobs.autoscaler_class == "kpa" and knobs.metric == "concurrency"
    assert (knobs.target, knobs.target_utilization_percentage) == (100.0, 70.0)
    assert knobs.target_per_replica == pytest.approx(70.0)
    assert (knobs.stable_window, knobs.panic_window) == (60.0, 6.0)
    assert knobs.panic_threshold_percentage == 200.0
    assert knobs.scale_to_zero_grace == 30.0
    assert (knobs.min_replicas, knobs.max_replicas, knobs.initial_scale) == (1, None, 1)
    assert not knobs.scale_to_zero


def test_autoscaling_from_annotations_and_predictor() -> None:
    data = isvc_dict(
        minReplicas=0,
        maxReplicas=5,
        scaleMetric="rps",
        scaleTarget=20,
        containerConcurrency=4,
        model={"modelFormat": {"name": "sklearn"}, "storageUri": "m"},
        annotations={"autoscaling.knative.dev/window": "2m"},
    )
    data["metadata"]["annotations"] = {
        "autoscaling.knative.dev/window": "30s",  # the predictor's annotation wins
        "autoscaling.knative.dev/panic-window-percentage": "20",
        "autoscaling.knative.dev/panic-threshold-percentage": 300,
        "autoscaling.knative.dev/target-utilization-percentage": "50",
        "autoscaling.knative.dev/scale-to-zero-pod-retention-period": "1m30s",
        "autoscaling.knative.dev/initial-scale": "2",
        "autoscaling.knative.dev/target": "999",  # scaleTarget wins
    }
    knobs = parse_inference_service(data).autoscaling()
    assert knobs.stable_window == 120.0 and knobs.panic_window == 24.0
    assert knobs.panic_threshold_percentage == 300.0
    assert knobs.target == 20.0 and knobs.target_per_replica == 10.0
    assert knobs.metric == "rps" and knobs.container_concurrency == 4
    assert knobs.scale_to_zero_grace == 90.0
    assert (knobs.min_replicas, knobs.max_replicas, knobs.initial_scale) == (0, 5, 2)
    assert knobs.scale_to_zero


def test_container_concurrency_is_the_default_target() -> None:
    data = isvc_dict(containerConcurrency=3, sklearn={"storageUri": "m"})
    assert parse_inference_service(data).autoscaling().target == 3.0


def test_min_and_max_scale_annotations() -> None:
    data = isvc_dict()
    data["metadata"]["annotations"] = {
        "autoscaling.knative.dev/min-scale": "2",
        "autoscaling.knative.dev/max-scale": "4",
    }
    knobs = parse_inference_service(data).autoscaling()
    assert (knobs.min_replicas, knobs.max_replicas, knobs.initial_scale) == (2, 4, 2)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("60s", 60.0), ("2m", 120.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0), ("15", 15.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "10x", "-5s", "1m 30s", "s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_custom_model_class_sources() -> None:
    by_runtime = parse_inference_service(
        isvc_dict(model={"modelFormat": {"name": "custom"}, "runtime": "pkg.mod:Model"})
    )
    assert by_runtime.predictor.model_format == "custom"
    assert by_runtime.predictor.model_class == "pkg.mod:Model"
    data = isvc_dict(model={"modelFormat": {"name": "Custom"}})
    data["metadata"]["annotations"] = {"hyperflow.io/model-class": "my_model:Iris"}
    by_annotation = parse_inference_service(data)
    assert by_annotation.predictor.model_format == "custom"
    assert by_annotation.predictor.model_class == "my_model:Iris"
    data["spec"]["predictor"]["annotations"] = {"hyperflow.io/model-class": "other:Cls"}
    assert parse_inference_service(data).predictor.model_class == "other:Cls"


def test_pod_fields_are_accepted_and_kept() -> None:
    data = isvc_dict(
        serviceAccountName="sa",
        nodeSelector={"gpu": "false"},
        tolerations=[],
        model={
            "modelFormat": {"name": "sklearn"},
            "storageUri": "m",
            "env": [{"name": "PREDICT_PROBA", "value": "true"}],
            "resources": {"limits": {"cpu": "1"}},
        },
    )
    isvc = parse_inference_service(data)
    assert isvc.predictor.pod_fields() == {
        "serviceAccountName": "sa",
        "nodeSelector": {"gpu": "false"},
        "tolerations": [],
    }
    assert isvc.predictor.env == {"PREDICT_PROBA": "true"}
    assert isvc.to_dict()["spec"]["predictor"]["serviceAccountName"] == "sa"


def test_yaml_string_and_status_are_accepted() -> None:
    text = (
        "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n"
        "metadata: {name: a, namespace: team-a, uid: x}\n"
        "spec: {predictor: {xgboost: {storageUri: ./m, protocolVersion: v2}}}\n"
        "status: {url: http://x}\n"
    )
    isvc = parse_inference_service(text, base_dir=Path("/tmp"))
    assert isvc.metadata.namespace == "team-a"
    assert isvc.predictor.model_format == "xgboost" and isvc.predictor.protocol_version == "v2"
    assert isvc.base_dir == Path("/tmp")
    assert "status" not in isvc.to_dict()


def test_multi_document_file(tmp_path: Path) -> None:
    one = (REPO / "examples/serving/sklearn-v1.yaml").read_text()
    two = (REPO / "examples/serving/custom.yaml").read_text()
    path = tmp_path / "both.yaml"
    path.write_text(f"{one}\n---\n{two}\n---\n")
    services = load_inference_services(path)
    assert [s.name for s in services] == ["iris", "iris-rules"]
    assert all(s.base_dir == tmp_path for s in services)


def test_multi_document_errors_are_numbered(tmp_path: Path) -> None:
    one = (REPO / "examples/serving/sklearn-v1.yaml").read_text()
    path = tmp_path / "dup.yaml"
    path.write_text(f"{one}\n---\n{one.replace('minReplicas: 1', 'minReplicas: -1')}\n---\n{one}")
    with pytest.raises(SpecError) as info:
        load_inference_services(path)
    assert info.value.lines() == [
        "document 2: spec.predictor.minReplicas: must be >= 0",
        "document 3: metadata.name: 'iris' is already defined by document 1",
    ]


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ("", "no InferenceService in file"),
        (
            "a: [1,\n",
            "invalid YAML: did not find expected node content at line 2, column 1",
        ),
        ("- 1\n", "an InferenceService must be a mapping, got list"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: str, line: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(content)
    with pytest.raises(SpecError) as info:
        load_inference_services(path)
    assert info.value.lines() == [line]
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_inference_services(tmp_path / "nope.yaml")
    assert info.value.lines() == ["file not found"]


def _set(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    node = data
    *parents, last = dotted.split("/")
    for key in parents:
        node = node.setdefault(key, {})
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return data


_DELETE = object()
MODEL = "spec/predictor/model"
PRED = "spec/predictor"

MALFORMED: list[tuple[str, Any, str]] = [
    ("apiVersion", "serving.kserve.io/v1alpha9", "apiVersion: must be 'serving.kserve.io/v1beta1'"),
    ("apiVersion", "kubeflow.org/v1beta1", "apiVersion: must be 'serving.kserve.io/v1beta1'"),
    ("kind", "Experiment", "kind: must be 'InferenceService', got 'Experiment'"),
    ("metadata", _DELETE, "metadata: required"),
    ("metadata/name", _DELETE, "metadata.name: required"),
    ("metadata/name", "Iris", "metadata.name: 'Iris' is not a valid name"),
    ("metadata/name", "1iris", "metadata.name: '1iris' is not a valid name"),
    ("metadata/name", "iris-", "metadata.name: 'iris-' is not a valid name"),
    ("metadata/name", "a" * 64, "metadata.name: '" + "a" * 64 + "' is not a valid name"),
    ("metadata/namespace", "Team_A", "metadata.namespace: 'Team_A' is not a valid DNS-1123"),
    ("spec", _DELETE, "spec: required"),
    ("spec/predictor", _DELETE, "spec.predictor: required"),
    ("spec/predictor", "sklearn", "spec.predictor: must be a mapping, got str"),
    ("spec/extra", 1, "spec.extra: unknown field"),
    (f"{PRED}/minReplicas", -1, "spec.predictor.minReplicas: must be >= 0"),
    (f"{PRED}/minReplicas", "two", "spec.predictor.minReplicas: must be an integer, got 'two'"),
    (f"{PRED}/maxReplicas", -3, "spec.predictor.maxReplicas: must be >= 0 (0 means no limit)"),
    (f"{PRED}/maxReplicas", 0.5, "spec.predictor.maxReplicas: must be an integer, got 0.5"),
    (f"{PRED}/scaleTarget", 0, "spec.predictor.scaleTarget: must be > 0"),
    (
        f"{PRED}/scaleMetric",
        "gpu",
        "spec.predictor.scaleMetric: must be one of 'concurrency', 'rps', 'cpu' or 'memory', got 'gpu'",
    ),
    (
        f"{PRED}/containerConcurrency",
        -1,
        "spec.predictor.containerConcurrency: must be >= 0 (0 means no limit)",
    ),
    (
        f"{PRED}/canaryTrafficPercent",
        101,
        "spec.predictor.canaryTrafficPercent: must be between 0 and 100",
    ),
    (
        f"{PRED}/canaryTrafficPercent",
        -1,
        "spec.predictor.canaryTrafficPercent: must be between 0 and 100",
    ),
    (f"{PRED}/timeout", 0, "spec.predictor.timeout: must be > 0 (seconds)"),
    (f"{PRED}/batcher", {"maxBatchSize": 0}, "spec.predictor.batcher.maxBatchSize: must be >= 1"),
    (
        f"{PRED}/batcher",
        {"maxLatency": 0},
        "spec.predictor.batcher.maxLatency: must be > 0 (milliseconds)",
    ),
    (f"{PRED}/batcher", {"timeout": -1}, "spec.predictor.batcher.timeout: must be > 0 (seconds)"),
    (f"{PRED}/batcher", {"maxBatch": 8}, "spec.predictor.batcher.maxBatch: unknown field"),
    (
        f"{PRED}/logger",
        {"mode": "everything"},
        "spec.predictor.logger.mode: must be one of 'all', 'request' or 'response', got 'everything'",
    ),
    (
        f"{PRED}/replicas",
        3,
        "spec.predictor.replicas: unknown field (not an InferenceService component or Kubernetes PodSpec field)",
    ),
    (
        f"{PRED}/sklearn",
        {"storageUri": "m"},
        "spec.predictor: exactly one of [model, sklearn, xgboost, tensorflow, pytorch, triton, onnx, huggingface, pmml, lightgbm, paddle, containers] must be specified (found: model, sklearn)",
    ),
    (
        MODEL,
        _DELETE,
        "spec.predictor: exactly one of [model, sklearn, xgboost, tensorflow, pytorch, triton, onnx, huggingface, pmml, lightgbm, paddle, containers] must be specified",
    ),
    (f"{MODEL}/modelFormat", _DELETE, "spec.predictor.model.modelFormat: required"),
    (f"{MODEL}/modelFormat/name", "", "spec.predictor.model.modelFormat.name: must not be empty"),
    (
        f"{MODEL}/modelFormat/flavour",
        "x",
        "spec.predictor.model.modelFormat.flavour: unknown field",
    ),
    (
        f"{MODEL}/storageURI",
        "m",
        "spec.predictor.model.storageURI: unknown field; did you mean 'storageUri'?",
    ),
    (f"{MODEL}/storageUri", "", "spec.predictor.model.storageUri: must not be empty"),
    (
        f"{MODEL}/protocolVersion",
        "v3",
        "spec.predictor.model.protocolVersion: must be one of 'v1', 'v2' or 'grpc-v2', got 'v3'",
    ),
    (f"{MODEL}/env", [{"value": "1"}], "spec.predictor.model.env[0].name: required"),
    (
        f"{MODEL}/modelFormat/name",
        "custom",
        "spec.predictor.model.runtime: modelFormat 'custom' needs the model class",
    ),
    (
        f"{PRED}/annotations",
        {"hyperflow.io/model-class": "not a ref"},
        "spec.predictor.annotations.hyperflow.io/model-class: must be 'module:Class'",
    ),
    (
        "metadata/annotations",
        {"autoscaling.knative.dev/window": "soon"},
        "metadata.annotations.autoscaling.knative.dev/window: invalid duration 'soon'",
    ),
    (
        "metadata/annotations",
        {"autoscaling.knative.dev/window": "2h"},
        "metadata.annotations.autoscaling.knative.dev/window: must be between 6 and 3600",
    ),
    (
        "metadata/annotations",
        {"autoscaling.knative.dev/panic-threshold-percentage": "50"},
        "metadata.annotations.autoscaling.knative.dev/panic-threshold-percentage: must be between 110 and 1000",
    ),
    (
        "metadata/annotations",
        {"autoscaling.knative.dev/target-utilization-percentage": "0"},
        "metadata.annotations.autoscaling.knative.dev/target-utilization-percentage: must be between 1 and 100",
    ),
    (
        "metadata/annotations",
        {"autoscaling.knative.dev/initial-scale": "many"},
        "metadata.annotations.autoscaling.knative.dev/initial-scale: must be an integer, got 'many'",
    ),
    (
        "metadata/annotations",
        {"autoscaling.knative.dev/metric": "gpu"},
        "metadata.annotations.autoscaling.knative.dev/metric: must be one of concurrency, rps, cpu, memory",
    ),
    (
        "metadata/annotations",
        {"serving.kserve.io/autoscalerClass": "vpa"},
        "metadata.annotations.serving.kserve.io/autoscalerClass: must be one of hpa, keda, external, none",
    ),
    (
        "spec/transformer",
        {"minReplicas": -2, "containers": [{"image": "x"}]},
        "spec.transformer.minReplicas: must be >= 0",
    ),
    # KServe's int32 (a float() of this one overflowed in the autoscaling rules: a crash).
    (
        "spec/predictor",
        {"scaleTarget": 10**400},
        "spec.predictor.scaleTarget: must be <= 2147483647, got 1000",
    ),
    # As KServe's CRD types: an integer, not true (1) nor a string.
    (
        "spec/predictor",
        {"minReplicas": True},
        "spec.predictor.minReplicas: must be an integer",
    ),
    (
        "spec/predictor",
        {"maxReplicas": "3"},
        "spec.predictor.maxReplicas: must be an integer",
    ),
    (
        "spec/predictor",
        {"batcher": {"maxLatency": 2**31}},
        "spec.predictor.batcher.maxLatency: must be <= 2147483647, got 2147483648",
    ),
    (
        "metadata/annotations",
        {"autoscaling.knative.dev/max-scale": 2**31},
        "metadata.annotations.autoscaling.knative.dev/max-scale: must be between 0 and 2147483647",
    ),
    (
        "metadata/annotations",
        {"autoscaling.knative.dev/scale-to-zero-pod-retention-period": "inf"},
        "metadata.annotations.autoscaling.knative.dev/scale-to-zero-pod-retention-period: "
        "must be between 0 and 9.22337e+09",
    ),
    # YAML's 0xfff... (5,000 digits) is an integer Python cannot write in decimal.
    (
        "metadata",
        {"name": 16**5000 - 1},
        "metadata.name: must be a string, got an integer of 20000 bits",
    ),
]


@pytest.mark.parametrize(
    ("where", "value", "line"), MALFORMED, ids=[f"{i}-{m[0]}" for i, m in enumerate(MALFORMED)]
)
def test_malformed(where: str, value: Any, line: str) -> None:
    data = _set(isvc_dict(minReplicas=1), where, value)
    with pytest.raises(SpecError) as info:
        parse_inference_service(data)
    lines = info.value.lines()
    assert any(got.startswith(line) for got in lines), lines
    assert all(isinstance(e.path, str) for e in info.value.errors)


def test_min_greater_than_max() -> None:
    data = isvc_dict(minReplicas=3, maxReplicas=2, sklearn={"storageUri": "m"})
    with pytest.raises(SpecError) as info:
        parse_inference_service(data)
    assert info.value.lines() == [
        "spec.predictor.maxReplicas: must be >= minReplicas (3) or 0 for no limit"
    ]


def test_max_zero_means_unbounded_and_min_zero_is_scale_to_zero() -> None:
    isvc = parse_inference_service(
        isvc_dict(minReplicas=0, maxReplicas=0, onnx={"storageUri": "m"})
    )
    assert isvc.predictor.effective_min_replicas == 0
    assert isvc.predictor.effective_max_replicas is None


def test_every_unknown_field_is_reported_at_once_with_a_hint() -> None:
    # storageURI fails parsing; minReplica (a predictor key, which may be a PodSpec field)
    # is checked after parsing: both are reported in one round.
    data = isvc_dict(
        minReplica=0,
        model={"modelFormat": {"name": "sklearn"}, "storageURI": "./m"},
        batcher={"maxBatch": 8},
    )
    data["spec"]["transformer"] = {"containers": [{"image": "t"}], "xyzzy": 1}
    with pytest.raises(SpecError) as info:
        parse_inference_service(data)
    pod = "unknown field (not an InferenceService component or Kubernetes PodSpec field)"
    assert sorted(info.value.lines()) == [
        "spec.predictor.batcher.maxBatch: unknown field; did you mean 'maxBatchSize'?",
        f"spec.predictor.minReplica: {pod}; did you mean 'minReplicas'?",
        "spec.predictor.model.storageURI: unknown field; did you mean 'storageUri'?",
        f"spec.transformer.xyzzy: {pod}",
    ]


def test_every_error_is_reported_at_once() -> None:
    data = isvc_dict(
        minReplicas=-1,
        canaryTrafficPercent=150,
        batcher={"maxBatchSize": 0},
        model={"modelFormat": {"name": "sklearn"}, "storageUri": "m"},
    )
    data["metadata"]["name"] = "Bad"
    with pytest.raises(SpecError) as info:
        parse_inference_service(data)
    assert [e.path for e in info.value.errors] == [
        "metadata.name",
        "spec.predictor.minReplicas",
        "spec.predictor.canaryTrafficPercent",
        "spec.predictor.batcher.maxBatchSize",
    ]


def test_unrunnable_formats_and_schemes_still_validate() -> None:
    for key in ("tensorflow", "pytorch", "triton", "huggingface", "pmml", "paddle"):
        isvc = parse_inference_service(isvc_dict(**{key: {"storageUri": "s3://b/m"}}))
        assert isvc.predictor.model_format == key
    for uri in ("gs://b/m", "s3://b/m", "https://x/m.joblib", "pvc://claim/m"):
        data = isvc_dict(model={"modelFormat": {"name": "sklearn"}, "storageUri": uri})
        assert parse_inference_service(data).predictor.storage_uri == uri
    grpc = isvc_dict(
        model={"modelFormat": {"name": "sklearn"}, "storageUri": "m", "protocolVersion": "grpc-v2"}
    )
    assert parse_inference_service(grpc).predictor.protocol_version == "grpc-v2"
    containers = isvc_dict(containers=[{"name": "kserve-container", "image": "my/model:1"}])
    assert parse_inference_service(containers).predictor.model_format is None
