"""Where a model's files are: ``storageUri`` resolved to a local path.

Supported: a local path (absolute, or relative to the InferenceService file's folder),
``file://`` (same rules), and MLflow's ``runs:/<run_id>/<path>`` and
``models:/<name>/<version|alias|stage>``, downloaded from the MLflow store the tuner logs
to (``MLFLOW_TRACKING_URI``, else ``$HYPERFLOW_HOME/mlflow.db``: see
:mod:`serving.settings`) into a cache under ``$HYPERFLOW_HOME/models``. Cloud schemes
(``gs://``, ``s3://``, ``https://``, ``pvc://`` ...) validate in a spec but are refused
here, at deploy time, with the list of what is supported.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

from serving.private import make_private_dirs
from serving.settings import hyperflow_home, mlflow_tracking_uri

SUPPORTED_SCHEMES = ("local path", "file://", "runs:/", "models:/")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
# models:/name/3 names one immutable version; an alias or stage is pinned to one first.
_MODEL_VERSION = re.compile(r"^models:/[^/@]+/\d+(/.*)?$")


class StorageError(ValueError):
    """A storageUri that cannot be used here (unsupported scheme, missing path ...)."""


def storage_scheme(uri: str) -> str:
    """``local``, ``file``, ``runs``, ``models`` or the URI's own (unsupported) scheme."""
    match = _SCHEME.match(uri)
    if match is None or len(match.group(1)) == 1:  # "C:\\..." is a path
        return "local"
    return match.group(1).lower()


def check_storage_uri(uri: str) -> None:
    """Raise :class:`StorageError` if the scheme is not supported (no I/O)."""
    scheme = storage_scheme(uri)
    if scheme not in ("local", "file", "runs", "models"):
        raise StorageError(
            f"storageUri {uri!r}: scheme '{scheme}://' is not supported locally; "
            f"supported: {', '.join(SUPPORTED_SCHEMES)}"
        )
    if scheme in ("runs", "models"):
        # runs:/<run id>/<path>, models:/<name>/<version>: names and a path inside the
        # run's artifacts, never "." or ".." (models:/ns.a/../../other.b/1 would name one
        # model to the namespace check and another to MLflow).
        segments = uri.split(":", 1)[1].strip("/").split("/")
        if not segments[0] or any(s in (".", "..") for s in segments):
            what = "a run id" if scheme == "runs" else "a model"
            raise StorageError(
                f"storageUri {uri!r}: {scheme}:/ takes {what} and a path inside it, "
                "without '.' or '..' segments"
            )


def resolve_storage_uri(uri: str, base_dir: Path | None, cache_dir: Path | None = None) -> Path:
    """The local path holding the model's files; it exists when this returns.

    Relative local paths resolve from ``base_dir`` (default: the working directory) and
    must stay inside it; absolute paths are taken as written. MLflow URIs are downloaded
    into ``cache_dir`` (default ``$HYPERFLOW_HOME/models``).
    """
    check_storage_uri(uri)
    scheme = storage_scheme(uri)
    if scheme in ("runs", "models"):
        return _download_mlflow(uri, cache_dir or _default_cache_dir())
    path = local_storage_path(uri, base_dir)
    if not path.exists():
        raise StorageError(f"storageUri {uri!r}: {path} does not exist")
    return path


def local_storage_path(uri: str, base_dir: Path | None) -> Path:
    """Where a local or ``file://`` storageUri points; it need not exist (yet).

    Raises :class:`StorageError` as :func:`resolve_storage_uri` does for an empty path or a
    relative path that climbs out of ``base_dir``.
    """
    raw = uri[len("file://") :] if storage_scheme(uri) == "file" else uri
    if not raw:
        raise StorageError(f"storageUri {uri!r}: empty path")
    return _local_path(uri, raw, base_dir)


