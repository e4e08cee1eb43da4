"""Reading a compiled PipelineSpec: loading pipeline files, arguments, executors.

The spec is handled in its JSON form (what kfp's compiler writes as YAML, camelCase keys),
so it can be stored, digested and printed as is. Errors are :class:`PipelineError` with a
message that names the file, argument or task.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXECUTOR_MAIN = "kfp.dsl.executor_main"
_PIP_OPTIONS_WITH_VALUE = frozenset(
    {"--index-url", "-i", "--extra-index-url", "--trusted-host", "--find-links", "-f"}
)


class PipelineError(ValueError):
    """Bad input: a pipeline that does not load, a bad argument, a task that cannot run."""


class SpecProblems(PipelineError):
    """A PipelineSpec with bad fields: ``problems`` pairs each field's path in the spec
    (``deploymentSpec.executors.exec-add.container.command``) with what is wrong with it,
    so that the API can name each field under ``spec.pipelineSpec``."""

    def __init__(self, where: str, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        listed = "; ".join(f"{path}: {message}" for path, message in problems)
        super().__init__(f"{where} is not a valid PipelineSpec: {listed}")


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


# -- loading ---------------------------------------------------------------------------------


def import_kfp_runtime() -> bool:
    """Import kfp as a KFP container does (``_KFP_RUNTIME``): the PipelineSpec proto,
    placeholders and the executor, without the client, which imports the kubernetes
    client (seconds, most of what compiling a pipeline file cost). For a process that
    runs pipelines (the CLI, the server); False if kfp is not installed. Only the package
    is imported so: ``kfp.dsl`` imported afterwards is the whole SDK (``dsl.component``,
    ``dsl.pipeline``), and what the package would have imported (``kfp.dsl``,
    ``kfp.components``, ``kfp.Client``) is imported when a pipeline file first uses it.
    """
    import os
    import sys

    if "kfp" in sys.modules:
        return True
    previous = os.environ.get("_KFP_RUNTIME")
    os.environ["_KFP_RUNTIME"] = "true"
    try:
        import kfp
    except ImportError:
        return False
    finally:
        if previous is None:
            del os.environ["_KFP_RUNTIME"]
        else:
            os.environ["_KFP_RUNTIME"] = previous
    if not hasattr(kfp, "Client"):
        kfp.__getattr__ = _kfp_on_demand  # PEP 562: the module falls back to it
    return True


def _kfp_on_demand(name: str) -> Any:
    """``kfp.<name>`` of what ``kfp/__init__`` imports outside a KFP container."""
    import importlib

    if name in ("components", "dsl", "client"):
        return importlib.import_module(f"kfp.{name}")
    if name == "Client":
        from kfp.client import Client

        return Client
    raise AttributeError(f"module 'kfp' has no attribute {name!r}")


def load_pipeline(source: Any, pipeline: str | None = None) -> tuple[dict[str, Any], str]:
    """The PipelineSpec (JSON form) of ``source`` and a description of where it came from.

    ``source``: a compiled pipeline file (``.yaml``/``.yml``/``.json``), a Python file with
    ``@dsl.pipeline`` functions (``pipeline`` picks one by function or pipeline name when
    there are several), a pipeline function itself, or an already loaded spec dict.
    """
    if isinstance(source, dict):
        return _checked(source, "the given spec"), "spec"
    if callable(source) and not isinstance(source, str | Path):
        return compile_pipeline(source), getattr(source, "name", repr(source))
    path = Path(source)
    if not path.is_file():
        raise PipelineError(f"pipeline file {path} does not exist")
    if path.suffix in (".yaml", ".yml", ".json"):
        return _load_compiled(path), str(path)
    if path.suffix == ".py":
        return compile_pipeline(_pipeline_from_python(path, pipeline)), str(path)
    raise PipelineError(
        f"{path}: a pipeline file is a compiled pipeline (.yaml, .json) or a Python file (.py)"
    )


def _load_compiled(path: Path) -> dict[str, Any]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader: 20x faster
    try:
        documents = [d for d in yaml.load_all(path.read_text(), Loader=loader) if d is not None]
    except yaml.YAMLError as exc:
        raise PipelineError(f"{path} is not valid YAML: {exc}") from None
    if not documents or not isinstance(documents[0], dict):
        raise PipelineError(f"{path} holds no pipeline spec")
    return _checked(documents[0], str(path))


def _checked(spec: dict[str, Any], where: str) -> dict[str, Any]:
    for key in ("pipelineInfo", "root", "components", "deploymentSpec"):
        if key not in spec and not (key == "components" and "root" in spec):
            raise PipelineError(f"{where} is not a compiled KFP pipeline: no {key!r}")
    _check_task_names(spec, where)
    # Before the proto: ParseDict takes null for any message (an unset field) and does not
    # look inside deploymentSpec (a Struct), and the run reads both.
    problems = spec_problems(spec)
    if problems:
        raise SpecProblems(where, problems)
    # Validate with kfp's own proto: unknown fields or wrong types are errors here.
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    try:
        json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    except json_format.ParseError as exc:
        raise PipelineError(f"{where} is not a valid PipelineSpec: {exc}") from None
    except RecursionError:  # ParseDict recurses into Value fields (a default of lists of ...)
        raise PipelineError(f"{where} is not a valid PipelineSpec: nested too deeply") from None
    return spec


# The pipeline's name names its MLflow experiment, whose artifact folder is named after it,
# and the default name of a local run (``<name>-<hex>``), a folder too. kfp's compiler
# writes lowercase DNS labels of up to 128 characters; a hand-written spec may use a display
# name ("Add twice"), but not a path: no separators or control characters, not "." or "..".
PIPELINE_NAME_MAX = 128
_PARAMETER_TYPES = frozenset(
    {
        "NUMBER_DOUBLE",
        "NUMBER_INTEGER",
        "STRING",
        "BOOLEAN",
        "LIST",
        "STRUCT",
        "TASK_FINAL_STATUS",
        "TASK_CONFIG",
    }
)


def pipeline_name_problem(name: Any) -> str | None:
    """What is wrong with ``name`` as a pipeline's name, or None."""
    if not isinstance(name, str) or not name.strip():
        return "must be a non-empty string"
    if len(name) > PIPELINE_NAME_MAX:
        return f"must be at most {PIPELINE_NAME_MAX} characters, got {len(name)}"
    if name in (".", "..") or "/" in name or "\\" in name or not name.isprintable():
        return "must not be '.' or '..' nor contain '/', '\\' or control characters"
    return None


