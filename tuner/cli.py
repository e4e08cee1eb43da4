"""``hyperflow experiment ...`` and ``hyperflow suggestion ...``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

experiment_app = typer.Typer(help="Katib Experiments: validate, run, inspect.", no_args_is_help=True)
suggestion_app = typer.Typer(help="The suggestion service.", no_args_is_help=True)

err = Console(stderr=True)
out = Console()


@experiment_app.command("validate")
def validate(
    file: Path = typer.Option(..., "-f", "--file", help="Katib Experiment YAML file."),
) -> None:
    """Check an Experiment file against Katib's rules; exit 1 with the field errors."""
    from tuner.spec import SpecError, load_experiments

    try:
        experiments = load_experiments(file)
    except SpecError as exc:
        err.print(f"[red]{file}: invalid[/red]")
        for line in exc.lines():
            err.print(f"  {line}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    for experiment in experiments:
        out.print(f"experiment {experiment.metadata.name!r} is valid", highlight=False)


@suggestion_app.command("serve")
def suggestion_serve(
    port: int = typer.Option(8090, "--port", help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (non-loopback needs --token)."),
    token: str | None = typer.Option(
        None, "--token", envvar="HYPERFLOW_API_TOKEN", help="Bearer token required from clients."
    ),
) -> None:
    """Run the suggestion service over HTTP (FastAPI), as Katib runs its suggestion pods."""
    from tuner.suggestion.http import serve

    serve(host=host, port=port, token=token)