def _local_path(uri: str, raw: str, base_dir: Path | None) -> Path:
    candidate = Path(raw).expanduser()
    if candidate.is_absolute():
        return Path(os.path.normpath(candidate))
    root = Path(os.path.normpath((base_dir or Path.cwd()).absolute()))
    path = Path(os.path.normpath(root / candidate))
    # A relative path is relative to the service file's folder and may not climb out of it.
    if path != root and root not in path.parents:
        raise StorageError(
            f"storageUri {uri!r}: a relative path must stay inside {root} "
            "(use an absolute path for files elsewhere)"
        )
    return path


def _default_cache_dir() -> Path:
    return hyperflow_home() / "models"


def _download_mlflow(uri: str, cache_dir: Path) -> Path:
    tracking_uri = mlflow_tracking_uri()
    registry_uri = os.environ.get("MLFLOW_REGISTRY_URI") or tracking_uri
    with _mlflow_uris(tracking_uri, registry_uri):
        return _download_mlflow_from(uri, cache_dir, tracking_uri, registry_uri)


@contextlib.contextmanager
def _mlflow_uris(tracking_uri: str, registry_uri: str) -> Iterator[None]:
    """MLflow's own URIs, for the calls that do not take them: a logged model's or a
    registered version's download looks its model up in MLflow's default store whatever
    ``download_artifacts`` is given (``./mlflow.db``, created in the working folder)."""
    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(zip(names, (tracking_uri, registry_uri), strict=True))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _download_mlflow_from(uri: str, cache_dir: Path, tracking_uri: str, registry_uri: str) -> Path:
    import mlflow.artifacts  # lazy: mlflow is heavy and only needed for these schemes
    from mlflow.exceptions import MlflowException

    try:
        pinned = _pin_version(uri, tracking_uri, registry_uri)
    except MlflowException as exc:
        raise StorageError(f"storageUri {uri!r}: {exc.message}") from None
    key = hashlib.sha256(f"{tracking_uri}\n{pinned}".encode()).hexdigest()[:24]
    target = cache_dir / key
    # A run artifact or a model version never changes: fetched once, shared by replicas.
    if target.exists():
        return _only_child(target)
    make_private_dirs(cache_dir)
    staging = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=cache_dir))
    try:
        mlflow.artifacts.download_artifacts(
            artifact_uri=pinned,
            dst_path=str(staging),
            tracking_uri=tracking_uri,
            registry_uri=registry_uri,
        )
    except MlflowException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise StorageError(f"storageUri {uri!r}: {exc.message}") from None
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise StorageError(f"storageUri {uri!r}: download failed: {exc}") from None
    try:
        # Atomic publish: a concurrent replica sees no folder or a complete one.
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # another replica published it first
    return _only_child(target)


def _pin_version(uri: str, tracking_uri: str, registry_uri: str) -> str:
    """``models:/name@alias`` / ``models:/name/Stage`` / ``models:/name/latest`` as the
    ``models:/name/<version>`` they point at now; other URIs are already immutable."""
    if not uri.startswith("models:/") or _MODEL_VERSION.match(uri):
        return uri
    from mlflow import MlflowClient

    rest = uri[len("models:/") :].strip("/")
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
    if "@" in rest:
        name, alias = rest.split("@", 1)
        return f"models:/{name}/{client.get_model_version_by_alias(name, alias).version}"
    if "/" not in rest:
        return uri  # models:/m-<id>, a logged model (MLflow 3): immutable
    name, stage = rest.split("/", 1)
    if stage.lower() == "latest":
        quoted = name.replace("'", "\\'")
        versions = client.search_model_versions(filter_string=f"name='{quoted}'")
    else:
        with warnings.catch_warnings():
            # Stages are deprecated in MLflow but still what models:/name/Production means.
            warnings.simplefilter("ignore", FutureWarning)
            versions = client.get_latest_versions(name, stages=[stage])
    if not versions:
        raise StorageError(f"storageUri {uri!r}: no version of model {name!r} in stage {stage!r}")
    return f"models:/{name}/{max(int(v.version) for v in versions)}"


def _only_child(folder: Path) -> Path:
    # download_artifacts puts the artifact (a folder or file) inside dst_path.
    children = [c for c in folder.iterdir() if not c.name.startswith(".")]
    return children[0] if len(children) == 1 else folder
