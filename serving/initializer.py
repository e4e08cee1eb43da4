"""``python -m serving.initializer URI DEST``: put a model's files into ``DEST``, as
KServe's storage initializer does, for the storageUri schemes it does not read: MLflow's
``runs:/`` and ``models:/`` (from ``MLFLOW_TRACKING_URI``). The init container of a
Deployment rendered by ``hyperflow serve render --target deployment`` runs it."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from serving.storage import StorageError, resolve_storage_uri


def initialize(uri: str, dest: Path) -> Path:
    """Download ``uri`` and copy its files into ``dest`` (created); returns ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hyperflow-model-") as cache:
        source = resolve_storage_uri(uri, None, cache_dir=Path(cache))
        if source.is_dir():
            shutil.copytree(source, dest, dirs_exist_ok=True)
        else:
            shutil.copy2(source, dest / source.name)
    return dest


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m serving.initializer STORAGE_URI DEST_DIR", file=sys.stderr)
        return 2
    try:
        initialize(args[0], Path(args[1]))
    except (StorageError, OSError) as exc:
        print(f"storage-initializer: {exc}", file=sys.stderr)
        return 1
    print(f"storage-initializer: {args[0]} -> {args[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
