"""``hyperflow pipeline ...``: run kfp pipelines locally and inspect stored runs.

The read commands (list, get, describe, logs, delete) go through the control plane's API
when a server answers (``hyperflow`` plugs its client in with :func:`use_server`), else
read the local store; either way they import no kfp, mlflow, optuna or sklearn.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import typer

from serving import terminal

if TYPE_CHECKING:
    from pipelines.store import PipelineStore, RunRecord

pipeline_app = typer.Typer(
    rich_markup_mode="markdown",
    help="Kubeflow Pipelines (kfp SDK) pipelines: run locally, inspect runs.",
    no_args_is_help=True,
)

err = terminal.console(stderr=True, soft_wrap=True)  # the live task table: 160 columns piped
out = terminal.console(soft_wrap=True)

NAMESPACE = typer.Option("default", "-n", "--namespace", help="Namespace of the run.")


def _store() -> PipelineStore:
    from pipelines.store import PipelineStore
    from tuner.settings import TunerSettings

    return PipelineStore(TunerSettings().store_url)


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
    from pipelines.spec import PipelineError, import_kfp_runtime

    arguments = _parse_args(arg)
    # Not kfp's client (the kubernetes client: seconds).
    if not import_kfp_runtime():
        err.print(
            "error: kfp (the Kubeflow Pipelines SDK) is not installed: "
            "pip install 'hyperflow[pipelines]'",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(1)
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
    if result.already_finished:
        err.print(
            f"pipeline run {record.name} had already finished: nothing ran, this is its "
            f"stored result (to run it again: hyperflow pipeline delete {record.name}, "
            "or another --name)",
            markup=False,
            highlight=False,
        )
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


class RunSource(Protocol):
    """Where the read commands find runs: the control plane's API (``hyperflow`` plugs it
    in with :func:`use_server`) when a server runs, else the local store."""

    def list(self, namespace: str) -> list[dict[str, Any]]: ...

    def get(self, name: str, namespace: str) -> dict[str, Any]: ...

    def logs(self, name: str, task: str | None, namespace: str) -> bytes: ...

    def delete(self, name: str, namespace: str) -> dict[str, Any]: ...


_server: Callable[[str | None, str | None], RunSource | None] | None = None


def use_server(connect: Callable[[str | None, str | None], RunSource | None]) -> None:
    """``connect(server, token)``: the API's runs, or None when no server answers there."""
    global _server
    _server = connect


class _LocalRuns:
    """The local store (``HYPERFLOW_DATABASE_URL`` / ``$HYPERFLOW_HOME``)."""

    def _record(self, store: PipelineStore, name: str, namespace: str) -> RunRecord:
        record = store.get_run(name, namespace)
        if record is None:
            raise LookupError(f"pipeline run {namespace}/{name} not found")
        return record

    def list(self, namespace: str) -> list[dict[str, Any]]:
        from pipelines.objects import run_object

        store = _store()
        try:
            return [run_object(r, []) for r in store.list_runs(namespace)]
        finally:
            store.close()

    def get(self, name: str, namespace: str) -> dict[str, Any]:
        from pipelines.objects import run_object

        store = _store()
        try:
            record = self._record(store, name, namespace)
            return run_object(record, store.tasks(record.uid))
        finally:
            store.close()

    def logs(self, name: str, task: str | None, namespace: str) -> bytes:
        from pipelines.runner import find_task

        store = _store()
        try:
            tasks = store.tasks(self._record(store, name, namespace).uid)
        finally:
            store.close()
        chosen = [find_task(tasks, task)] if task is not None else [t for t in tasks if t.task_dir]
        out = []
        for item in chosen:
            if task is None:
                out.append(f"==> {item.path} ({item.state}) <==\n".encode())
            log = Path(item.task_dir) / "trial.log" if item.task_dir else None
            if log is None or not log.is_file():
                note = f"cached: outputs of {item.cached_from}" if item.cached_from else item.state
                out.append(f"(no log: {note})\n".encode())
            else:
                out.append(log.read_bytes())
        return b"".join(out)

    def delete(self, name: str, namespace: str) -> dict[str, Any]:
        from pipelines.objects import run_object
        from pipelines.runner import owner_alive, remove_run_folder

        store = _store()
        try:
            record = self._record(store, name, namespace)
            if not record.finished and owner_alive(record):
                raise LookupError(
                    f"pipeline run {name} is running (pid {record.owner_pid}); stop it first"
                )
            obj = run_object(record, [])
            store.delete_run(record.uid)
            remove_run_folder(store, record)
        finally:
            store.close()
        return obj


def _runs(server: str | None, token: str | None) -> RunSource:
    remote = _server(server, token) if _server is not None else None
    return remote if remote is not None else _LocalRuns()


