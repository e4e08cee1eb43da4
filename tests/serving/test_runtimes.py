"""serving.runtimes: every runtime loads a tiny model trained here and predicts like its
framework; deploy-time refusals and load failures carry clear messages."""

from __future__ import annotations

import asyncio
import inspect
import pickle
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from serving.protocol import InvalidInput
from serving.runtimes import (
    ArrayModel,
    Model,
    ModelLoadError,
    StorageError,
    UnsupportedModelError,
    create_model,
    deploy_problems,
    model_problems,
    supported_formats,
)
from serving.spec import PredictorSpec, parse_inference_service

FEATURES, LABELS = load_iris(return_X_y=True)
SAMPLE = FEATURES[::15]  # 10 rows, all three classes


def predictor(model: dict[str, Any], **fields: Any) -> PredictorSpec:
    data = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "iris"},
        "spec": {"predictor": {"model": model, **fields}},
    }
    return parse_inference_service(data).predictor


def model_spec(fmt: str, uri: str | None = None, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"modelFormat": {"name": fmt}, **extra}
    if uri is not None:
        spec["storageUri"] = uri
    return spec


@pytest.fixture(scope="module")
def classifier() -> LogisticRegression:
    return LogisticRegression(max_iter=500).fit(FEATURES, LABELS)


@dataclass
class Case:
    """A tiny model on disk and what its framework itself predicts for SAMPLE."""

    fmt: str
    uri: str
    expected: np.ndarray


def _sklearn(tmp: Path, clf: LogisticRegression) -> Case:
    import joblib

    (tmp / "model").mkdir()
    joblib.dump(clf, tmp / "model" / "model.joblib")
    return Case("sklearn", "model", clf.predict(SAMPLE))


def _sklearn_pickle_file(tmp: Path, clf: LogisticRegression) -> Case:
    (tmp / "clf.pkl").write_bytes(pickle.dumps(clf))
    return Case("sklearn", "file://clf.pkl", clf.predict(SAMPLE))


def _xgboost(tmp: Path, clf: LogisticRegression) -> Case:
    import xgboost as xgb

    booster = xgb.train(
        {"objective": "multi:softprob", "num_class": 3, "max_depth": 2, "nthread": 1},
        xgb.DMatrix(FEATURES, label=LABELS),
        num_boost_round=4,
    )
    (tmp / "m").mkdir()
    booster.save_model(tmp / "m" / "model.json")
    return Case("xgboost", "m", booster.predict(xgb.DMatrix(SAMPLE)))


def _lightgbm(tmp: Path, clf: LogisticRegression) -> Case:
    import lightgbm as lgb

    params = {"objective": "multiclass", "num_class": 3, "verbose": -1, "num_threads": 1}
    booster = lgb.train(params, lgb.Dataset(FEATURES, label=LABELS), num_boost_round=4)
    (tmp / "m").mkdir()
    booster.save_model(str(tmp / "m" / "model.txt"))
    return Case("lightgbm", str(tmp / "m"), booster.predict(SAMPLE))


def _onnx(tmp: Path, clf: LogisticRegression) -> Case:
    from skl2onnx import to_onnx

    onx = to_onnx(clf, FEATURES[:1].astype(np.float32), target_opset=15)
    (tmp / "m").mkdir()
    (tmp / "m" / "model.onnx").write_bytes(onx.SerializeToString())
    return Case("onnx", "./m", clf.predict(SAMPLE))


def _mlflow_local(tmp: Path, clf: LogisticRegression) -> Case:
    import mlflow.sklearn
    from mlflow.models import infer_signature

    mlflow.sklearn.save_model(
        clf,
        tmp / "mlflow-model",
        pip_requirements=["scikit-learn"],
        serialization_format="pickle",
        signature=infer_signature(FEATURES, clf.predict(FEATURES)),
    )
    return Case("mlflow", "mlflow-model", clf.predict(SAMPLE))


