"""Tuner settings: one typed object, read once from the environment (``HYPERFLOW_`` prefix)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from serving.settings import default_home, mlflow_tracking_uri


class TunerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HYPERFLOW_", extra="ignore")

    home: Path = Field(default_factory=default_home)
    # SQLAlchemy URL of the store; default: a SQLite file under ``home``.
    database_url: str | None = None
    # MLflow tracking URI; ``MLFLOW_TRACKING_URI`` wins, then this, then SQLite under ``home``.
    mlflow_tracking_uri: str | None = None
    # How long a finished run waits for MLflow to take what is still queued (seconds);
    # what is left is reported, and written by the next run of the same experiment.
    mlflow_drain_seconds: float = Field(default=30.0, ge=0)

    @property
    def store_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'hyperflow.db'}"

    @property
    def tracking_uri(self) -> str:
        # The same resolution as serving's, which loads these runs' models (runs:/...).
        return mlflow_tracking_uri(self.home, self.mlflow_tracking_uri or "")

    @property
    def trials_dir(self) -> Path:
        return self.home / "trials"

    def ensure_home(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home
