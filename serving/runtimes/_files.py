"""Finding the one model file in a storage path, as KServe's model servers do."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from serving.runtimes.errors import ModelLoadError


def find_model_file(model: str, path: Path, extensions: Sequence[str]) -> Path:
    """``path`` itself if it is a file, else the single file in it with one of ``extensions``.

    KServe's sklearn/xgboost/lightgbm servers accept any file name with the right
    extension and refuse a folder holding more than one.
    """
    if path.is_file():
        return path
    if not path.is_dir():
        raise ModelLoadError(model, path, "no such file or directory")
    found = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(tuple(extensions)))
    if not found:
        raise ModelLoadError(
            model,
            path,
            f"no model file found (expected one file ending in {', '.join(extensions)})",
        )
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise ModelLoadError(model, path, f"more than one model file ({names}); keep exactly one")
    return found[0]
