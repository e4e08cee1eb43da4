"""The ``hyperflow`` command: one typer app composed of each package's sub-commands."""

from __future__ import annotations

import sys

import typer

from pipelines.cli import pipeline_app
from serving.cli import app as serve_app
from tuner.cli import experiment_app, suggestion_app

app = typer.Typer(
    name="hyperflow",
    help="Katib-style tuning and KServe-style serving on one machine, tracked in MLflow.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(experiment_app, name="experiment")
app.add_typer(suggestion_app, name="suggestion")
app.add_typer(serve_app, name="serve")
app.add_typer(pipeline_app, name="pipeline")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"hyperflow {version('hyperflow')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            typer.echo("hyperflow (not installed)")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Katib-style tuning and KServe-style serving on one machine, tracked in MLflow."""


def _interrupted(exc: BaseException) -> bool:
    """Whether click turned a Ctrl-C into this exit ("Aborted!", code 1)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def main() -> None:
    try:
        app()
    except SystemExit as exc:
        # A Ctrl-C in any phase (loading, creating the store, ...) exits 130 like a shell's.
        if exc.code not in (0, 130, None) and _interrupted(exc):
            sys.exit(130)
        raise
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
