"""``hyperflow experiment ...`` and ``hyperflow suggestion ...``."""

from __future__ import annotations

import typer

experiment_app = typer.Typer(
    help="Katib Experiments: validate, run, inspect.", no_args_is_help=True
)
suggestion_app = typer.Typer(help="The suggestion service.", no_args_is_help=True)
