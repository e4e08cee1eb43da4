"""``hyperflow pipeline ...``: run kfp pipelines locally and inspect stored runs.

The read commands (list, get, describe, logs, delete) import only the store: no kfp,
mlflow, optuna or sklearn, so they answer fast.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from pipelines.store import PipelineStore, RunRecord

pipeline_app = typer.Typer(
    help="Kubeflow Pipelines (kfp SDK) pipelines: run locally, inspect runs.",
    no_args_is_help=True,
)

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

NAMESPACE = typer.Option("default", "-n", "--namespace", help="Namespace of the run.")


def _store() -> PipelineStore:
    from pipelines.store import PipelineStore
    from tuner.settings import TunerSettings

    return PipelineStore(TunerSettings().store_url)


def _run_or_exit(store: PipelineStore, name: str, namespace: str) -> RunRecord:
    record = store.get_run(name, namespace)
    if record is None:
        err.print(f"pipeline run {namespace}/{name} not found", markup=False, highlight=False)
        raise typer.Exit(1)
    return record


def _parse_args(pairs: list[str]) -> dict[str, str]:
    arguments: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            err.print(f"--arg {pair!r}: expected NAME=VALUE", markup=False, highlight=False)
            raise typer.Exit(2)
        arguments[name.strip()] = value
    return arguments


@pipeline_app.command("run")
def run(
    file: Path = typer.Option(
        ..., "-f", "--file", help="Compiled pipeline (YAML/JSON) or Python file."
    ),
    arg: list[str] = typer.Option(
        [], "--arg", "-a", help="Pipeline argument NAME=VALUE (repeatable)."
    ),
    parallelism: int | None = typer.Option(
        None, "--parallelism", "-p", help="Tasks at once (default: the number of CPUs)."
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Run every task; reuse nothing."),
    pipeline: str | None = typer.Option(
        None, "--pipeline", help="Which @dsl.pipeline of a Python file to run."
    ),
    run_name: str | None = typer.Option(None, "--name", help="Name of the run."),
    namespace: str = NAMESPACE,
    no_track: bool = typer.Option(False, "--no-track", help="Do not log to MLflow."),
    as_json: bool = typer.Option(False, "--json", help="Print the run as JSON at the end."),
) -> None:
    """Run a pipeline in the foreground with a live view of its tasks.

    Exit code 0 when the run SUCCEEDED, 1 when it FAILED, 130 when stopped. The same
    command again after the process died resumes the run.
    """
    from pipelines.live import LiveTasks
    from pipelines.objects import run_object
    from pipelines.runner import run_pipeline
    from pipelines.spec import PipelineError

    arguments = _parse_args(arg)
    live = LiveTasks(err, title=str(file))
    try:
        with live:
            result = run_pipeline(
                file,
                arguments,
                pipeline=pipeline,
                parallelism=parallelism,
                cache=not no_cache,
                run_name=run_name,
                namespace=namespace,
                track=not no_track,
                from_cli=True,
                observer=live,
            )
    except PipelineError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    record = result.run
    if result.resumed:
        err.print(f"resumed run {record.name}", highlight=False)
    state_style = {"SUCCEEDED": "green", "FAILED": "red"}.get(record.state, "yellow")
    err.print(
        f"pipeline run {record.name}: [{state_style}]{record.state}[/]"
        + (f" — {record.message}" if record.message else ""),
        highlight=False,
    )
    if result.outputs:
        err.print(f"outputs: {json.dumps(result.outputs, default=str)}", highlight=False)
    if result.tracking:
        err.print(f"MLflow: {result.tracking}", markup=False, highlight=False)
    if as_json:
        out.print_json(data=run_object(record, result.tasks))
    if record.state == "CANCELED":
        raise typer.Exit(130)
    if record.state != "SUCCEEDED":
        raise typer.Exit(1)


@pipeline_app.command("list")
def list_(namespace: str = NAMESPACE) -> None:
    """Stored pipeline runs, oldest first."""
    from rich.table import Table

    from pipelines.live import duration

    store = _store()
    try:
        runs = store.list_runs(namespace)
    finally:
        store.close()
    table = Table()
    for column in ("run", "pipeline", "state", "created", "duration"):
        table.add_column(column)
    import datetime as dt

    for r in runs:
        created = dt.datetime.fromtimestamp(r.created_at).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(
            r.name, r.pipeline_name, r.state, created, duration(r.started_at, r.finished_at)
        )
    out.print(table)


@pipeline_app.command("get")
def get(
    name: str = typer.Argument(..., help="Run name."),
    namespace: str = NAMESPACE,
    output: str = typer.Option("json", "-o", "--output", help="json or yaml."),
) -> None:
    """The run object: spec (pipeline, arguments) and status (state, tasks, outputs)."""
    store = _store()
    try:
        record = _run_or_exit(store, name, namespace)
        tasks = store.tasks(record.uid)
    finally:
        store.close()
    from pipelines.objects import run_object

    data = run_object(record, tasks)
    if output == "yaml":
        import yaml

        out.print(yaml.safe_dump(data, sort_keys=False), markup=False, highlight=False)
    elif output == "json":
        out.print_json(data=data)
    else:
        err.print(f"--output must be json or yaml, got {output!r}", markup=False)
        raise typer.Exit(2)


@pipeline_app.command("describe")
def describe(name: str = typer.Argument(..., help="Run name."), namespace: str = NAMESPACE) -> None:
    """The run's state, arguments, outputs and task table."""
    from pipelines.live import task_table, tree_order

    store = _store()
    try:
        record = _run_or_exit(store, name, namespace)
        tasks = store.tasks(record.uid)
    finally:
        store.close()
    out.print(f"run:       {record.name}", highlight=False, markup=False)
    out.print(f"pipeline:  {record.pipeline_name} ({record.source})", highlight=False, markup=False)
    out.print(f"state:     {record.state}", highlight=False, markup=False)
    if record.message:
        out.print(f"message:   {record.message}", highlight=False, markup=False)
    out.print(f"arguments: {json.dumps(record.arguments)}", highlight=False, markup=False)
    if record.outputs:
        out.print(f"outputs:   {json.dumps(record.outputs)}", highlight=False, markup=False)
    if record.mlflow_run_id:
        out.print(f"MLflow run: {record.mlflow_run_id}", highlight=False, markup=False)
    rows = [
        {
            "path": t.path,
            "kind": t.kind,
            "state": t.state,
            "started_at": t.started_at,
            "finished_at": t.finished_at,
            "message": t.message,
            "cached_from": t.cached_from,
        }
        for t in tasks
    ]
    out.print(task_table(tree_order(rows)))


