"""Model runtimes: a registry from ``modelFormat.name`` to the runtime that serves it.

``create_model`` turns a predictor spec into an unloaded :class:`Model`; the replica calls
``load()``. Frameworks (xgboost, lightgbm, onnxruntime, mlflow) are imported inside each
runtime's ``load``, so a replica only pays for the one it serves.

Adding a runtime = one module with a ``build`` function + one line in ``_RUNTIMES``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from serving.runtimes import _custom, _lightgbm, _mlflow, _onnx, _sklearn, _xgboost
from serving.runtimes.base import ArrayModel, Model
from serving.runtimes.errors import ModelLoadError, UnsupportedModelError
from serving.spec.models import InferenceService, PredictorSpec, ProtocolVersion
from serving.storage import (
    SUPPORTED_SCHEMES,
    StorageError,
    check_storage_uri,
    resolve_storage_uri,
)

# (name, predictor, resolved model path or None, base_dir) -> an unloaded Model
RuntimeFactory = Callable[[str, PredictorSpec, Path | None, Path | None], Model]

_RUNTIMES: dict[str, RuntimeFactory] = {
    "sklearn": _sklearn.build,
    "xgboost": _xgboost.build,
    "lightgbm": _lightgbm.build,
    "onnx": _onnx.build,
    "mlflow": _mlflow.build,
    "custom": _custom.build,
}
# Formats whose runtime can do without a storageUri (the class brings its own model).
_STORAGE_OPTIONAL = frozenset({"custom"})
LOCAL_PROTOCOLS = (ProtocolVersion.V1.value, ProtocolVersion.V2.value)


def supported_formats() -> list[str]:
    return sorted(_RUNTIMES)


def register_runtime(model_format: str, factory: RuntimeFactory) -> None:
    """Serve ``modelFormat.name == model_format`` with ``factory`` (replaces an existing one)."""
    _RUNTIMES[model_format.lower()] = factory


def _implementation_path(predictor: PredictorSpec) -> str:
    found = predictor.implementations()
    return f"spec.predictor.{found[0] if found else 'model'}"


def model_problems(predictor: PredictorSpec) -> list[str]:
    """Why this (valid) predictor cannot be served by a local replica; empty if it can."""
    problems: list[str] = []
    where = _implementation_path(predictor)
    model_format = predictor.model_format
    if model_format is None:
        problems.append(
            "spec.predictor.containers: custom containers cannot run locally; use "
            "model.modelFormat.name 'custom' with a Python model class instead"
        )
    elif model_format not in _RUNTIMES:
        problems.append(
            f"{where}: model format {model_format!r} is not supported locally; "
            f"supported: {', '.join(supported_formats())}"
        )
    if predictor.protocol_version not in LOCAL_PROTOCOLS:
        problems.append(
            f"{where}.protocolVersion: {predictor.protocol_version!r} is not supported "
            f"locally; supported: {', '.join(LOCAL_PROTOCOLS)}"
        )
    uri = predictor.storage_uri
    storage = predictor.storage_spec
    if storage is not None:
        # KServe resolves storage: {key, path} through the cluster's storage-config secret.
        named = ", ".join(
            f"{k} {v!r}" for k, v in (("key", storage.key), ("path", storage.path)) if v
        )
        problems.append(
            f"{where}.storage: KServe's storage spec ({named or 'no key'}) names an entry "
            "of the cluster's storage-config secret, which is not available locally; give "
            f"a storageUri instead ({', '.join(SUPPORTED_SCHEMES)})"
        )
    elif uri is None:
        if model_format is not None and model_format not in _STORAGE_OPTIONAL:
            problems.append(f"{where}.storageUri: required for model format {model_format!r}")
    else:
        try:
            check_storage_uri(uri)
        except StorageError as exc:
            problems.append(f"{where}: {exc}")
    return problems


def deploy_problems(predictor: PredictorSpec) -> list[str]:
    """Why this (valid) predictor cannot be deployed locally (``model_problems``: every
    scale metric runs locally, concurrency/rps on the KPA, cpu/memory on the HPA)."""
    return model_problems(predictor)


def local_notes(isvc: InferenceService) -> list[str]:
    """What a local run leaves out of a service it can serve (shown, not refused)."""
    predictor, notes = isvc.spec.predictor, []
    sidecars = predictor.sidecars
    if sidecars:
        notes.append(
            f"spec.predictor.containers: sidecar container(s) {', '.join(map(repr, sidecars))} "
            "are not run locally (only the predictor is)"
        )
    if isvc.spec.transformer is not None:
        notes.append(
            "spec.transformer: not run locally: requests go straight to the predictor, "
            "without the transformer's pre- and post-processing"
        )
    if isvc.spec.explainer is not None:
        notes.append("spec.explainer: not run locally (no :explain endpoint)")
    for where, component in (
        ("predictor", predictor),
        ("transformer", isvc.spec.transformer),
        ("explainer", isvc.spec.explainer),
    ):
        logger = getattr(component, "logger", None)
        if logger is not None:
            notes.append(
                f"spec.{where}.logger: not run locally: requests and responses are not "
                f"sent to {logger.url or 'the logger'}"
            )
    return notes


def create_model(name: str, predictor: PredictorSpec, base_dir: Path | None) -> Model:
    """An unloaded Model for ``predictor``; ``storageUri`` is resolved (MLflow URIs fetched).

    Raises :class:`UnsupportedModelError` when the format, protocol or scheme cannot run
    here, and :class:`serving.storage.StorageError` when the path is missing or the MLflow
    URI cannot be fetched (both are ``ValueError``). Loading errors come from ``load()``.
    """
    problems = model_problems(predictor)
    if problems:
        raise UnsupportedModelError("; ".join(problems))
    model_format = predictor.model_format
    assert model_format is not None  # model_problems refuses containers-only predictors
    uri = predictor.storage_uri
    model_path = resolve_storage_uri(uri, base_dir) if uri is not None else None
    return _RUNTIMES[model_format](name, predictor, model_path, base_dir)


__all__ = [
    "ArrayModel",
    "Model",
    "ModelLoadError",
    "RuntimeFactory",
    "StorageError",
    "UnsupportedModelError",
    "create_model",
    "deploy_problems",
    "local_notes",
    "model_problems",
    "register_runtime",
    "supported_formats",
]
