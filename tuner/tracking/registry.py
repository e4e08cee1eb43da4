"""The MLflow Model Registry: a trial's saved model as a new version of a registered model.

Imports mlflow only when called. The version's source is ``runs:/<run id>/<path>`` (what
``mlflow.register_model`` records), so the MLflow UI links the version to the trial's run,
and ``models:/<name>/<version>`` serves those files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


class RegistryError(RuntimeError):
    """The model could not be registered (the message says why)."""


class ArtifactsPending(RegistryError):
    """The run has not got the artifact yet (the tracker logs off the trial's path)."""


@dataclass(frozen=True, slots=True)
class ModelVersion:
    name: str
    version: str
    source: str
    run_id: str


def register_model_version(
    tracking_uri: str,
    name: str,
    run_id: str,
    artifact_path: str,
    *,
    tags: dict[str, str] | None = None,
    description: str = "",
    wait: float = 30.0,
    registry_uri: str | None = None,
) -> ModelVersion:
    """A new version of the registered model ``name`` (created if missing) from the
    run's ``artifact_path``. Waits up to ``wait`` seconds for the artifact to be in the
    run (ArtifactsPending after that); RegistryError for anything MLflow refuses."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or tracking_uri)
    try:
        _wait_for_artifact(client, run_id, artifact_path, wait)
        try:
            client.create_registered_model(
                name, description=f"Models registered by hyperflow ({description})".strip()
            )
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        source = f"runs:/{run_id}/{artifact_path}"
        version = client.create_model_version(
            name, source=source, run_id=run_id, tags=tags or {}, description=description
        )
    except MlflowException as exc:
        raise RegistryError(f"MLflow refused to register model {name!r}: {exc.message}") from None
    return ModelVersion(name, str(version.version), source, run_id)


def _wait_for_artifact(client: object, run_id: str, path: str, wait: float) -> None:
    deadline = time.monotonic() + wait
    parent, _, leaf = path.rstrip("/").rpartition("/")
    while True:
        listed = client.list_artifacts(run_id, parent or None)  # type: ignore[attr-defined]
        if any(a.path.rstrip("/").rpartition("/")[2] == leaf for a in listed):
            return
        if time.monotonic() >= deadline:
            raise ArtifactsPending(
                f"run {run_id} has no artifact {path!r} yet (the tracker may still be "
                "logging it); try again"
            )
        time.sleep(0.5)
