"""serving.storage: storageUri -> a local path; MLflow URIs against the per-test store."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from serving.storage import StorageError, check_storage_uri, resolve_storage_uri


@pytest.fixture
def base(tmp_path: Path) -> Path:
    folder = tmp_path / "services"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "model.joblib").write_bytes(b"x")
    (tmp_path / "outside").mkdir()
    return folder


@pytest.mark.parametrize(
    "uri", ["model", "./model", "model/model.joblib", "file://model", "file://./model/"]
)
def test_relative_paths_resolve_from_base_dir(base: Path, uri: str) -> None:
    path = resolve_storage_uri(uri, base)
    assert path in (base / "model", base / "model" / "model.joblib")
    assert path.exists()


def test_absolute_paths_are_taken_as_written(base: Path) -> None:
    target = base.parent / "outside"
    assert resolve_storage_uri(str(target), base) == target
    assert resolve_storage_uri(f"file://{target}", base) == target


def test_relative_without_base_dir_uses_working_directory(
    base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(base)
    assert resolve_storage_uri("./model", None) == base / "model"


@pytest.mark.parametrize("uri", ["../outside", "model/../../outside", "file://../outside"])
def test_relative_paths_may_not_escape_base_dir(base: Path, uri: str) -> None:
    with pytest.raises(StorageError, match="must stay inside"):
        resolve_storage_uri(uri, base)


def test_missing_path(base: Path) -> None:
    with pytest.raises(StorageError) as info:
        resolve_storage_uri("./nothing", base)
    assert str(base / "nothing") in str(info.value) and "does not exist" in str(info.value)


@pytest.mark.parametrize(
    "uri", ["gs://b/m", "s3://b/m", "https://h/m", "http://h/m", "pvc://c/m", "hdfs://x/y"]
)
def test_unsupported_schemes_name_the_supported_ones(uri: str) -> None:
    with pytest.raises(StorageError) as info:
        check_storage_uri(uri)
    scheme = uri.split("://")[0]
    assert f"scheme '{scheme}://' is not supported locally" in str(info.value)
    assert "supported: local path, file://, runs:/, models:/" in str(info.value)


@pytest.mark.parametrize(
    "uri",
    ["runs:/../../x", "runs:/abc/../../x", "runs:/", "models:/a.x/../../b.y/1", "models:/./1"],
)
def test_mlflow_uris_name_a_run_or_a_model_not_a_path_out_of_it(uri: str) -> None:
    with pytest.raises(StorageError) as info:
        check_storage_uri(uri)
    assert "without '.' or '..' segments" in str(info.value)


def test_mlflow_runs_and_models_uris(tmp_path: Path, hyperflow_home: Path) -> None:
    """runs:/, models:/name/version and models:/name@alias from the per-test sqlite store."""
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    from serving.runtimes import create_model
    from serving.spec import parse_inference_service

    features, labels = load_iris(return_X_y=True)
    clf = DecisionTreeClassifier(max_depth=2, random_state=0).fit(features, labels)
    local = tmp_path / "saved"
    mlflow.sklearn.save_model(
        clf, local, pip_requirements=["scikit-learn"], serialization_format="pickle"
    )
    experiment = mlflow.create_experiment("serving", artifact_location=(tmp_path / "art").as_uri())
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_artifacts(str(local), artifact_path="model")
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "iris")
    MlflowClient().set_registered_model_alias("iris", "champion", version.version)

    for uri in (
        f"runs:/{run.info.run_id}/model",
        f"models:/iris/{version.version}",
        "models:/iris@champion",
    ):
        path = resolve_storage_uri(uri, None)
        assert (path / "MLmodel").is_file(), uri
        assert hyperflow_home / "models" in path.parents, path
        data = {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": "iris"},
            "spec": {
                "predictor": {"model": {"modelFormat": {"name": "mlflow"}, "storageUri": uri}}
            },
        }
        model = create_model("iris", parse_inference_service(data).predictor, None)
        assert model.thread_safe is True  # known before load(): an sklearn flavor
        model.load()
        np.testing.assert_array_equal(
            model.predict(features[:5].tolist()), clf.predict(features[:5])
        )
        assert model.thread_safe is True  # an sklearn flavor

    # An alias is pinned to the version it points at now; moving it fetches the new one.
    first = resolve_storage_uri("models:/iris@champion", None)
    assert first == resolve_storage_uri(f"models:/iris/{version.version}", None)
    second = mlflow.register_model(f"runs:/{run.info.run_id}/model", "iris")
    MlflowClient().set_registered_model_alias("iris", "champion", second.version)
    moved = resolve_storage_uri("models:/iris@champion", None)
    assert moved != first and moved == resolve_storage_uri("models:/iris/latest", None)
    assert first.exists()  # a replica still serving the old version keeps its files

    # An immutable URI is served from the cache once fetched.
    cached = resolve_storage_uri(f"runs:/{run.info.run_id}/model", None)
    MlflowClient().delete_run(run.info.run_id)
    assert resolve_storage_uri(f"runs:/{run.info.run_id}/model", None) == cached

    with pytest.raises(StorageError, match="models:/nobody/1"):
        resolve_storage_uri("models:/nobody/1", None)


def test_mlflow_3_logged_and_registered_models_without_mlflow_tracking_uri(
    tmp_path: Path, hyperflow_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As `serve run` has it: no MLFLOW_TRACKING_URI, the store in HYPERFLOW_HOME. MLflow
    looked a logged model's version up in ./mlflow.db, which it created."""
    import mlflow
    import mlflow.sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=500).fit(features, labels)
    store = f"sqlite:///{hyperflow_home / 'mlflow.db'}"
    mlflow.set_tracking_uri(store)  # how the user logged it
    try:
        with mlflow.start_run() as run:
            mlflow.sklearn.log_model(clf, name="model", registered_model_name="irisreg")
    finally:
        mlflow.set_tracking_uri(None)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for uri in ("models:/irisreg/1", f"runs:/{run.info.run_id}/model"):
        path = resolve_storage_uri(uri, None)
        assert (path / "MLmodel").is_file(), uri
    assert list(elsewhere.iterdir()) == []  # no stray ./mlflow.db
    assert "MLFLOW_TRACKING_URI" not in os.environ
