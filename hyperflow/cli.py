"""The ``hyperflow`` command: one typer app composed of each package's sub-commands."""

from __future__ import annotations

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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
