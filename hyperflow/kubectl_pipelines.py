"""kubectl's verbs for pipeline runs: the table row, ``describe``, ``logs`` and what
``create -f`` makes of a compiled pipeline (kfp IR YAML) and ``--arg`` values.

Like :mod:`hyperflow.kubectl`, a thin client: no kfp, no store, no pipelines package.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

KIND = "PipelineRun"
FILE_ANNOTATION = "hyperflow.io/pipeline-file"


def is_compiled_pipeline(doc: dict[str, Any]) -> bool:
    """A kfp IR document (what ``kfp.compiler.Compiler().compile`` writes)."""
    return "kind" not in doc and "pipelineInfo" in doc and "root" in doc


def is_platform_spec(doc: dict[str, Any]) -> bool:
    """The second document kfp writes for platform-specific settings (not runnable here)."""
    return "kind" not in doc and set(doc) == {"platforms"}


def run_document(doc: dict[str, Any], file: Path, arguments: list[str]) -> dict[str, Any]:
    """A PipelineRun for ``doc``: a compiled pipeline (run with ``arguments``), or a
    PipelineRun whose ``spec.pipelineFile`` (relative to ``file``) is read and inlined."""
    if is_compiled_pipeline(doc):
        prefix = str(doc["pipelineInfo"].get("name", "pipeline"))[:50]
        run: dict[str, Any] = {
            "apiVersion": "hyperflow.io/v1",
            "kind": KIND,
            "metadata": {"generateName": f"{prefix}-"},
            "spec": {"pipelineSpec": doc, "runtimeConfig": {"parameters": {}}},
        }
        source = file.name
    else:
        run = doc
        spec = run.get("spec")
        source = None
        if isinstance(spec, dict) and isinstance(spec.get("pipelineFile"), str):
            pipeline_file = Path(spec.pop("pipelineFile"))
            if not pipeline_file.is_absolute() and str(file) != "-":
                pipeline_file = file.resolve().parent / pipeline_file
            spec["pipelineSpec"] = _read_compiled(pipeline_file)
            source = pipeline_file.name
    if source:
        md = run.setdefault("metadata", {})
        if isinstance(md, dict):
            annotations = md.setdefault("annotations", {})
            if isinstance(annotations, dict):
                annotations.setdefault(FILE_ANNOTATION, source)
    if arguments:
        _apply_arguments(run, arguments)
    return run


def _read_compiled(path: Path) -> dict[str, Any]:
    from serving import yamlfile  # the spec files' loader: bounded, strict keys

    try:
        docs = yamlfile.load_all(yamlfile.read_text(path))
    except OSError as exc:
        raise _fail(f"spec.pipelineFile: {path}: {exc.strerror or exc}") from None
    except yamlfile.YamlError as exc:
        raise _fail(f"spec.pipelineFile: {path}: {exc}") from None
    if not docs or not isinstance(docs[0], dict) or not is_compiled_pipeline(docs[0]):
        raise _fail(f"spec.pipelineFile: {path} is not a compiled pipeline (kfp IR YAML)")
    return docs[0]


def _apply_arguments(run: dict[str, Any], pairs: list[str]) -> None:
    """``--arg NAME=VALUE``: the value as the pipeline input's type (a YAML scalar, list or
    mapping unless the input is a string); the server checks the types."""
    import yaml

    spec = run.get("spec")
    if not isinstance(spec, dict):
        return
    pipeline = spec.get("pipelineSpec")
    definitions: dict[str, Any] = {}
    if isinstance(pipeline, dict):
        root = pipeline.get("root", {})
        definitions = root.get("inputDefinitions", {}).get("parameters", {}) or {}
    runtime = spec.setdefault("runtimeConfig", {})
    parameters = runtime.setdefault("parameters", {})
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name.strip():
            raise _fail(f"--arg {pair!r}: expected NAME=VALUE")
        kind = definitions.get(name.strip(), {}).get("parameterType", "STRING")
        value: Any = raw
        if kind != "STRING":
            try:
                value = yaml.safe_load(raw)
            except yaml.YAMLError:
                value = raw  # the server names the argument and its type
        parameters[name.strip()] = value


# -- table, describe, logs ----------------------------------------------------------------


def _duration(status: dict[str, Any]) -> str:
    from pipelines.live import duration  # rich only: the read commands stay light

    return duration(status.get("startedAt"), status.get("finishedAt"))


def _task_counts(status: dict[str, Any]) -> str:
    leaves = [t for t in status.get("tasks", []) if t.get("kind") in ("container", "importer")]
    done = [t for t in leaves if t.get("state") in ("SUCCEEDED", "CACHED")]
    return f"{len(done)}/{len(leaves)}"


def _state(status: dict[str, Any]) -> str:
    from pipelines.live import shown_state  # rich only: the read commands stay light

    return shown_state(status)


def row(obj: dict[str, Any], wide: bool, age: str) -> list[str]:
    status = obj.get("status", {})
    out = [
        obj["metadata"]["name"],
        str(obj.get("spec", {}).get("pipelineName", "")),
        _state(status),
        _task_counts(status),
        _duration(status),
        age,
    ]
    if wide:
        out.append(str(status.get("message", "")))
    return out


def describe(obj: dict[str, Any], table: Any) -> None:
    """``table(header, rows)`` prints aligned columns (kubectl's)."""
    from pipelines.live import duration, shown_task_state  # rich only: stays light

    md, spec, status = obj["metadata"], obj.get("spec", {}), obj.get("status", {})
    typer.echo(f"Name:         {md['name']}")
    typer.echo(f"Namespace:    {md.get('namespace', '')}")
    typer.echo(f"Created:      {md.get('creationTimestamp')}")
    typer.echo(f"Pipeline:     {spec.get('pipelineName')} ({spec.get('source')})")
    typer.echo(f"State:        {_state(status)}")
    if status.get("message"):
        typer.echo(f"Message:      {status['message']}")
    parameters = spec.get("runtimeConfig", {}).get("parameters", spec.get("arguments", {}))
    typer.echo(f"Arguments:    {json.dumps(parameters)}")
    if status.get("outputs"):
        typer.echo(f"Outputs:      {json.dumps(status['outputs'])}")
    if status.get("mlflowRunId"):
        typer.echo(f"MLflow run:   {status['mlflowRunId']}")
    typer.echo(f"Duration:     {_duration(status)}")
    typer.echo("Tasks:")
    rows = []
    for task in _tree(status.get("tasks", [])):
        path = task["path"]
        note = task.get("message") or ""
        if task.get("state") == "CACHED" and task.get("cachedFrom"):
            note = f"cached: {task['cachedFrom']}"
        state, started = shown_task_state(task)
        rows.append(
            [
                "  " + "  " * path.count("/") + path.rsplit("/", 1)[-1],
                state,
                duration(started, task.get("finishedAt")),
                note[:120],
            ]
        )
    table(["  TASK", "STATE", "DURATION", "NOTE"], rows)


def _tree(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each task under its parent, siblings in the order they first appeared."""
    seen = {t["path"]: i for i, t in enumerate(tasks)}

    def key(task: dict[str, Any]) -> tuple[int, ...]:
        parts = task["path"].split("/")
        return tuple(seen.get("/".join(parts[: i + 1]), -1) for i in range(len(parts)))

    return sorted(tasks, key=key)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)