CASES: dict[str, Callable[[Path, LogisticRegression], Case]] = {
    "sklearn-dir": _sklearn,
    "sklearn-pickle-file": _sklearn_pickle_file,
    "xgboost": _xgboost,
    "lightgbm": _lightgbm,
    "onnx": _onnx,
    "mlflow-local": _mlflow_local,
}


@pytest.mark.parametrize("case_name", sorted(CASES))
class TestRuntimeConformance:
    """Every built-in array runtime: unloaded after create_model, predicts after load."""

    @pytest.fixture
    def case(self, case_name: str, tmp_path: Path, classifier: LogisticRegression) -> Case:
        return CASES[case_name](tmp_path, classifier)

    def test_create_does_not_load(self, case: Case, tmp_path: Path) -> None:
        model = create_model("iris", predictor(model_spec(case.fmt, case.uri)), tmp_path)
        assert isinstance(model, ArrayModel) and model.name == "iris"
        assert model.ready is False

    def test_load_and_predict(self, case: Case, tmp_path: Path) -> None:
        model = create_model("iris", predictor(model_spec(case.fmt, case.uri)), tmp_path)
        assert model.load() is True and model.ready is True
        got = model.predict_array(SAMPLE)
        np.testing.assert_allclose(got, case.expected, rtol=1e-4, atol=1e-5)
        # the generic entry point agrees with the fast path
        np.testing.assert_allclose(model.predict(SAMPLE.tolist()), got, rtol=1e-6)
        assert isinstance(model.thread_safe, bool)

    def test_a_row_of_another_width_is_the_clients_error(self, case: Case, tmp_path: Path) -> None:
        # xgboost, lightgbm and onnx failed inside the model: a 500, not a 400.
        import json

        from serving.dataplane import DataPlane
        from serving.dataplane.metadata import derive_metadata

        model = create_model("iris", predictor(model_spec(case.fmt, case.uri)), tmp_path)
        model.load()
        [tensor] = derive_metadata(model)["inputs"]
        assert tensor["shape"] == [-1, 4]
        plane = DataPlane([model], inline=True)
        body = json.dumps({"instances": [[1.0, 2.0, 3.0]]}).encode()
        with pytest.raises(InvalidInput, match=r"expects input shape \[-1, 4\], got \[1, 3\]"):
            asyncio.run(plane.predict_v1("iris", body))


def test_registry_lists_the_local_formats() -> None:
    assert supported_formats() == ["custom", "lightgbm", "mlflow", "onnx", "sklearn", "xgboost"]


def test_legacy_framework_form_uses_the_same_runtime(
    tmp_path: Path, classifier: LogisticRegression
) -> None:
    _sklearn(tmp_path, classifier)
    data = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "iris"},
        "spec": {"predictor": {"sklearn": {"storageUri": "model"}}},
    }
    model = create_model("iris", parse_inference_service(data).predictor, tmp_path)
    model.load()
    np.testing.assert_array_equal(model.predict_array(SAMPLE), classifier.predict(SAMPLE))


def test_sklearn_predict_proba_from_container_env(
    tmp_path: Path, classifier: LogisticRegression
) -> None:
    _sklearn(tmp_path, classifier)
    env = [{"name": "PREDICT_PROBA", "value": "true"}]
    model = create_model("iris", predictor(model_spec("sklearn", "model", env=env)), tmp_path)
    model.load()
    np.testing.assert_allclose(model.predict_array(SAMPLE), classifier.predict_proba(SAMPLE))
    from serving.dataplane.metadata import derive_metadata

    # It said INT64 [-1] (the labels' type), not what predict_proba returns.
    [output] = derive_metadata(model)["outputs"]
    assert (output["datatype"], output["shape"]) == ("FP64", [-1, 3])


