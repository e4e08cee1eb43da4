"""The folder an object's relative paths resolve in: trial commands of an Experiment, a
local ``storageUri`` or a custom model module of an InferenceService. A client that read
the object from a file sends that file's folder as an annotation."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hyperflow.handlers.errors import FieldProblem

BASE_DIR_ANNOTATION = "hyperflow.io/base-dir"


def base_dir_of(body: dict[str, Any], problems: list[FieldProblem]) -> Path | None:
    """The annotation's folder (absolute, existing on the server), None if absent; a bad
    one is added to ``problems``."""
    metadata = body.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    value = annotations.get(BASE_DIR_ANNOTATION) if isinstance(annotations, dict) else None
    if value is None:
        return None
    path = f"metadata.annotations[{BASE_DIR_ANNOTATION}]"
    if not isinstance(value, str) or not os.path.isabs(value):
        problems.append(FieldProblem(path, "must be an absolute folder path on the server"))
        return None
    if not os.path.isdir(value):
        problems.append(FieldProblem(path, f"no such folder on the server: {value}"))
        return None
    return Path(value)
