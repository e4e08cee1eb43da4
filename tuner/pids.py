"""Whether a process id names a live process (the one check every "is it still running?"
in the tuner, the pipelines and the server shares)."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True if a process ``pid`` exists and has not exited (one we may not signal counts).

    A process killed with SIGKILL stays a zombie until its parent reaps it, seconds later
    under an init that reaps lazily, for ever under a parent that never does: it has
    exited, and whatever it owned is free.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return process_state(pid) not in ("Z", "X")


def process_state(pid: int) -> str | None:
    """The state letter of ``/proc/<pid>/stat`` (``R``, ``S``, ``Z``...); None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (in parentheses) may hold spaces and parentheses: split after it.
    fields = stat.rpartition(b")")[2].split()
    return fields[0].decode() if fields else None