def test_the_metadata_of_a_model_of_several_outputs(tmp_path: Path) -> None:
    import joblib
    from sklearn.linear_model import LinearRegression
    from sklearn.tree import DecisionTreeRegressor

    from serving.dataplane.metadata import derive_metadata

    targets = np.stack([FEATURES[:, 0] * 2, FEATURES[:, 1] - 1], axis=1)
    for estimator in (LinearRegression(), DecisionTreeRegressor(max_depth=2)):
        folder = tmp_path / type(estimator).__name__
        folder.mkdir()
        joblib.dump(estimator.fit(FEATURES, targets), folder / "model.joblib")
        model = create_model("m", predictor(model_spec("sklearn", str(folder))), tmp_path)
        model.load()
        assert model.predict_array(SAMPLE).shape == (10, 2)
        [output] = derive_metadata(model)["outputs"]
        assert (output["datatype"], output["shape"]) == ("FP64", [-1, 2]), estimator


def test_nan_in_a_binary_tensor_is_the_clients_error_unless_the_estimator_takes_it(
    tmp_path: Path,
) -> None:
    """Binary tensors can carry NaN (JSON cannot): scikit-learn's ValueError for it was a
    500. An estimator that takes NaN as missing (its allow_nan tag) still gets it."""
    import joblib
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline

    with_nan = SAMPLE.copy()
    with_nan[0, 0] = np.nan
    for estimator, allowed in (
        (LogisticRegression(max_iter=300), False),
        (HistGradientBoostingClassifier(max_iter=5), True),
        # A pipeline that imputes them (its own allow_nan tag says False).
        (make_pipeline(SimpleImputer(), LogisticRegression(max_iter=300)), True),
    ):
        folder = tmp_path / type(estimator).__name__
        folder.mkdir()
        joblib.dump(estimator.fit(FEATURES, LABELS), folder / "model.joblib")
        model = create_model("m", predictor(model_spec("sklearn", str(folder))), tmp_path)
        model.load()
        if allowed:
            assert model.predict_array(with_nan).shape == (10,)
            continue
        with pytest.raises(InvalidInput, match="NaN or infinity"):
            model.predict_array(with_nan)
        with_inf = SAMPLE.copy()
        with_inf[1, 1] = np.inf
        with pytest.raises(InvalidInput, match="LogisticRegression does not accept"):
            model.predict_array(with_inf)


# --- deploy-time refusals -------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            model_spec("pytorch", "m"),
            "model format 'pytorch' is not supported locally; supported: custom, lightgbm, mlflow, onnx, sklearn, xgboost",
        ),
        (model_spec("tensorflow", "m"), "model format 'tensorflow' is not supported locally"),
        (model_spec("triton", "m"), "model format 'triton' is not supported locally"),
        (
            model_spec("sklearn", "gs://bucket/model"),
            "scheme 'gs://' is not supported locally; supported: local path, file://, runs:/, models:/",
        ),
        (model_spec("sklearn", "s3://bucket/model"), "scheme 's3://' is not supported locally"),
        (
            model_spec("sklearn", "https://example.com/model.joblib"),
            "scheme 'https://' is not supported locally",
        ),
        (model_spec("sklearn", "pvc://claim/model"), "scheme 'pvc://' is not supported locally"),
        (
            model_spec("sklearn", "m", protocolVersion="grpc-v2"),
            "spec.predictor.model.protocolVersion: 'grpc-v2' is not supported locally; supported: v1, v2",
        ),
        (
            model_spec("sklearn"),
            "spec.predictor.model.storageUri: required for model format 'sklearn'",
        ),
    ],
)
def test_unsupported_at_create_model(spec: dict[str, Any], message: str, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelError) as info:
        create_model("iris", predictor(spec), tmp_path)
    assert message in str(info.value)


def test_legacy_unsupported_framework_names_its_key(tmp_path: Path) -> None:
    data = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "iris"},
        "spec": {"predictor": {"containers": [{"name": "kserve-container", "image": "x"}]}},
    }
    with pytest.raises(UnsupportedModelError, match="custom containers cannot run locally"):
        create_model("iris", parse_inference_service(data).predictor, tmp_path)


