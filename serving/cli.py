"""``hyperflow serve ...``: validate and run InferenceServices locally."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from serving.spec import FieldError, InferenceService

app = typer.Typer(help="KServe InferenceServices: validate, run locally.", no_args_is_help=True)


@app.command("validate")
def validate(
    files: list[Path] = typer.Option(
        ..., "-f", "--file", help="InferenceService YAML file (repeatable)."
    ),
) -> None:
    """Check InferenceService files against KServe's rules; exit 1 with the field errors."""
    from serving.local.revisions import scaling_summary
    from serving.runtimes import deploy_problems, local_notes
    from serving.spec import SpecError, load_inference_services

    failed = False
    for file in files:
        try:
            services = load_inference_services(file)
            numbered = len(services) > 1
            checked = [
                _check_local_storage(isvc, number if numbered else None)
                for number, isvc in enumerate(services, start=1)
            ]
            storage_errors = [error for errors, _ in checked for error in errors]
            if storage_errors:  # what deploy would refuse: invalid here already
                raise SpecError(storage_errors, source=str(file))
        except SpecError as exc:
            failed = True
            typer.secho(f"{file}: invalid", fg="red", err=True)
            for line in exc.lines():
                typer.echo(f"  {line}", err=True)
            continue
        for isvc, (_, storage_notes) in zip(services, checked, strict=True):
            p = isvc.predictor
            knobs = isvc.autoscaling()
            replicas = f"{knobs.min_replicas}..{knobs.max_replicas or 'unbounded'}"
            extras = [f"canary {p.canary_traffic_percent}%"] * (
                p.canary_traffic_percent is not None
            )
            extras += ["batcher"] * (p.batcher is not None)
            summary = ", ".join(
                [
                    f"format {p.model_format or 'containers'}",
                    f"protocol {p.protocol_version}",
                    f"storageUri {p.storage_uri or '-'}",
                    f"replicas {replicas}",
                    scaling_summary(isvc),
                    *extras,
                ]
            )
            typer.echo(f"inferenceservice {isvc.name!r} is valid: {summary}")
            for problem in deploy_problems(p):
                typer.echo(f"  note: cannot run locally: {problem}")
            for note in [*local_notes(p), *storage_notes]:
                typer.echo(f"  note: {note}")
    if failed:
        raise typer.Exit(1)


def _check_local_storage(
    isvc: InferenceService, document: int | None
) -> tuple[list[FieldError], list[str]]:
    """A local storageUri checked by deploy time's own rule: one that escapes the file's
    folder is an error (deploy refuses it); a missing one is a note (it may be created)."""
    from serving.spec import FieldError
    from serving.storage import StorageError, local_storage_path, storage_scheme

    impl = isvc.predictor.implementation
    uri = isvc.predictor.storage_uri
    if impl is None or uri is None or storage_scheme(uri) not in ("local", "file"):
        return [], []
    try:
        path = local_storage_path(uri, isvc.base_dir)
    except StorageError as exc:
        key = isvc.predictor.implementations()[0]
        return [FieldError(f"spec.predictor.{key}.storageUri", str(exc), document)], []
    if not path.exists():
        return [], [f"storageUri {uri} does not exist (yet): {path}"]
    return [], []


@app.command("run")
def run(
    files: list[Path] = typer.Option(
        ...,
        "-f",
        "--file",
        help="InferenceService YAML (repeatable). A second file with the same "
        "metadata.name and canaryTrafficPercent is that service's canary revision.",
    ),
    port: int = typer.Option(8080, "--port", help="Router port (all services)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Router bind address."),
    token: str | None = typer.Option(
        None,
        "--token",
        envvar="HYPERFLOW_SERVE_TOKEN",
        help="Bearer token required on requests; mandatory for a non-loopback --host.",
    ),
    tick: float = typer.Option(2.0, "--tick", help="Autoscaler tick interval, seconds."),
    replica_ports: str | None = typer.Option(
        None,
        "--replica-ports",
        envvar="HYPERFLOW_REPLICA_PORTS",
        help="Port range for replica processes, FIRST-LAST (e.g. 30000-30999); "
        "default: any free port.",
    ),
) -> None:
    """Run InferenceServices locally in the foreground: router, replicas, autoscaler."""
    from serving.local.runner import run as run_foreground
    from serving.settings import hyperflow_home

    home = hyperflow_home()
    code = run_foreground(
        files,
        host=host,
        port=port,
        token=token,
        tick_interval=tick,
        log_dir=home / "serving-logs",
        replica_ports=replica_ports,
    )
    raise typer.Exit(code)
