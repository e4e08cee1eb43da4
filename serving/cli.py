"""``hyperflow serve ...``: validate and run InferenceServices locally."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from serving.spec import FieldError, InferenceService

app = typer.Typer(
    rich_markup_mode="markdown",
    help="KServe InferenceServices: validate, run locally, render or deploy for Kubernetes.",
    no_args_is_help=True,
)


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
            for note in [*local_notes(isvc), *storage_notes]:
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


def _rendered(
    files: list[Path],
    target: str,
    namespace: str | None,
    image: str | None,
    tracking_uri: str | None,
) -> list[dict[str, Any]]:
    """Every object of every InferenceService in ``files``; exit 1 naming the fields."""
    from serving.kube.render import TARGETS, render
    from serving.spec import SpecError, load_inference_services

    if target not in TARGETS:
        typer.secho(f"--target must be one of {', '.join(TARGETS)}", fg="red", err=True)
        raise typer.Exit(2)
    objects: list[dict[str, Any]] = []
    failed = False
    for file in files:
        try:
            for isvc in load_inference_services(file):
                objects += render(
                    isvc,
                    target,
                    namespace=namespace,
                    image=image,
                    mlflow_tracking_uri=tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"),
                )
        except SpecError as exc:
            failed = True
            typer.secho(f"{file}: cannot render for {target}", fg="red", err=True)
            for line in exc.lines():
                typer.echo(f"  {line}", err=True)
    if failed:
        raise typer.Exit(1)
    return objects


_TARGET_HELP = "kserve (an InferenceService) or deployment (Deployment + Service + HPA)."
_IMAGE_HELP = (
    "hyperflow's server image (target deployment; default hyperflow:X.Y.Z, this install's version)."
)
_MLFLOW_HELP = "MLflow tracking server URL for runs:/ and models:/ (default $MLFLOW_TRACKING_URI)."


@app.command("render")
def render_cmd(
    files: list[Path] = typer.Option(
        ..., "-f", "--file", help="InferenceService YAML file (repeatable)."
    ),
    target: str = typer.Option("kserve", "--target", help=_TARGET_HELP),
    namespace: str | None = typer.Option(None, "-n", "--namespace", help="Namespace."),
    image: str | None = typer.Option(None, "--image", help=_IMAGE_HELP),
    tracking_uri: str | None = typer.Option(None, "--mlflow-tracking-uri", help=_MLFLOW_HELP),
    output: str = typer.Option("yaml", "-o", "--output", help="yaml or json (a v1 List)."),
) -> None:
    """Print the Kubernetes objects of InferenceServices (kubectl apply -f - takes them)."""
    import json

    import yaml

    objects = _rendered(files, target, namespace, image, tracking_uri)
    if output == "json":
        typer.echo(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}, indent=2))
    elif output == "yaml":
        typer.echo(yaml.safe_dump_all(objects, sort_keys=False).rstrip())
    else:
        typer.secho("--output must be yaml or json", fg="red", err=True)
        raise typer.Exit(2)


@app.command("deploy")
def deploy(
    files: list[Path] = typer.Option(
        ..., "-f", "--file", help="InferenceService YAML file (repeatable)."
    ),
    kubernetes: bool = typer.Option(
        False, "--kubernetes", help="Apply to the Kubernetes cluster (server-side apply)."
    ),
    target: str = typer.Option("kserve", "--target", help=_TARGET_HELP),
    namespace: str | None = typer.Option(None, "-n", "--namespace", help="Namespace."),
    image: str | None = typer.Option(None, "--image", help=_IMAGE_HELP),
    tracking_uri: str | None = typer.Option(None, "--mlflow-tracking-uri", help=_MLFLOW_HELP),
    server: str | None = typer.Option(
        None, "--server", help="API server URL (as kubectl's --server; default: kubeconfig)."
    ),
    token: str | None = typer.Option(
        None, "--token", envvar="HYPERFLOW_KUBE_TOKEN", help="Bearer token for --server."
    ),
    kubeconfig: Path | None = typer.Option(None, "--kubeconfig", help="kubeconfig file."),
    context: str | None = typer.Option(None, "--context", help="kubeconfig context."),
) -> None:
    """Apply InferenceServices to a cluster, as ``serve render`` prints them."""
    if not kubernetes:
        typer.secho(
            "serve deploy applies to a cluster: add --kubernetes "
            "(to serve on this machine: hyperflow serve run)",
            fg="red",
            err=True,
        )
        raise typer.Exit(2)
    objects = _rendered(files, target, namespace, image, tracking_uri)
    from serving.kube.client import KubeClient, KubeError

    try:
        with KubeClient(
            host=server, token=token, kubeconfig=kubeconfig, context=context, namespace=namespace
        ) as client:
            for obj in objects:
                client.apply(obj)
                group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
                kind = obj["kind"].lower() + (f".{group}" if group else "")
                typer.echo(f"{kind}/{obj['metadata']['name']} serverside-applied")
    except KubeError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
