"""The ``hyperflow`` console script: Ctrl-C exits 130 from the first moment.

Importing the command's modules takes a while; a Ctrl-C then has nothing to clean up, so
it ends the process at once (exit 130) instead of printing a traceback of an import. From
:func:`hyperflow.cli.main` on, Ctrl-C is a ``KeyboardInterrupt`` again, which each phase of
a command handles (and which ends in exit 130 too).
"""

from __future__ import annotations

import os
import signal


def _exit_130(signum: int, frame: object) -> None:
    os._exit(130)


def main() -> None:
    previous = signal.signal(signal.SIGINT, _exit_130)
    try:
        from hyperflow.cli import main as run
    finally:
        signal.signal(signal.SIGINT, previous)
    run()
