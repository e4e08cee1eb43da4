"""Render a trial's command, environment and working directory from the trialTemplate.

Katib substitutes ``${trialParameters.NAME}`` in the trialSpec with the assignment of the
parameter the trial parameter references, and ``${trialSpec.Name}`` and friends with the
trial's own metadata. Locally the primary container's ``command`` + ``args`` become the
argv of a process; its ``env`` (plain ``value`` entries) becomes the process environment
and ``workingDir`` its working directory (relative to the experiment file's folder).

A container without ``command`` runs its image's entrypoint (with ``args``, if any), as
Kubernetes runs it: :class:`RenderedTrial` says so (``entrypoint``) and names the missing
field, and only a backend that runs images (``TrialBackend.runs_images``) can run it.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuner.spec.models import Experiment, ParameterType
from tuner.spec.template_rules import INDEXED_META, META_REFERENCE

_PLACEHOLDER = re.compile(r"\$\{(trialParameters|trialSpec)\.([^}]+)\}")


class TemplateError(ValueError):
    """The trial template cannot be turned into a local command."""


@dataclass(slots=True)
class RenderedTrial:
    # The argv (command + args); with ``entrypoint``, the args alone.
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    image: str | None = None
    # The primary container's resources: its ``requests``, each missing one taken from
    # ``limits`` (as Kubernetes defaults a request to its limit), values as written.
    resources: dict[str, str] = field(default_factory=dict)
    # The container has no ``command``: its image's entrypoint runs, given ``command``
    # as its arguments. Only a backend that runs the image can run such a trial.
    entrypoint: bool = False
    # Where the container's ``command`` is (or would be) in the Experiment, for errors:
    # ``spec.trialTemplate.trialSpec.spec.template.spec.containers[0].command``.
    command_field: str = "spec.trialTemplate.command"


def format_value(value: float | int | str) -> str:
    """Katib passes assignments as strings; floats in their shortest round-trip form."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    return str(value)


_TRIAL_SPEC = "spec.trialTemplate.trialSpec"


def _containers(node: Any, path: str = _TRIAL_SPEC) -> list[tuple[str, dict[str, Any]]]:
    """Every container in a Kubernetes object (Job, PyTorchJob, TFJob, ...), with its
    path in the Experiment (``spec.trialTemplate.trialSpec...containers[0]``)."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "containers" and isinstance(value, list):
                found.extend(
                    (f"{path}.containers[{i}]", c)
                    for i, c in enumerate(value)
                    if isinstance(c, dict)
                )
            else:
                found.extend(_containers(value, f"{path}.{key}"))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found.extend(_containers(item, f"{path}[{i}]"))
    return found


def primary_container(trial_spec: dict[str, Any], name: str | None) -> dict[str, Any]:
    return _primary(trial_spec, name)[1]


def _primary(trial_spec: dict[str, Any], name: str | None) -> tuple[str, dict[str, Any]]:
    """The primary container and its path in the Experiment."""
    containers = _containers(trial_spec)
    if not containers:
        raise TemplateError("trialTemplate.trialSpec: no containers found")
    if name is None:
        if len(containers) == 1:
            return containers[0]
        raise TemplateError(
            "trialTemplate.primaryContainerName: required when the trialSpec has several containers"
        )
    for path, container in containers:
        if container.get("name") == name:
            return path, container
    raise TemplateError(
        f"trialTemplate.primaryContainerName: no container named {name!r} in trialSpec"
    )


def local_container(trial_spec: dict[str, Any], name: str | None) -> dict[str, Any]:
    """The container-like mapping (command, args, env, workingDir, image) run locally."""
    return _local_container(trial_spec, name)[1]


def _local_container(trial_spec: dict[str, Any], name: str | None) -> tuple[str, dict[str, Any]]:
    """The container-like mapping (command, args, env, workingDir, image) run locally,
    and its path in the Experiment.

    A batch Job or a Kubeflow training job (PyTorchJob, TFJob, ...): the primary container.
    A TrainJob (trainer.kubeflow.org): its ``spec.trainer``, as one process. An Argo
    Workflow cannot run here: its steps and ``{{...}}`` templating need Argo.
    """
    kind = trial_spec.get("kind")
    if kind == "Workflow" and str(trial_spec.get("apiVersion", "")).startswith("argoproj.io/"):
        raise TemplateError(
            "trialTemplate.trialSpec: an Argo Workflow runs its steps on a cluster with Argo; "
            "local trials run a Job, a Kubeflow training job, a TrainJob or "
            "trialTemplate.command"
        )
    if kind == "TrainJob":
        trainer = (trial_spec.get("spec") or {}).get("trainer")
        if not isinstance(trainer, dict) or not (trainer.get("command") or trainer.get("args")):
            raise TemplateError(
                "trialTemplate.trialSpec.spec.trainer: a TrainJob runs locally from its "
                "trainer's command and args, and this one has none"
            )
        return f"{_TRIAL_SPEC}.spec.trainer", trainer
    return _primary(trial_spec, name)


def active_deadline_seconds(experiment: Experiment) -> float | None:
    """The trial's deadline as the trialSpec sets it, or None.

    ``spec.activeDeadlineSeconds`` of a batch Job (Kubernetes), or
    ``spec.runPolicy.activeDeadlineSeconds`` of a Kubeflow training job.
    """
    template = experiment.spec.trial_template
    spec = (template.trial_spec or {}).get("spec") if template is not None else None
    if not isinstance(spec, dict):
        return None
    run_policy = spec.get("runPolicy")
    for value in (
        spec.get("activeDeadlineSeconds"),
        run_policy.get("activeDeadlineSeconds") if isinstance(run_policy, dict) else None,
    ):
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return float(value)
    return None


def _substituter(
    experiment: Experiment, trial_name: str, assignments: dict[str, float | int | str]
) -> Any:
    """Katib's substitution of ``${trialParameters.X}`` and ``${trialSpec.Name}`` & co."""
    template = experiment.spec.trial_template
    if template is None:
        raise TemplateError("spec.trialTemplate: required")
    meta = {
        "Name": trial_name,
        "Namespace": experiment.metadata.namespace,
        "Kind": "Job",
        "APIVersion": "batch/v1",
    }
    if template.trial_spec is not None:
        meta["Kind"] = str(template.trial_spec.get("kind", "Job"))
        meta["APIVersion"] = str(template.trial_spec.get("apiVersion", "batch/v1"))

    def metadata(key: str) -> str:
        if key in meta:
            return meta[key]
        labels = INDEXED_META.fullmatch(key)
        if labels:
            source = (
                experiment.metadata.labels
                if labels.group(1) == "Labels"
                else experiment.metadata.annotations
            )
            return source.get(labels.group(2), "")
        raise TemplateError(f"trialTemplate: unknown reference ${{trialSpec.{key}}}")

    # A trial parameter references a search parameter, or (Katib's metadata references)
    # the trial's own ``${trialSpec.Name}``, ``${trialSpec.Labels[key]}``...
    # A discrete value goes to the trial as its list writes it ("1", not the 1.0 a list of
    # numbers with fractions is searched as), as Katib passes it.
    written: dict[str, dict[float, str]] = {}
    for p in experiment.spec.parameters:
        if p.parameter_type is ParameterType.DISCRETE and p.feasible_space.values:
            texts: dict[float, str] = {}
            for text in p.feasible_space.values:
                with contextlib.suppress(ValueError):
                    texts.setdefault(float(text), text.strip())
            written[p.name] = texts

    def rendered(name: str) -> str:
        value = assignments[name]
        texts = written.get(name)
        if texts and isinstance(value, int | float) and not isinstance(value, bool):
            return texts.get(float(value), format_value(value))
        return format_value(value)

    values: dict[str, str] = {}
    for tp in template.trial_parameters:
        if tp.reference in assignments:
            values[tp.name] = rendered(tp.reference)
        elif (reference := META_REFERENCE.fullmatch(tp.reference)) is not None:
            values[tp.name] = metadata(reference.group(1))

    def substitute(text: str) -> str:
        def repl(match: re.Match[str]) -> str:
            kind, key = match.group(1), match.group(2)
            if kind == "trialParameters":
                if key not in values:
                    raise TemplateError(f"trialTemplate: ${{trialParameters.{key}}} has no value")
                return values[key]
            return metadata(key)

        return _PLACEHOLDER.sub(repl, text)

    return substitute


