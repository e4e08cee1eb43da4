"""Katib's rules for ``spec.trialTemplate``, plus the local ``command`` extension.

Katib substitutes ``${trialParameters.NAME}`` in the template; it rejects a template that
uses an undeclared trial parameter *and* one that declares a trial parameter it never uses
(a silently ignored hyperparameter would make the whole experiment meaningless).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from tuner.spec.errors import FieldError
from tuner.spec.models import ParameterSpec, TrialTemplate

PATH = "spec.trialTemplate"
# Katib: consts.TrialTemplateParamReplaceFormatRegex = "\\$\\{trialParameters\\..+?\\}"
_TRIAL_PARAMETER = re.compile(r"\$\{trialParameters\.(.+?)\}")
_META_PLACEHOLDER = re.compile(r"\$\{trialSpec\.(.+?)\}")
# Katib: consts.TrialTemplateMetaKeys; Labels/Annotations take a key: Labels[app].
META_KEYS = ("Name", "Namespace", "Kind", "APIVersion")
INDEXED_META = re.compile(r"(Labels|Annotations)\[(.+)\]")
# A trialParameters reference to the trial's metadata: ${trialSpec.KEY}.
META_REFERENCE = re.compile(r"\$\{trialSpec\.(.+)\}")
JOB_KIND = "Job"
JOB_API_VERSION = "batch/v1"


def is_meta_key(key: str) -> bool:
    """``Name``, ``Namespace``, ``Kind``, ``APIVersion``, ``Labels[k]``, ``Annotations[k]``."""
    return key in META_KEYS or INDEXED_META.fullmatch(key) is not None


def is_meta_reference(reference: str) -> bool:
    """A trialParameters ``reference`` to trial metadata: ``${trialSpec.Name}`` etc."""
    match = META_REFERENCE.fullmatch(reference)
    return match is not None and is_meta_key(match.group(1))


def check_trial_template(
    template: TrialTemplate | None, parameters: list[ParameterSpec]
) -> list[FieldError]:
    if template is None:
        return [FieldError(PATH, "required")]
    sources = [
        name
        for name, value in (
            ("trialSpec", template.trial_spec),
            ("configMap", template.config_map),
            ("command", template.command),
        )
        if value is not None
    ]
    if not sources:
        return [FieldError(PATH, "one of trialSpec, configMap or command is required")]
    if len(sources) > 1:
        return [
            FieldError(
                PATH,
                f"only one of trialSpec, configMap or command may be set; got {', '.join(sources)}",
            )
        ]
    errors: list[FieldError] = []
    errors += _check_trial_parameters(template, parameters)
    if template.env is not None and template.command is None:
        errors.append(
            FieldError(
                f"{PATH}.env",
                "only used with trialTemplate.command; in a trialSpec set env on the container",
            )
        )
    if template.config_map is not None:
        cm = template.config_map
        for name, value in (
            ("configMapName", cm.config_map_name),
            ("configMapNamespace", cm.config_map_namespace),
            ("templatePath", cm.template_path),
        ):
            if not value:
                errors.append(FieldError(f"{PATH}.configMap.{name}", "required"))
        # The template text lives in the cluster; placeholders cannot be checked here.
        return errors
    if template.command is not None:
        if not template.command or not template.command[0].strip():
            errors.append(FieldError(f"{PATH}.command", "must be a non-empty argv list"))
        texts = list(_strings(template.command, f"{PATH}.command"))
        texts += list(_strings(template.env or {}, f"{PATH}.env"))
    else:
        assert template.trial_spec is not None
        errors += _check_trial_spec(template)
        texts = list(_strings(template.trial_spec, f"{PATH}.trialSpec"))
    errors += _check_placeholders(template, texts)
    return errors


def _check_trial_parameters(
    template: TrialTemplate, parameters: list[ParameterSpec]
) -> list[FieldError]:
    errors: list[FieldError] = []
    parameter_names = list(dict.fromkeys(p.name for p in parameters))
    names: dict[str, int] = {}
    references: dict[str, int] = {}
    for i, tp in enumerate(template.trial_parameters):
        path = f"{PATH}.trialParameters[{i}]"
        if not tp.name:
            errors.append(FieldError(f"{path}.name", "required"))
        elif "{" in tp.name or "}" in tp.name:
            errors.append(FieldError(f"{path}.name", "must not contain '{' or '}'"))
        elif tp.name in names:
            errors.append(
                FieldError(
                    f"{path}.name",
                    f"duplicate trial parameter name {tp.name!r} (also trialParameters[{names[tp.name]}])",
                )
            )
        else:
            names[tp.name] = i
        if not tp.reference:
            errors.append(FieldError(f"{path}.reference", "required"))
            continue
        if tp.reference in references:
            errors.append(
                FieldError(
                    f"{path}.reference",
                    f"duplicate reference {tp.reference!r} "
                    f"(also trialParameters[{references[tp.reference]}])",
                )
            )
            continue
        references[tp.reference] = i
        # As Katib: without parameters (reported elsewhere) references cannot be checked.
        if (
            parameter_names
            and tp.reference not in parameter_names
            and not is_meta_reference(tp.reference)
        ):
            known = ", ".join(parameter_names) or "none"
            errors.append(
                FieldError(
                    f"{path}.reference",
                    f"{tp.reference!r} is not a parameter name ({known}) nor a trial "
                    "metadata reference such as ${trialSpec.Name}",
                )
            )
    return errors


def _check_placeholders(template: TrialTemplate, texts: list[tuple[str, str]]) -> list[FieldError]:
    errors: list[FieldError] = []
    declared = {tp.name for tp in template.trial_parameters}
    used: set[str] = set()
    for path, text in texts:
        for match in _TRIAL_PARAMETER.finditer(text):
            name = match.group(1)
            used.add(name)
            if name not in declared:
                errors.append(
                    FieldError(
                        path, f"{match.group(0)} is not declared in trialTemplate.trialParameters"
                    )
                )
        for match in _META_PLACEHOLDER.finditer(text):
            if not is_meta_key(match.group(1)):
                errors.append(
                    FieldError(
                        path,
                        f"unknown trial metadata reference {match.group(0)}; valid: "
                        "Name, Namespace, Kind, APIVersion, Labels[key], Annotations[key]",
                    )
                )
    for i, tp in enumerate(template.trial_parameters):
        if tp.name and tp.name not in used and "{" not in tp.name and "}" not in tp.name:
            errors.append(
                FieldError(
                    f"{PATH}.trialParameters[{i}].name",
                    f"{tp.name!r} is not used in the trial template "
                    f"(no ${{trialParameters.{tp.name}}} found)",
                )
            )
    return errors


def _check_trial_spec(template: TrialTemplate) -> list[FieldError]:
    spec = template.trial_spec or {}
    path = f"{PATH}.trialSpec"
    errors: list[FieldError] = []
    for key in ("apiVersion", "kind"):
        if not isinstance(spec.get(key), str) or not spec.get(key):
            errors.append(FieldError(f"{path}.{key}", "required"))
    metadata = spec.get("metadata")
    if isinstance(metadata, dict):
        for key in ("name", "namespace"):
            if metadata.get(key):
                errors.append(
                    FieldError(
                        f"{path}.metadata.{key}",
                        "must be omitted (each trial gets its own name and the experiment's namespace)",
                    )
                )
    if not template.primary_container_name:
        errors.append(FieldError(f"{PATH}.primaryContainerName", "required with trialSpec"))
    for keys in (("spec", "activeDeadlineSeconds"), ("spec", "runPolicy", "activeDeadlineSeconds")):
        deadline = _get(spec, *keys)
        if deadline is not None and (
            not isinstance(deadline, int) or isinstance(deadline, bool) or deadline < 1
        ):
            errors.append(
                FieldError(
                    f"{path}.{'.'.join(keys)}",
                    f"must be a whole number of seconds >= 1; got {deadline!r}",
                )
            )
    kind = spec.get("kind")
    if kind == JOB_KIND and spec.get("apiVersion") == JOB_API_VERSION:
        containers_path = f"{path}.spec.template.spec.containers"
        containers = _get(spec, "spec", "template", "spec", "containers")
        if not isinstance(containers, list) or not containers:
            errors.append(
                FieldError(containers_path, "required: a list with the trial's container")
            )
            return errors
        found = [(f"{containers_path}[{i}]", c) for i, c in enumerate(containers)]
    else:
        found = list(_containers(spec, path))
        if not found:
            # Katib validates batch Jobs only: an Argo Workflow, a TrainJob or another
            # custom resource is accepted as it is (whether it runs here is a separate
            # question, answered by `experiment validate`'s notes).
            return errors
    for container_path, container in found:
        if not isinstance(container, dict):
            errors.append(FieldError(container_path, "must be a mapping"))
        elif not isinstance(container.get("name"), str) or not container["name"]:
            errors.append(FieldError(f"{container_path}.name", "required: a container name"))
    if not template.primary_container_name:
        return errors
    primary = [
        (p, c)
        for p, c in found
        if isinstance(c, dict) and c.get("name") == template.primary_container_name
    ]
    if not primary:
        names = ", ".join(str(c.get("name")) for _, c in found if isinstance(c, dict)) or "none"
        errors.append(
            FieldError(
                f"{PATH}.primaryContainerName",
                f"no container named {template.primary_container_name!r} in trialSpec (found: {names})",
            )
        )
        return errors
    container_path, container = primary[0]
    for key in ("command", "args"):
        value = container.get(key)
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value)
        ):
            errors.append(FieldError(f"{container_path}.{key}", "must be a list of strings"))
    if not container.get("command") and not container.get("args"):
        errors.append(
            FieldError(
                container_path,
                "the primary container needs a command or args (local trials run them as a process)",
            )
        )
    return errors


def _get(node: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _containers(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every ``containers`` entry anywhere in a Kubernetes object (TFJob, PyTorchJob, ...)."""
    if isinstance(node, dict):
        for key, value in node.items():
            child = f"{path}.{key}"
            if key == "containers" and isinstance(value, list):
                yield from ((f"{child}[{i}]", c) for i, c in enumerate(value))
            else:
                yield from _containers(value, child)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _containers(item, f"{path}[{i}]")


def _strings(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string (keys and values) in a YAML tree, with its path."""
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        for key, value in node.items():
            child = f"{path}.{key}"
            if isinstance(key, str) and "${" in key:
                yield child, key
            yield from _strings(value, child)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _strings(item, f"{path}[{i}]")