QUOTES = "'\""  # a LookupError's str() is its message in quotes


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """A missing run, an API error: one line and exit code 1."""
    try:
        yield
    except LookupError as exc:
        err.print(f"error: {str(exc).strip(QUOTES)}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    except Exception as exc:
        lines = getattr(exc, "lines", None)
        if not callable(lines):
            raise
        err.print(f"error: {' '.join(lines())}", markup=False, highlight=False)
        raise typer.Exit(1) from None


SERVER = typer.Option(
    None, "--server", envvar="HYPERFLOW_SERVER", help="Control plane (used when it answers)."
)
TOKEN = typer.Option(None, "--token", envvar="HYPERFLOW_TOKEN", help="Its bearer token.")


@pipeline_app.command("list")
def list_(
    namespace: str = NAMESPACE, server: str | None = SERVER, token: str | None = TOKEN
) -> None:
    """Pipeline runs, oldest first (the server's when one runs, else the local store's)."""
    from rich.table import Table

    from pipelines.live import duration
    from pipelines.objects import shown_state

    with _errors():
        runs = _runs(server, token).list(namespace)
    table = Table()
    for column in ("run", "pipeline", "state", "created", "duration"):
        table.add_column(column)
    for r in runs:
        status = r.get("status", {})
        table.add_row(
            r["metadata"]["name"],
            str(r.get("spec", {}).get("pipelineName", "")),
            shown_state(status),
            _created(r["metadata"].get("creationTimestamp")),
            duration(status.get("startedAt"), status.get("finishedAt")),
        )
    out.print(table)


def _created(value: Any) -> str:
    import datetime as dt

    from pipelines.live import epoch  # numbers or RFC 3339, as durations read them

    seconds = epoch(value) if isinstance(value, int | float | str) else None
    if seconds is None:
        return ""
    return dt.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


@pipeline_app.command("get")
def get(
    name: str = typer.Argument(..., help="Run name."),
    namespace: str = NAMESPACE,
    output: str = typer.Option("json", "-o", "--output", help="json or yaml."),
    server: str | None = SERVER,
    token: str | None = TOKEN,
) -> None:
    """The run object: spec (pipeline, arguments) and status (state, tasks, outputs)."""
    if output not in ("json", "yaml"):
        err.print(f"--output must be json or yaml, got {output!r}", markup=False)
        raise typer.Exit(2)
    with _errors():
        data = _runs(server, token).get(name, namespace)
    if output == "yaml":
        import yaml

        out.print(yaml.safe_dump(data, sort_keys=False), markup=False, highlight=False)
    else:
        out.print_json(data=data)


@pipeline_app.command("describe")
def describe(
    name: str = typer.Argument(..., help="Run name."),
    namespace: str = NAMESPACE,
    server: str | None = SERVER,
    token: str | None = TOKEN,
) -> None:
    """The run's state, arguments, outputs and task table."""
    from pipelines.live import shown_task_state, task_table, tree_order
    from pipelines.objects import shown_state

    with _errors():
        obj = _runs(server, token).get(name, namespace)
    spec, status = obj.get("spec", {}), obj.get("status", {})
    arguments = spec.get("runtimeConfig", {}).get("parameters", spec.get("arguments", {}))
    lines = [
        f"run:       {obj['metadata']['name']}",
        f"pipeline:  {spec.get('pipelineName')} ({spec.get('source')})",
        f"state:     {shown_state(status)}",
    ]
    if status.get("interrupted"):
        lines.append("           (no process runs it: the same `pipeline run` command resumes it)")
    if status.get("message"):
        lines.append(f"message:   {status['message']}")
    lines.append(f"arguments: {json.dumps(arguments)}")
    if status.get("outputs"):
        lines.append(f"outputs:   {json.dumps(status['outputs'])}")
    if status.get("mlflowRunId"):
        lines.append(f"MLflow run: {status['mlflowRunId']}")
    for line in lines:
        out.print(line, highlight=False, markup=False)
    rows = []
    for t in status.get("tasks", []):
        state, started = shown_task_state(t)
        rows.append(
            {
                "path": t["path"],
                "kind": t.get("kind"),
                "state": state,
                "started_at": started,
                "finished_at": t.get("finishedAt"),
                "message": t.get("message"),
                "cached_from": t.get("cachedFrom"),
            }
        )
    out.print(task_table(tree_order(rows)))


@pipeline_app.command("logs")
def logs(
    name: str = typer.Argument(..., help="Run name."),
    task: str | None = typer.Argument(None, help="Task name or path (default: every task)."),
    namespace: str = NAMESPACE,
    server: str | None = SERVER,
    token: str | None = TOKEN,
) -> None:
    """A task's log (stdout and stderr), or every executed task's log in turn."""
    with _errors():
        text = _runs(server, token).logs(name, task, namespace)
    sys.stdout.buffer.write(text)
    sys.stdout.flush()


@pipeline_app.command("delete")
def delete(
    name: str = typer.Argument(..., help="Run name."),
    namespace: str = NAMESPACE,
    server: str | None = SERVER,
    token: str | None = TOKEN,
) -> None:
    """Delete a run: its rows and its artifact folder (MLflow runs are kept).

    Through the server, a running run is canceled first; locally, a running run is
    refused."""
    with _errors():
        _runs(server, token).delete(name, namespace)
    out.print(f"pipeline run {namespace}/{name} deleted", markup=False, highlight=False)
