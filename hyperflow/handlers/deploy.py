"""``deploy-best``: an experiment's best model, registered and served.

The best trial's saved model becomes a new version of a registered model in the MLflow
Model Registry (named after the experiment: ``NAME``, or ``NAMESPACE.NAME`` outside the
default namespace), and an InferenceService serves ``models:/MODEL/VERSION``: created, or
replaced (a new revision, its other settings kept; ``canaryTrafficPercent`` as asked).
The registry work happens here, in the server, so the CLI stays a thin client.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hyperflow.handlers.auth import Caller
from hyperflow.handlers.errors import Conflict, FieldProblem, Invalid, Unavailable
from hyperflow.handlers.experiments import ExperimentHandlers
from hyperflow.handlers.inferenceservices import InferenceServiceHandlers
from hyperflow.handlers.names import check_dns_label, model_name_problem, shown
from hyperflow.services import KIND
from serving.spec import API_VERSION, FRAMEWORK_KEYS

EXPERIMENT_ANNOTATION = "hyperflow.io/experiment"
TRIAL_ANNOTATION = "hyperflow.io/trial"
MODEL_VERSION_ANNOTATION = "hyperflow.io/registered-model"

Register = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class DeployRequest:
    service: str
    model_format: str | None = None
    model_name: str | None = None
    canary_traffic_percent: int | None = None


def deploy_request(body: Any) -> DeployRequest:
    """``{"service", "modelFormat"?, "modelName"?, "canaryTrafficPercent"?}``; 422 naming
    each bad field."""
    if not isinstance(body, dict):
        raise Invalid('the body must be an object: {"service": NAME, ...}')
    problems = []
    known = {"service", "modelFormat", "modelName", "canaryTrafficPercent"}
    problems += [FieldProblem(str(k), "unknown field") for k in body if k not in known]
    problems += check_dns_label(body.get("service"), "service", what="a service name")
    fmt = body.get("modelFormat")
    if fmt is not None and not isinstance(fmt, str):
        problems.append(FieldProblem("modelFormat", f"must be a string; got {shown(fmt)}"))
    model = body.get("modelName")
    if model is not None and (
        not isinstance(model, str) or not model or "/" in model or ":" in model
    ):
        problems.append(
            FieldProblem("modelName", f"must be a name without '/' or ':'; got {shown(model)}")
        )
    percent = body.get("canaryTrafficPercent")
    if percent is not None and (
        isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100
    ):
        problems.append(
            FieldProblem("canaryTrafficPercent", f"must be an integer 0..100; got {shown(percent)}")
        )
    if problems:
        raise Invalid("invalid deploy-best request", problems)
    return DeployRequest(body["service"], fmt, model, percent)


def model_format_of(path: Path) -> str | None:
    """The serving runtime for saved model files (None: cannot tell)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    names = {p.name for p in files}
    suffixes = {p.suffix.lower() for p in files}
    if "MLmodel" in names:
        return "mlflow"
    if suffixes & {".joblib", ".pkl", ".pickle"}:
        return "sklearn"
    if ".onnx" in suffixes:
        return "onnx"
    if suffixes & {".bst", ".ubj"}:
        return "xgboost"
    if "model.txt" in names:
        return "lightgbm"
    return None


