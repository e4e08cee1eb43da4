from __future__ import annotations

import contextlib
import importlib.util
import io
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.util import REPO

TRAIN_SKLEARN = REPO / "examples" / "serving" / "train_sklearn.py"


@pytest.fixture(autouse=True)
def hyperflow_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own HYPERFLOW_HOME and MLflow store; nothing touches ~/.hyperflow."""
    home = tmp_path / "hyperflow-home"
    home.mkdir()
    monkeypatch.setenv("HYPERFLOW_HOME", str(home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
    return home


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store with its schema created, once per session (that takes ~10 s):
    tests copy the file instead of migrating a store each."""
    from mlflow import MlflowClient  # imported here: most tests never need it

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    # WAL makes MLflow's schema creation several times faster on a busy disk.
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode=WAL")
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    # Everything into the main file, so that copying that one file copies the store.
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture
def mlflow_db(mlflow_template: Path, hyperflow_home: Path) -> Path:
    """A real, initialised MLflow store where MLFLOW_TRACKING_URI points (see above)."""
    db = hyperflow_home / "mlflow.db"
    shutil.copy(mlflow_template, db)
    return db


@pytest.fixture(scope="session")
def postgres_cluster():
    """A real PostgreSQL server for the session (see tests/postgres.py), stopped by PID."""
    from tests.postgres import PostgresCluster, PostgresUnavailable

    try:
        cluster = PostgresCluster.start()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster):
    """A fresh database on the session's PostgreSQL server: its SQLAlchemy URL."""
    url = postgres_cluster.new_database()
    try:
        yield url
    finally:
        postgres_cluster.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store's URL on every database the store supports (optuna's storage-tests style):
    a test taking it runs once on a SQLite file and once on a real PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def kube_api():
    """A Kubernetes API stand-in (tests/kube/standin.py) on a free loopback port."""
    from tests.kube.standin import KubeApiStandIn

    with KubeApiStandIn() as api:
        yield api


@pytest.fixture
def kube(kube_api):
    """hyperflow's Kubernetes adapter (the official client) pointed at the stand-in."""
    from serving.kube.client import KubeClient

    with KubeClient(host=kube_api.url) as client:
        yield client


@pytest.fixture(scope="session")
def iris_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``model/v1`` and ``model/v2`` (the serving examples' iris models)."""
    folder = tmp_path_factory.mktemp("iris")
    spec = importlib.util.spec_from_file_location("train_sklearn", TRAIN_SKLEARN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with contextlib.redirect_stdout(io.StringIO()):
        module.train(folder / "model")
    return folder