@pipeline_app.command("logs")
def logs(
    name: str = typer.Argument(..., help="Run name."),
    task: str | None = typer.Argument(None, help="Task name or path (default: every task)."),
    namespace: str = NAMESPACE,
) -> None:
    """A task's log (stdout and stderr), or every executed task's log in turn."""
    from pipelines.runner import find_task

    store = _store()
    try:
        record = _run_or_exit(store, name, namespace)
        tasks = store.tasks(record.uid)
    finally:
        store.close()
    if task is not None:
        try:
            chosen = [find_task(tasks, task)]
        except LookupError as exc:
            err.print(str(exc), markup=False, highlight=False)
            raise typer.Exit(1) from None
    else:
        chosen = [t for t in tasks if t.task_dir]
    for item in chosen:
        log = Path(item.task_dir) / "trial.log" if item.task_dir else None
        if task is None:
            out.print(f"==> {item.path} ({item.state}) <==", markup=False, highlight=False)
        if log is None or not log.is_file():
            note = f"cached: outputs of {item.cached_from}" if item.cached_from else item.state
            out.print(f"(no log: {note})", markup=False, highlight=False)
            continue
        out.print(log.read_text(errors="replace"), end="", markup=False, highlight=False)


@pipeline_app.command("delete")
def delete(name: str = typer.Argument(..., help="Run name."), namespace: str = NAMESPACE) -> None:
    """Delete a finished run: its rows and its artifact folder (MLflow runs are kept)."""
    from pipelines.runner import owner_alive

    store = _store()
    try:
        record = _run_or_exit(store, name, namespace)
        if not record.finished and owner_alive(record):
            err.print(
                f"pipeline run {name} is running (pid {record.owner_pid}); stop it first",
                markup=False,
                highlight=False,
            )
            raise typer.Exit(1)
        store.delete_run(record.uid)
    finally:
        store.close()
    shutil.rmtree(record.pipeline_root, ignore_errors=True)
    out.print(f"pipeline run {namespace}/{name} deleted", markup=False, highlight=False)
