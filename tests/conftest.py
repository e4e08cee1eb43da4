from __future__ import annotations

import contextlib
import importlib.util
import io
import shutil
import signal
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.util import REPO


def pytest_sessionstart(session: pytest.Session) -> None:
    """A SIGTERM (``timeout``, a CI runner cancelling the job) ends the run as Ctrl-C does:
    every fixture's and ``with`` block's clean-up runs, so no server or replica a test
    started outlives it (Python's default SIGTERM ends the process without them)."""

    def interrupt(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends it at once
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


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


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """A real local Ray instance (2 CPUs, no dashboard), started once per session because
    a start takes 20-50 s here; yields its GCS address (``--ray-address`` for a process
    that joins it). Stopped at the end of the session: ``ray.shutdown()`` ends exactly the
    processes ``ray.init()`` started, and its own temporary folder is removed."""
    import ray

    if ray.is_initialized():
        pytest.fail("Ray was initialised outside the ray_address fixture")
    # A short folder of its own: Ray's socket paths must stay under 108 bytes.
    temp = tempfile.mkdtemp(prefix="hfray-", dir="/tmp")
    try:
        for attempt in range(3):
            try:
                ray.init(
                    num_cpus=2,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                    _temp_dir=temp,
                )
                break
            except Exception:
                # Ray waits a fixed 30 s for its raylet; on a loaded machine that can
                # pass. Stop what the attempt started, then try again.
                ray.shutdown()
                if attempt == 2:
                    raise
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
