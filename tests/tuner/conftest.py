"""Fixtures shared by the tuner tests: an initialised MLflow SQLite store per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def store(mlflow_template: Path, tmp_path: Path) -> tuple[str, Path]:
    """A fresh, initialised MLflow store: (tracking URI, artifact root)."""
    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    shutil.copy(mlflow_template, db)
    return f"sqlite:///{db}", tmp_path / "store" / "mlartifacts"