class DeployBestHandlers:
    """``deploy-best``: the best trial's model registered in the MLflow Model Registry (a
    new version of a model named after the experiment) and served by an
    InferenceService from ``models:/MODEL/VERSION`` (created, or replaced: a new
    revision)."""

    def __init__(
        self,
        experiments: ExperimentHandlers,
        services: InferenceServiceHandlers,
        register: Register | None,
    ) -> None:
        self.experiments = experiments
        self.services = services
        self.register = register

    def deploy_best(
        self, caller: Caller, namespace: str, experiment: str, body: Any
    ) -> tuple[dict[str, Any], bool]:
        caller.authorize(namespace)
        request = deploy_request(body)
        if request.model_name is not None:
            problem = model_name_problem(namespace, request.model_name)
            if problem is not None:
                raise Invalid("invalid deploy-best request", [FieldProblem("modelName", problem)])
        saved = self.experiments.best_saved(caller, namespace, experiment)
        where = f"experiment {namespace}/{experiment}"
        if saved.trial is None:
            raise Conflict(f"{where} has no succeeded trial yet")
        entry = saved.preferred
        if entry is None or saved.folder is None:
            raise Conflict(
                f"the best trial {saved.trial.name} of {where} saved no model (a trial saves "
                "files under $HYPERFLOW_ARTIFACTS_DIR, e.g. model/model.joblib)"
            )
        if self.register is None:
            raise Conflict(
                "this server does not track experiments in MLflow (HYPERFLOW_TRACK=false)"
            )
        if saved.run_id is None:
            raise Unavailable(f"the best trial {saved.trial.name} has no MLflow run yet; retry")
        model_format = request.model_format or model_format_of(saved.folder / entry)
        if model_format is None:
            raise Invalid(
                "cannot tell the model's format from its files",
                [FieldProblem("modelFormat", f"required: the files in {entry!r} name no runtime")],
            )
        model_name = request.model_name or (
            experiment if namespace == "default" else f"{namespace}.{experiment}"
        )
        from tuner.tracking.registry import ArtifactsPending, RegistryError

        try:
            version = self.register(
                model_name,
                saved.run_id,
                entry,
                tags={
                    "hyperflow.namespace": namespace,
                    "hyperflow.experiment": experiment,
                    "hyperflow.trial": saved.trial.name,
                },
                description=f"best trial {saved.trial.name} of {where}",
            )
        except ArtifactsPending as exc:
            raise Unavailable(str(exc)) from None
        except RegistryError as exc:
            raise Conflict(str(exc)) from None
        uri = f"models:/{version.name}/{version.version}"
        current = self.services.store.get(namespace, request.service)
        obj = _deployment(
            current.obj if current is not None else None,
            namespace,
            request,
            model_format,
            uri,
            {
                EXPERIMENT_ANNOTATION: experiment,
                TRIAL_ANNOTATION: saved.trial.name,
                MODEL_VERSION_ANNOTATION: f"{version.name}/{version.version}",
            },
        )
        isvc, created = self.services.apply(caller, namespace, obj)
        return {
            "registeredModel": {
                "name": version.name,
                "version": version.version,
                "source": version.source,
                "runId": version.run_id,
                "storageUri": uri,
            },
            "trial": saved.trial.name,
            "inferenceService": isvc,
            "created": created,
        }, created


def _deployment(
    current: dict[str, Any] | None,
    namespace: str,
    request: DeployRequest,
    model_format: str,
    uri: str,
    annotations: dict[str, str],
) -> dict[str, Any]:
    """The service to apply: the current one with the new model (its other settings kept),
    or a new one; ``canaryTrafficPercent`` as requested (absent: a full rollout)."""
    obj: dict[str, Any] = (
        copy.deepcopy(current)
        if current is not None
        else {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": request.service, "namespace": namespace},
            "spec": {"predictor": {}},
        }
    )
    metadata = obj.setdefault("metadata", {})
    metadata["annotations"] = {**(metadata.get("annotations") or {}), **annotations}
    predictor = obj.setdefault("spec", {}).setdefault("predictor", {})
    for key in FRAMEWORK_KEYS:  # the legacy per-framework form gives way to model:
        predictor.pop(key, None)
    given = predictor.get("model")
    model = {
        k: v
        for k, v in (given if isinstance(given, dict) else {}).items()
        if k not in ("storage", "runtime")
    }
    model.update({"modelFormat": {"name": model_format}, "storageUri": uri})
    predictor["model"] = model
    predictor.pop("canaryTrafficPercent", None)
    if request.canary_traffic_percent is not None:
        predictor["canaryTrafficPercent"] = request.canary_traffic_percent
    return obj