def test_every_scale_metric_deploys_locally(tmp_path: Path) -> None:
    # concurrency/rps on the KPA, cpu/memory on the HPA (tests/serving/test_hpa.py).
    for metric in ("concurrency", "rps", "cpu", "memory"):
        p = predictor(model_spec("sklearn", "m"), scaleMetric=metric)
        assert model_problems(p) == deploy_problems(p) == []


def test_missing_storage_path_fails_at_create_model(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        create_model("iris", predictor(model_spec("sklearn", "nowhere")), tmp_path)


# --- load failures --------------------------------------------------------------------


def test_empty_model_dir_fails_at_load(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    model = create_model("iris", predictor(model_spec("sklearn", "m")), tmp_path)
    with pytest.raises(ModelLoadError) as info:
        model.load()
    text = str(info.value)
    assert str(tmp_path / "m") in text and "no model file found" in text and ".joblib" in text
    assert model.ready is False


def test_two_model_files_fail_at_load(tmp_path: Path, classifier: LogisticRegression) -> None:
    _sklearn(tmp_path, classifier)
    (tmp_path / "model" / "other.pkl").write_bytes(pickle.dumps(classifier))
    model = create_model("iris", predictor(model_spec("sklearn", "model")), tmp_path)
    with pytest.raises(ModelLoadError, match="more than one model file"):
        model.load()


def test_file_deleted_after_create_fails_at_load(
    tmp_path: Path, classifier: LogisticRegression
) -> None:
    _sklearn(tmp_path, classifier)
    model = create_model("iris", predictor(model_spec("sklearn", "model/model.joblib")), tmp_path)
    (tmp_path / "model" / "model.joblib").unlink()
    with pytest.raises(ModelLoadError, match="no such file or directory"):
        model.load()


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("sklearn", "model.joblib"),
        ("xgboost", "model.json"),
        ("lightgbm", "model.txt"),
        ("onnx", "model.onnx"),
    ],
)
def test_corrupt_model_file_fails_at_load(fmt: str, name: str, tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / name).write_bytes(b"this is not a model")
    model = create_model("iris", predictor(model_spec(fmt, "m")), tmp_path)
    with pytest.raises(ModelLoadError) as info:
        model.load()
    assert str(tmp_path / "m" / name) in str(info.value)
    assert "model 'iris': cannot load" in str(info.value)


