"""Fixtures shared by the tuner tests: an initialised MLflow SQLite store per test."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlflow import MlflowClient  # imported here: most tuner tests never need it

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
def store(template_db: Path, tmp_path: Path) -> tuple[str, Path]:
    """A fresh, initialised MLflow store: (tracking URI, artifact root)."""
    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    shutil.copy(template_db, db)
    return f"sqlite:///{db}", tmp_path / "store" / "mlartifacts"
