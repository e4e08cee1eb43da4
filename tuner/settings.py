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
    # The trial backend (``tuner.backends.BACKENDS``): local, ray, ...
    backend: str = "local"
    # Ray backend: the cluster to connect to (``ray://host:10001``, ``auto``, or a GCS
    # address ``host:6379``); unset: a local Ray instance is started for the run.
    ray_address: str | None = None
    # Kubernetes backend: the namespace trials run in; unset: the service account's when
    # in a cluster, else the kubeconfig context's (``$KUBECONFIG`` or ``~/.kube/config``,
    # as kubectl), else ``default``.
    kube_namespace: str | None = None

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
        """The home folder, made readable by its owner alone when it is created here: it
        holds every namespace's store, trial logs, models and trials' push tokens. (One
        that exists keeps its mode: a team may share one on purpose.)"""
        from serving.private import make_private_dirs

        return make_private_dirs(self.home)