def spec_problems(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """Every field of a PipelineSpec (JSON form) the run would trip on, with its path:
    the parts the proto does not check (executors, parameter values) and the nulls it
    takes for unset fields; references between components, executors and tasks."""
    problems: list[tuple[str, str]] = []
    info = spec.get("pipelineInfo")
    if not isinstance(info, dict):
        problems.append(("pipelineInfo", "must be an object"))
    else:
        wrong = pipeline_name_problem(info.get("name"))
        if wrong is not None:
            problems.append(("pipelineInfo.name", wrong))
    executors: dict[str, Any] | None = None  # None: unreadable, references not checked
    deployment = spec.get("deploymentSpec", {})
    if not isinstance(deployment, dict):
        problems.append(("deploymentSpec", "must be an object"))
    elif not isinstance(deployment.get("executors", {}), dict):
        problems.append(("deploymentSpec.executors", "must be an object"))
    else:
        executors = deployment.get("executors", {})
        for label, executor in executors.items():
            problems += _executor_problems(f"deploymentSpec.executors.{label}", executor)
    components = spec.get("components", {})
    if not isinstance(components, dict):
        problems.append(("components", "must be an object"))
        components = None
    root = spec.get("root")
    if isinstance(root, dict) and "dag" not in root:
        problems.append(("root.dag", "must be an object (the pipeline's tasks)"))
    else:
        problems += _component_problems("root", root, components, executors)
    for name, component in (components or {}).items():
        problems += _component_problems(f"components.{name}", component, components, executors)
    problems += _null_problems(spec, "")
    first: dict[str, str] = {}
    for path, message in problems:  # a null is named once, by the specific check if any
        first.setdefault(path, message)
    return list(first.items())


# Fields of the proto that hold any JSON (google.protobuf.Value or Struct): null is a value
# there. Everywhere else it is what ParseDict takes for "unset", and what the run cannot read.
_ANY_JSON = frozenset(
    {"config", "constant", "defaultValue", "deploymentSpec", "literals", "metadata", "pvcSpecPatch"}
)


def _null_problems(spec: dict[str, Any], path: str) -> list[tuple[str, str]]:
    """Nulls outside ``_ANY_JSON`` fields, by path (a loop, not recursion: any depth)."""
    problems: list[tuple[str, str]] = []
    stack: list[tuple[str, Any]] = [(path, spec)]
    while stack:
        where, value = stack.pop()
        if value is None:
            problems.append((where, "must not be null"))
        elif isinstance(value, dict):
            stack += [
                (f"{where}.{k}" if where else str(k), v)
                for k, v in value.items()
                if k not in _ANY_JSON
            ]
        elif isinstance(value, list):
            stack += [(f"{where}[{i}]", v) for i, v in enumerate(value)]
    return sorted(problems)


def _component_problems(
    path: str,
    component: Any,
    components: dict[str, Any] | None,
    executors: dict[str, Any] | None,
) -> list[tuple[str, str]]:
    if not isinstance(component, dict):
        return [(path, "must be an object")]
    problems: list[tuple[str, str]] = []
    for side in ("inputDefinitions", "outputDefinitions"):
        problems += _definitions_problems(f"{path}.{side}", component.get(side, {}))
    if "dag" not in component:
        label = component.get("executorLabel")
        if executors is not None and (not isinstance(label, str) or label not in executors):
            problems.append(
                (
                    f"{path}.executorLabel",
                    f"must name an executor of deploymentSpec.executors, got {label!r}",
                )
            )
        return problems
    dag = component["dag"]
    if not isinstance(dag, dict):
        return [*problems, (f"{path}.dag", "must be an object")]
    tasks = dag.get("tasks", {})
    if not isinstance(tasks, dict):
        return [*problems, (f"{path}.dag.tasks", "must be an object")]
    for name, task in tasks.items():
        where = f"{path}.dag.tasks.{name}"
        if not isinstance(task, dict):
            problems.append((where, "must be an object"))
            continue
        ref = task.get("componentRef")
        ref_name = ref.get("name") if isinstance(ref, dict) else None
        if components is not None and (not isinstance(ref_name, str) or ref_name not in components):
            problems.append(
                (f"{where}.componentRef.name", f"must name a component, got {ref_name!r}")
            )
        after = task.get("dependentTasks", [])
        if not isinstance(after, list) or not all(isinstance(t, str) and t in tasks for t in after):
            problems.append((f"{where}.dependentTasks", "must be a list of tasks of its dag"))
    return problems


def _definitions_problems(path: str, definitions: Any) -> list[tuple[str, str]]:
    if not isinstance(definitions, dict):
        return [(path, "must be an object")]
    problems: list[tuple[str, str]] = []
    artifacts = definitions.get("artifacts", {})
    if not isinstance(artifacts, dict) or not all(isinstance(a, dict) for a in artifacts.values()):
        problems.append((f"{path}.artifacts", "must be an object of objects"))
    parameters = definitions.get("parameters", {})
    if not isinstance(parameters, dict):
        return [*problems, (f"{path}.parameters", "must be an object")]
    for name, definition in parameters.items():
        where = f"{path}.parameters.{name}"
        if not isinstance(definition, dict):
            problems.append((where, "must be an object"))
            continue
        kind = definition.get("parameterType", "STRING")
        if not isinstance(kind, str) or kind not in _PARAMETER_TYPES:  # the proto takes numbers
            choices = ", ".join(sorted(_PARAMETER_TYPES))
            problems.append((f"{where}.parameterType", f"must be one of {choices}, got {kind!r}"))
            continue
        if "defaultValue" in definition:
            value = definition["defaultValue"]
            if kind == "NUMBER_INTEGER" and isinstance(value, float) and value.is_integer():
                value = int(value)  # JSON and the proto carry every number as a double
            optional_none = value is None and definition.get("isOptional") is True
            if not optional_none and not check_type(value, kind):
                problems.append(
                    (
                        f"{where}.defaultValue",
                        f"must be {_TYPE_NAMES.get(kind, kind)} (parameterType {kind}), "
                        f"got {value!r}",
                    )
                )
    return problems


def _executor_problems(path: str, executor: Any) -> list[tuple[str, str]]:
    """KFP's schema for what hyperflow runs: ``{container: {image, command, args, env,
    resources}}`` or ``{importer: {artifactUri, typeSchema, metadata}}``."""
    if not isinstance(executor, dict):
        return [(path, "must be an object")]
    if "importer" in executor:
        importer = executor["importer"]
        if not isinstance(importer, dict):
            return [(f"{path}.importer", "must be an object")]
        return [
            (f"{path}.importer.{key}", "must be an object")
            for key in ("artifactUri", "typeSchema", "metadata")
            if not isinstance(importer.get(key, {}), dict)
        ]
    if "container" not in executor:
        return [(path, "must have a container or an importer (what hyperflow runs)")]
    container = executor["container"]
    if not isinstance(container, dict):
        return [(f"{path}.container", "must be an object")]
    problems: list[tuple[str, str]] = []
    if not isinstance(container.get("image", ""), str):
        problems.append((f"{path}.container.image", "must be a string"))
    for key in ("command", "args"):
        value = container.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append((f"{path}.container.{key}", "must be a list of strings"))
    env = container.get("env", [])
    if not isinstance(env, list) or not all(
        isinstance(e, dict) and isinstance(e.get("name"), str) for e in env
    ):
        problems.append((f"{path}.container.env", "must be a list of {name, value} objects"))
    if not isinstance(container.get("resources", {}), dict):
        problems.append((f"{path}.container.resources", "must be an object"))
    return problems


# A task's name is a folder of the run (``<pipeline root>/<task path>``): one path segment.
# kfp's compiler makes them DNS labels (``add``, ``for-loop-2``); a hand-written spec may
# not name ``..`` or ``a/b`` and reach outside the run's folder.
_TASK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,252}")