def test_mlflow_folder_without_mlmodel_fails_at_load(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    model = create_model("iris", predictor(model_spec("mlflow", "m")), tmp_path)
    with pytest.raises(ModelLoadError, match="no MLmodel file"):
        model.load()


# --- custom classes -------------------------------------------------------------------

CUSTOM_MODULE = textwrap.dedent(
    '''
    from serving.runtimes.base import Model


    class Doubler(Model):
        """A subclass of our own base: used as is."""

        def load(self):
            self.factor = 2
            self.ready = True
            return True

        def predict(self, payload, headers=None):
            return {"predictions": [x * self.factor for x in payload["instances"]]}


    class KServeShaped:
        """kserve.Model's shape without subclassing: wrapped."""

        thread_safe = False

        def __init__(self, name):
            self.name = name
            self.ready = False

        def load(self):
            self.ready = True

        def preprocess(self, payload, headers=None):
            return payload["instances"]

        def predict(self, rows):
            return [sum(r) for r in rows]

        async def postprocess(self, result, headers=None):
            return {"predictions": result, "model": self.name}


    class WithDir:
        def __init__(self, name, model_dir):
            self.name = name
            self.model_dir = model_dir

        def load(self):
            with open(self.model_dir + "/weights.txt") as f:
                self.weight = float(f.read())
            return True

        def predict(self, payload, headers=None):
            return {"predictions": [x * self.weight for x in payload["instances"]]}


    class FailsToLoad:
        def __init__(self, name):
            pass

        def load(self):
            raise FileNotFoundError("weights.bin")

        def predict(self, payload, headers=None):
            return payload


    class NoPredict:
        def __init__(self, name):
            pass


    NOT_A_CLASS = 3
    '''
)


@pytest.fixture
def custom_dir(tmp_path: Path) -> Path:
    # A unique module name per test: the import system caches modules by name.
    folder = tmp_path / "svc"
    folder.mkdir()
    module = f"custom_{tmp_path.name.replace('-', '_').replace('[', '_').replace(']', '_')}"
    (folder / f"{module}.py").write_text(CUSTOM_MODULE)
    (folder / "module_name").write_text(module)
    return folder


def _custom(custom_dir: Path, cls: str, uri: str | None = None) -> Model:
    module = (custom_dir / "module_name").read_text()
    spec = model_spec("custom", uri, runtime=f"{module}:{cls}")
    return create_model("custom", predictor(spec), custom_dir)


def _run(model: Model, payload: Any) -> Any:
    async def pipeline() -> Any:
        value = payload
        for stage in (model.preprocess, model.predict, model.postprocess):
            value = stage(value, headers={})
            if inspect.isawaitable(value):
                value = await value
        return value

    return asyncio.run(pipeline())


def test_custom_subclass_is_used_as_is(custom_dir: Path) -> None:
    model = _custom(custom_dir, "Doubler")
    assert type(model).__name__ == "Doubler" and model.ready is False
    assert model.load() is True
    assert _run(model, {"instances": [1, 2]}) == {"predictions": [2, 4]}


def test_kserve_shaped_class_is_wrapped(custom_dir: Path) -> None:
    model = _custom(custom_dir, "KServeShaped")
    assert isinstance(model, Model) and model.thread_safe is False
    assert model.load() is True and model.ready is True
    assert inspect.iscoroutinefunction(model.postprocess)
    assert not inspect.iscoroutinefunction(model.predict)
    assert _run(model, {"instances": [[1, 2], [3, 4]]}) == {
        "predictions": [3, 7],
        "model": "custom",
    }


def test_custom_class_gets_model_dir_from_storage_uri(custom_dir: Path) -> None:
    (custom_dir / "weights").mkdir()
    (custom_dir / "weights" / "weights.txt").write_text("1.5")
    model = _custom(custom_dir, "WithDir", uri="./weights")
    model.load()
    assert _run(model, {"instances": [2]}) == {"predictions": [3.0]}


def test_custom_load_failure_names_class_and_reason(custom_dir: Path) -> None:
    model = _custom(custom_dir, "FailsToLoad")
    with pytest.raises(ModelLoadError, match=r"FileNotFoundError: weights.bin"):
        model.load()


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        ("Missing", "has no 'Missing'"),
        ("NOT_A_CLASS", "'NOT_A_CLASS' is not a class"),
        ("NoPredict", "NoPredict has no predict() method"),
    ],
)
def test_custom_class_errors_at_create_model(custom_dir: Path, cls: str, message: str) -> None:
    with pytest.raises(ModelLoadError, match=re.escape(message)):
        _custom(custom_dir, cls)


def test_custom_module_not_found(tmp_path: Path) -> None:
    spec = model_spec("custom", runtime="no_such_module_xyz:Model")
    with pytest.raises(ModelLoadError) as info:
        create_model("custom", predictor(spec), tmp_path)
    assert "cannot import 'no_such_module_xyz'" in str(info.value)
    assert str(tmp_path) in str(info.value)


def test_example_custom_model(tmp_path: Path) -> None:
    from serving.spec import load_inference_services
    from tests.util import REPO

    (isvc,) = load_inference_services(REPO / "examples/serving/custom.yaml")
    model = create_model(isvc.name, isvc.predictor, isvc.base_dir)
    model.load()
    rows = FEATURES[[0, 60, 120]].tolist()
    assert _run(model, {"instances": rows}) == {"predictions": [0, 1, 2]}
    # What a client gets wrong is a 400 (InvalidInput), not an IndexError's 500.
    for bad, why in (([[6.8, 2.8]], "shape [1, 2]"), ([["a", "b", "c", "d"]], "4 numbers")):
        with pytest.raises(InvalidInput, match=re.escape(why)):
            _run(model, {"instances": bad})
