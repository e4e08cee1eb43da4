"""Cache keys: what makes two executions of a task interchangeable."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pipelines.spec import digest


def cache_key(
    component_spec: dict[str, Any],
    container: dict[str, Any],
    inputs: dict[str, Any],
    custom: str | None = None,
) -> str:
    """The cache key of a task: its component (interface and container, not its name),
    its input values and its input artifacts' types, metadata and *content* digests;
    with a custom ``cacheKey``, the component and that key."""
    component = {
        "inputDefinitions": component_spec.get("inputDefinitions", {}),
        "outputDefinitions": component_spec.get("outputDefinitions", {}),
        "container": container,
    }
    if custom:
        return digest({"component": component, "custom": custom})
    artifacts = {
        name: [
            {
                "type": a.get("type", {}).get("schemaTitle", ""),
                "content": content_digest(a.get("uri", "")),
                "metadata": a.get("metadata", {}),
            }
            for a in items
        ]
        for name, items in inputs["artifacts"].items()
    }
    return digest(
        {
            "component": component,
            "parameters": inputs["parameters"],
            "artifacts": artifacts,
        }
    )


def content_digest(uri: str) -> str:
    """SHA-256 of a file, or of a directory's relative paths and file contents."""
    path = Path(uri)
    hasher = hashlib.sha256()
    if path.is_file():
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                hasher.update(chunk)
        return hasher.hexdigest()
    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            hasher.update(str(file.relative_to(path)).encode() + b"\0")
            hasher.update(content_digest(str(file)).encode())
        return "dir:" + hasher.hexdigest()
    return "absent:" + uri
