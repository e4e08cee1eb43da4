"""``hyperflow serve ...``: validate and run InferenceServices locally."""

from __future__ import annotations

import typer

app = typer.Typer(help="KServe InferenceServices: validate, run locally.", no_args_is_help=True)
