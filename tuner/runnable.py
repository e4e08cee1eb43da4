"""Can this machine run a (valid) experiment? The truth, before any trial runs.

``experiment validate`` prints :func:`local_problems` as ``note: cannot run locally: ...``
(the file is valid Katib) and :func:`local_notes` as plain notes; ``experiment run`` ends
an experiment with problems ``Failed`` (``ExperimentFailed``) at start, instead of failing
it trial by trial. Cheap: no optuna, no MLflow.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tuner.spec.models import Experiment, ParameterType

_PYTHONS = frozenset({"python", "python3"})


def local_problems(
    experiment: Experiment,
    *,
    commands: bool = True,
    check_command_here: bool = True,
    entrypoints: bool = False,
) -> list[str]:
    """Why the experiment cannot run here, one line each (empty: it can).

    ``commands``: its trials are rendered commands (False for SDK functions, which have no
    template to run). ``check_command_here``: the command must exist on this machine
    (False for trials that run on other machines, which may have what this one lacks).
    ``entrypoints``: trials run in their image, so a container without ``command`` (the
    image's entrypoint) can run; otherwise it is a problem naming the missing field.
    """
    from tuner.metrics import check_collector_supported

    problems: list[str] = []
    algorithm = _algorithm_problem(experiment)
    if algorithm is not None:
        problems.append(algorithm)
    collector = check_collector_supported(experiment.spec.metrics_collector_spec)
    if collector is not None:
        problems.append(collector)
    if commands:
        problems += _template_problems(experiment, check_command_here, entrypoints)
    return problems


def local_notes(experiment: Experiment) -> list[str]:
    """Things that run differently here than on a cluster (not problems)."""
    template = experiment.spec.trial_template
    if template is None or template.trial_spec is None:
        return []
    from tuner.trial_template import TemplateError, local_container

    try:
        container = local_container(template.trial_spec, template.primary_container_name)
    except TemplateError:
        return []
    image = container.get("image")
    if not image:
        return []
    return [
        f"image {image} is not pulled or run: the primary container's command runs as a "
        "process on this machine"
    ]


def _algorithm_problem(experiment: Experiment) -> str | None:
    from tuner.suggestion.algorithms import UnknownAlgorithm, get_algorithm
    from tuner.suggestion.settings import parse_settings

    spec = experiment.spec.algorithm
    try:
        algorithm = get_algorithm(spec.algorithm_name)
    except UnknownAlgorithm as exc:
        return str(exc)
    settings, _ = parse_settings(algorithm.name, algorithm.settings, spec.algorithm_settings)
    return algorithm.local_problem(settings)


def _sample_assignments(experiment: Experiment) -> dict[str, float | int | str]:
    """One value per parameter, to render the template as a trial would."""
    sample: dict[str, float | int | str] = {}
    for p in experiment.spec.parameters:
        space = p.feasible_space
        if space.values:
            sample[p.name] = space.values[0]
        elif p.parameter_type is ParameterType.INT:
            sample[p.name] = int(space.min or 0)
        else:
            sample[p.name] = float(space.min or 0)
    return sample


def _template_problems(
    experiment: Experiment, check_command_here: bool = True, entrypoints: bool = False
) -> list[str]:
    from tuner.backends.local import check_command, trial_argv
    from tuner.trial_template import TemplateError, render_trial

    template = experiment.spec.trial_template
    if template is None:
        return []
    if template.config_map is not None:
        cm = template.config_map
        return [
            f"trialTemplate.configMap: the trial template is in ConfigMap "
            f"{cm.config_map_namespace}/{cm.config_map_name} of a cluster, which is not read "
            "here; put it in trialTemplate.trialSpec (or use trialTemplate.command)"
        ]
    base_dir = getattr(experiment, "base_dir", None)
    cwd = Path(base_dir) if base_dir else Path.cwd()
    try:
        rendered = render_trial(experiment, "sample", _sample_assignments(experiment), cwd)
    except (TemplateError, KeyError, ValueError) as exc:
        return [str(exc)]
    if rendered.entrypoint:
        if entrypoints:
            return []  # the image's entrypoint: nothing to check here
        return [
            f"{rendered.command_field}: required here: the trial runs as a process on this "
            "machine or a Ray node, not in its image, so the image's entrypoint cannot run; "
            "write the command (or run the trials as Kubernetes Jobs: --backend kubernetes)"
        ]
    if not check_command_here:
        return []
    cwd = rendered.cwd or cwd
    argv = trial_argv(rendered.command)
    env_path = rendered.env.get("PATH", os.environ.get("PATH", os.defpath))
    problem = check_command(argv, cwd, env_path)
    if problem is not None:
        return [f"trial command: {problem}{_inside_image(rendered.image)}"]
    script = _python_script(rendered.command, _raw_command(experiment))
    if script is not None:
        path = Path(script) if os.path.isabs(script) else cwd / script
        if not path.exists():
            where = "" if os.path.isabs(script) else f" (in {cwd})"
            return [
                f"trial command: script {script} does not exist{where}{_inside_image(rendered.image)}"
            ]
    return []


def _inside_image(image: str | None) -> str:
    return f"; it may be inside the image {image}, which is not run locally" if image else ""


def _raw_command(experiment: Experiment) -> list[str]:
    """The template's argv before substitution (to skip arguments with placeholders)."""
    template = experiment.spec.trial_template
    assert template is not None
    if template.command is not None:
        return list(template.command)
    from tuner.trial_template import TemplateError, local_container

    try:
        container: dict[str, Any] = local_container(
            template.trial_spec or {}, template.primary_container_name
        )
    except TemplateError:
        return []
    return [str(a) for a in (container.get("command") or [])] + [
        str(a) for a in (container.get("args") or [])
    ]


def _python_script(argv: list[str], raw: list[str]) -> str | None:
    """The script a ``python [options] script.py ...`` command runs, if it names one."""
    if not argv or os.path.basename(argv[0]) not in _PYTHONS:
        return None
    for i, arg in enumerate(argv[1:], start=1):
        if arg in ("-m", "-c", "-"):
            return None  # a module, inline code or stdin: no file to check
        if arg.startswith("-"):
            continue
        if i < len(raw) and "${" in raw[i]:
            return None  # chosen by a parameter: cannot be checked before a trial
        return arg
    return None