def _check_task_names(spec: dict[str, Any], where: str) -> None:
    """First, before any other check: a name that climbs out is the error to tell."""
    components = spec.get("components")
    dags = [("root", spec.get("root"))]
    if isinstance(components, dict):
        dags += [(f"components.{k}", v) for k, v in components.items()]
    for owner, component in dags:
        dag = component.get("dag") if isinstance(component, dict) else None
        tasks = dag.get("tasks") if isinstance(dag, dict) else None
        for name in tasks if isinstance(tasks, dict) else {}:
            if not _TASK_NAME.fullmatch(name):
                raise PipelineError(
                    f"{where}: task {name!r} of {owner}.dag.tasks is not a valid task name "
                    "(letters, digits, '-', '_' and '.', starting with a letter or digit)"
                )


def compile_pipeline(function: Any) -> dict[str, Any]:
    """Compile a ``@dsl.pipeline`` function (or a component) with kfp's compiler.

    Compiled to kfp's JSON form (the same PipelineSpec as the YAML's first document):
    reading JSON back costs microseconds, the YAML round trip ~0.2 s of pure-Python YAML.
    A pipeline with platform-specific features (which kfp writes only as YAML) falls back
    to the YAML form, whose first document is the same PipelineSpec.
    """
    import tempfile
    import warnings

    from kfp import compiler

    name = getattr(function, "name", getattr(function, "__name__", repr(function)))
    with tempfile.TemporaryDirectory() as tmp:
        as_json = Path(tmp) / "pipeline.json"
        try:
            with warnings.catch_warnings():
                # kfp deprecates its JSON output; the PipelineSpec in it is the same.
                warnings.simplefilter("ignore", DeprecationWarning)
                compiler.Compiler().compile(function, str(as_json))
            return dict(json.loads(as_json.read_text()))
        except ValueError as exc:
            if "Platform-specific features" not in str(exc):
                raise PipelineError(
                    f"pipeline {name} does not compile: ValueError: {exc}"
                ) from None
        except Exception as exc:
            raise PipelineError(
                f"pipeline {name} does not compile: {type(exc).__name__}: {exc}"
            ) from None
        import yaml

        as_yaml = Path(tmp) / "pipeline.yaml"
        try:
            compiler.Compiler().compile(function, str(as_yaml))
        except Exception as exc:
            raise PipelineError(
                f"pipeline {name} does not compile: {type(exc).__name__}: {exc}"
            ) from None
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        documents = yaml.load_all(as_yaml.read_text(), Loader=loader)
        return next(d for d in documents if d is not None)


