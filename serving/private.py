"""Folders of hyperflow's own state, made readable by their owner alone.

A home (``$HYPERFLOW_HOME``) holds every namespace's store, trial logs, models and the
trials' push tokens: whichever command runs first on a machine creates it, and each
folder it creates on the way is mode 0700 (``os.makedirs``' mode covers only the last).
Folders that exist keep their mode: a team may share one on purpose.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def make_private_dirs(path: str | os.PathLike[str]) -> Path:
    """``path`` as a folder; each missing one on the way is created with mode 0700."""
    target = Path(path)
    missing: list[Path] = []
    current = target
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it first
            folder.mkdir(mode=0o700)
    if not target.is_dir():
        raise NotADirectoryError(f"{target} is not a folder")
    return target
