"""Consoles of the foreground commands (``experiment run``, ``serve run``, ``pipeline
run``): the terminal's width on a terminal; ``$COLUMNS``, else :data:`PIPED_WIDTH`
columns, when the output is piped into a file, a pager or a CI log, where rich would
otherwise cut tables and progress lines at 80 columns."""

from __future__ import annotations

import os
import sys
from typing import Any

from rich.console import Console

PIPED_WIDTH = 160


def console(*, stderr: bool = False, **options: Any) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    if not stream.isatty() and not os.environ.get("COLUMNS"):
        options.setdefault("width", PIPED_WIDTH)
    return Console(stderr=stderr, **options)