def render_trial_spec(
    experiment: Experiment, trial_name: str, assignments: dict[str, float | int | str]
) -> dict[str, Any]:
    """The trialSpec as Katib creates it on a cluster: a copy with every placeholder in
    every string substituted (metadata, labels and the owner are the backend's to set)."""
    template = experiment.spec.trial_template
    if template is None or template.trial_spec is None:
        raise TemplateError(
            "spec.trialTemplate.trialSpec: required to run trials on Kubernetes "
            "(trialTemplate.command runs only as a local process)"
        )
    substitute = _substituter(experiment, trial_name, assignments)

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return substitute(node)
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    rendered: dict[str, Any] = walk(template.trial_spec)
    return rendered


def render_trial(
    experiment: Experiment,
    trial_name: str,
    assignments: dict[str, float | int | str],
    base_dir: Path | None,
) -> RenderedTrial:
    template = experiment.spec.trial_template
    if template is None:
        raise TemplateError("spec.trialTemplate: required")
    substitute = _substituter(experiment, trial_name, assignments)

    cwd = base_dir
    if template.command is not None:
        command = [substitute(part) for part in template.command]
        env = {k: substitute(v) for k, v in (template.env or {}).items()}
        return RenderedTrial(command=command, env=env, cwd=cwd)
    if template.trial_spec is None:
        raise TemplateError(
            "spec.trialTemplate: a configMap trial template cannot run locally; "
            "use trialSpec or command"
        )
    path, container = _local_container(template.trial_spec, template.primary_container_name)
    entrypoint = not container.get("command")
    argv = [str(a) for a in (container.get("command") or [])] + [
        str(a) for a in (container.get("args") or [])
    ]
    command = [substitute(part) for part in argv]
    container_env: dict[str, str] = {}
    for item in container.get("env") or []:
        if isinstance(item, dict) and "name" in item and "value" in item:
            container_env[str(item["name"])] = substitute(str(item["value"]))
    working_dir = container.get("workingDir")
    if working_dir:
        wd = Path(substitute(str(working_dir)))
        cwd = wd if wd.is_absolute() or base_dir is None else base_dir / wd
    image = container.get("image")
    return RenderedTrial(
        command=command,
        env=container_env,
        cwd=cwd,
        image=str(image) if image else None,
        resources=_resources(container, substitute),
        entrypoint=entrypoint,
        command_field=f"{path}.command",
    )


def _resources(container: dict[str, Any], substitute: Any) -> dict[str, str]:
    spec = container.get("resources")
    if not isinstance(spec, dict):
        return {}
    out: dict[str, str] = {}
    for part in ("limits", "requests"):  # requests win
        values = spec.get(part)
        if isinstance(values, dict):
            out.update({str(k): substitute(str(v)) for k, v in values.items()})
    return out
