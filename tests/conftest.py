from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def hyperflow_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own HYPERFLOW_HOME and MLflow store; nothing touches ~/.hyperflow."""
    home = tmp_path / "hyperflow-home"
    home.mkdir()
    monkeypatch.setenv("HYPERFLOW_HOME", str(home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
    return home
