"""A task's ExecutorInput and outputs, in the JSON form kfp's executor reads and writes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pipelines.spec import PipelineError, default_value
from pipelines.tracking import METRICS_SCHEMAS

Outputs = dict[str, Any]  # {"parameters": {...}, "artifacts": {name: [artifact, ...]}}

# Artifacts that are metadata only: no file need exist at their URI.
METRIC_LIKE = METRICS_SCHEMAS | {
    "system.ClassificationMetrics",
    "system.SlicedClassificationMetrics",
}


def typed(value: Any, definition: dict[str, Any] | None) -> Any:
    """JSON numbers of NUMBER_INTEGER parameters as ints (protobuf has only doubles)."""
    if definition is None:
        return value
    integer = definition.get("parameterType") == "NUMBER_INTEGER"
    if integer and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# What viewers (MLflow's artifact pane, a browser) know a file by: an HTML or Markdown
# output gets its extension (the component writes to ``.path`` whatever it is).
_SUFFIXES = {"system.HTML": ".html", "system.Markdown": ".md"}


def _suffix(definition: dict[str, Any]) -> str:
    return _SUFFIXES.get(definition.get("artifactType", {}).get("schemaTitle", ""), "")


def executor_input(
    component: dict[str, Any], inputs: Outputs, task_dir: Path, where: str
) -> dict[str, Any]:
    """The ExecutorInput (JSON form) of a task: input values (defaults filled in), and
    where its outputs go: ``outputs/<name>`` files, ``artifacts/<name>``,
    ``executor_output.json`` under ``task_dir``."""
    definitions = component.get("inputDefinitions", {})
    given = inputs["parameters"]
    values: dict[str, Any] = {}
    for name, definition in definitions.get("parameters", {}).items():
        if name in given:
            values[name] = given[name]
            continue
        has_default, value = default_value(definition)
        if has_default:
            values[name] = value
        elif not definition.get("isOptional"):
            raise PipelineError(f"{where}: no value for input {name}")
    for name, value in given.items():
        values.setdefault(name, value)  # injected pipeline channels (f-strings)
    outputs = component.get("outputDefinitions", {})
    return {
        "inputs": {
            "parameterValues": values,
            "artifacts": {k: {"artifacts": v} for k, v in inputs["artifacts"].items()},
        },
        "outputs": {
            "parameters": {
                name: {"outputFile": str(task_dir / "outputs" / name)}
                for name in outputs.get("parameters", {})
            },
            "artifacts": {
                name: {
                    "artifacts": [
                        {
                            "name": name,
                            "type": definition.get("artifactType", {}),
                            "uri": str(task_dir / "artifacts" / (name + _suffix(definition))),
                            "metadata": {},
                        }
                    ]
                }
                for name, definition in outputs.get("artifacts", {}).items()
            },
            "outputFile": str(task_dir / "executor_output.json"),
        },
    }


def read_outputs(component: dict[str, Any], executor_input: dict[str, Any], where: str) -> Outputs:
    """What a finished task produced, as KFP's launcher reads it: ``executor_output.json``
    (return values, artifact metadata), else ``OutputPath`` files (strings raw, other
    types JSON). A declared output missing is a :class:`PipelineError`; so is an output
    artifact whose file was not written (metrics artifacts are metadata only)."""
    definitions = component.get("outputDefinitions", {})
    outputs_spec = executor_input["outputs"]
    written: dict[str, Any] = {}
    output_file = Path(outputs_spec["outputFile"])
    if output_file.is_file():
        try:
            written = json.loads(output_file.read_text() or "{}")
        except json.JSONDecodeError as exc:
            raise PipelineError(f"{where}: executor output is not JSON: {exc}") from None
    params: dict[str, Any] = {}
    for name, definition in definitions.get("parameters", {}).items():
        kind = definition.get("parameterType", "STRING")
        path = Path(outputs_spec["parameters"][name]["outputFile"])
        if name in written.get("parameterValues", {}):
            value = written["parameterValues"][name]
        elif path.is_file():
            text = path.read_text()
            try:
                if kind == "STRING":
                    value = text
                elif kind == "BOOLEAN":
                    value = json.loads(text.lower())
                else:
                    value = json.loads(text)
            except json.JSONDecodeError:
                raise PipelineError(
                    f"{where}: output {name} ({kind}) in {path} is not valid: {text[:80]!r}"
                ) from None
        else:
            raise PipelineError(f"{where}: the component did not produce its output {name}")
        params[name] = typed(value, definition)
    artifacts: dict[str, list[dict[str, Any]]] = {}
    for name, spec in outputs_spec["artifacts"].items():
        declared = spec["artifacts"]
        reported = written.get("artifacts", {}).get(name, {}).get("artifacts")
        items = []
        for index, artifact in enumerate(declared):
            item = dict(artifact)
            if reported and index < len(reported):
                item["uri"] = reported[index].get("uri", item["uri"])
                item["metadata"] = reported[index].get("metadata", {}) or {}
            schema = item.get("type", {}).get("schemaTitle", "")
            if schema not in METRIC_LIKE and not os.path.exists(item["uri"]):
                raise PipelineError(
                    f"{where}: the component did not write its output artifact {name} "
                    f"({schema}) to {item['uri']}"
                )
            items.append(item)
        artifacts[name] = items
    return {"parameters": params, "artifacts": artifacts}