def _pipeline_from_python(path: Path, wanted: str | None) -> Any:
    import importlib.util
    import sys
    import warnings

    from kfp.dsl import graph_component

    module_name = f"_hyperflow_pipeline_{digest(str(path.resolve()))[:12]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PipelineError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    # The file's folder stays importable (as a script's is); tasks get it too (the
    # orchestrator's import_paths): components may import modules next to the file.
    folder = str(path.parent.resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            spec.loader.exec_module(module)
    except Exception as exc:
        raise PipelineError(f"{path} does not load: {type(exc).__name__}: {exc}") from None
    found = {
        attr: value
        for attr, value in vars(module).items()
        if isinstance(value, graph_component.GraphComponent)
        and getattr(value, "pipeline_func", None) is not None
        and getattr(value.pipeline_func, "__module__", None) == module_name
    }
    if wanted is not None:
        for attr, value in found.items():
            if wanted in (attr, value.name):
                return value
        raise PipelineError(
            f"{path} has no pipeline named {wanted!r}; it has: {', '.join(sorted(found)) or 'none'}"
        )
    if not found:
        raise PipelineError(f"{path} defines no @dsl.pipeline function")
    if len(found) > 1:
        # A pipeline used as a component of another one is not the one to run.
        used = _used_as_components(found)
        top = {k: v for k, v in found.items() if k not in used}
        if len(top) == 1:
            return next(iter(top.values()))
        raise PipelineError(
            f"{path} defines several pipelines ({', '.join(sorted(found))}): "
            "pick one with --pipeline NAME"
        )
    return next(iter(found.values()))


def _used_as_components(found: dict[str, Any]) -> set[str]:
    used: set[str] = set()
    for attr, value in found.items():
        components = value.pipeline_spec.components
        for other_attr, other in found.items():
            if other_attr != attr and f"comp-{other.name}" in components:
                used.add(other_attr)
    return used


# -- arguments ---------------------------------------------------------------------------------

_TYPE_NAMES = {
    "STRING": "a string",
    "NUMBER_INTEGER": "an integer",
    "NUMBER_DOUBLE": "a number",
    "BOOLEAN": "a boolean",
    "LIST": "a list",
    "STRUCT": "a dict",
}


def parse_cli_value(raw: str, parameter_type: str) -> Any:
    """A ``--arg name=value`` string as the parameter's type."""
    if parameter_type == "STRING":
        return raw
    if parameter_type == "NUMBER_INTEGER":
        return int(raw)
    if parameter_type == "NUMBER_DOUBLE":
        return float(raw)
    if parameter_type == "BOOLEAN":
        lowered = raw.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ValueError(f"{raw!r} is not a boolean")
    return json.loads(raw)


def check_type(value: Any, parameter_type: str) -> bool:
    if parameter_type == "STRING":
        return isinstance(value, str)
    if parameter_type == "NUMBER_INTEGER":
        return isinstance(value, int) and not isinstance(value, bool)
    if parameter_type == "NUMBER_DOUBLE":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if parameter_type == "BOOLEAN":
        return isinstance(value, bool)
    if parameter_type == "LIST":
        return isinstance(value, list)
    if parameter_type == "STRUCT":
        return isinstance(value, dict)
    return True


def default_value(definition: dict[str, Any]) -> tuple[bool, Any]:
    """(has a default, the default) of an input parameter definition."""
    if "defaultValue" not in definition:
        return False, None
    value = definition["defaultValue"]
    if definition.get("parameterType") == "NUMBER_INTEGER" and isinstance(value, float):
        value = int(value)
    return True, value


def pipeline_arguments(
    spec: dict[str, Any], arguments: dict[str, Any], *, from_cli: bool = False
) -> dict[str, Any]:
    """The root DAG's inputs: ``arguments`` checked against its definitions, defaults added."""
    definitions = spec["root"].get("inputDefinitions", {})
    params: dict[str, Any] = definitions.get("parameters", {})
    if definitions.get("artifacts"):
        names = ", ".join(sorted(definitions["artifacts"]))
        raise PipelineError(f"pipeline inputs of artifact type ({names}) are not supported")
    unknown = sorted(set(arguments) - set(params))
    if unknown:
        known = ", ".join(sorted(params)) or "none"
        raise PipelineError(f"unknown pipeline argument(s) {', '.join(unknown)} (inputs: {known})")
    resolved: dict[str, Any] = {}
    for name, definition in params.items():
        kind = definition.get("parameterType", "STRING")
        if name in arguments:
            value = arguments[name]
            if from_cli and isinstance(value, str):
                try:
                    value = parse_cli_value(value, kind)
                except ValueError as exc:
                    raise PipelineError(
                        f"argument {name}: {value!r} is not {_TYPE_NAMES.get(kind, kind)} ({exc})"
                    ) from None
            if kind == "NUMBER_DOUBLE" and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if kind == "NUMBER_INTEGER" and isinstance(value, float) and value.is_integer():
                value = int(value)  # KFP's API carries every number as a double: 3.0 is 3
            if not check_type(value, kind):
                raise PipelineError(
                    f"argument {name}: expected {_TYPE_NAMES.get(kind, kind)}, "
                    f"got {type(value).__name__} {value!r}"
                )
            resolved[name] = value
            continue
        has_default, value = default_value(definition)
        if has_default:
            resolved[name] = value
        elif not definition.get("isOptional"):
            raise PipelineError(
                f"missing argument {name} ({_TYPE_NAMES.get(kind, kind)}): "
                f"pass it as --arg {name}=VALUE"
            )
    return resolved


# -- executors ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Lightweight:
    """A ``@dsl.component``: its function's source and name, and what it would pip install."""

    source: str
    function: str
    packages: list[str] = field(default_factory=list)


def lightweight(container: dict[str, Any]) -> Lightweight | None:
    """The lightweight Python component in a container executor, or None."""
    command = [str(c) for c in container.get("command", [])]
    args = [str(a) for a in container.get("args", [])]
    index = next((i for i, c in enumerate(command) if EXECUTOR_MAIN in c), None)
    if index is None or index + 1 >= len(command) or "--function_to_execute" not in args:
        return None
    position = args.index("--function_to_execute")
    if position + 1 >= len(args):
        return None
    packages: list[str] = []
    for part in command[:index]:
        if "pip install" in part:
            packages.extend(_pip_packages(part))
    return Lightweight(source=command[index + 1], function=args[position + 1], packages=packages)


def _pip_packages(script: str) -> list[str]:
    out: list[str] = []
    for line in script.replace("&&", "\n").splitlines():
        if "pip install" not in line:
            continue
        try:
            words = shlex.split(line.split("pip install", 1)[1])
        except ValueError:
            continue
        skip = False
        for word in words:
            if skip:
                skip = False
                continue
            if word in _PIP_OPTIONS_WITH_VALUE:
                skip = True
                continue
            if word.startswith("-") or word in ("$0", '"$0"'):
                continue
            out.append(word)
    return out


# kfp or kfp-pipeline-spec (any spelling PEP 503 folds to those), whatever follows.
_OURS = re.compile(r"\s*kfp(?:[-_.]+pipeline[-_.]+spec)?(?![A-Za-z0-9._-])", re.IGNORECASE)


# A requirement only for older Pythons (kfp adds typing-extensions for < 3.9).
_OLDER_PYTHON = re.compile(r"[^;]*;\s*python_version\s*<\s*[\"'](\d+)\.(\d+)[\"']\s*")


def _for_older_python(package: str) -> bool:
    """Its marker, ``python_version < "X.Y"`` alone, is false here (as packaging says)."""
    older = _OLDER_PYTHON.fullmatch(package)
    return older is not None and sys.version_info[:2] >= (int(older[1]), int(older[2]))


def missing_packages(packages: list[str]) -> list[str]:
    """Requirements not satisfied by the current environment (kfp itself is ours)."""
    from importlib import metadata

    missing: list[str] = []
    for package in packages:
        if _OURS.match(package) or _for_older_python(package):
            continue  # what every lightweight component lists: no need to parse it
        from packaging.requirements import InvalidRequirement, Requirement

        try:
            requirement = Requirement(package)
        except InvalidRequirement:
            missing.append(package)  # a path or URL: cannot be checked, so not present
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        if requirement.name.lower() in ("kfp", "kfp-pipeline-spec"):
            continue
        try:
            version = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            missing.append(package)
            continue
        if requirement.specifier and not requirement.specifier.contains(version, prereleases=True):
            missing.append(f"{package} (installed: {version})")
    return missing


def cpu_amount(container: dict[str, Any]) -> float:
    """CPUs a task asks for (``set_cpu_request``/``set_cpu_limit``), 0 if it does not say."""
    resources = container.get("resources") or {}
    best = 0.0
    for key in ("resourceCpuRequest", "resourceCpuLimit", "cpuRequest", "cpuLimit"):
        value = resources.get(key)
        if value in (None, "", 0):
            continue
        amount = _quantity(value)
        best = max(best, amount)
    return best


def _quantity(value: Any) -> float:
    text = str(value).strip()
    try:
        if text.endswith("m"):
            return float(text[:-1]) / 1000
        return float(text)
    except ValueError:
        raise PipelineError(f"CPU quantity {value!r} is not a number or milli-CPUs") from None
