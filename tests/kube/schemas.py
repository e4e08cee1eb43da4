"""Kubernetes objects checked against the official OpenAPI schemas (``kubernetes-validate``
ships them, per Kubernetes version, strict: an unknown field is an error).

Every error of an object, each with its path, as an API server's 422 lists them; used by
the API stand-in on every write and by the tests of rendered objects and manifests.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from packaging.version import Version

# KServe's installation guides ask for Kubernetes 1.30 or newer (KServe 0.15 and later);
# rendered objects must be valid on every version from there to the newest one known.
KSERVE_MINIMUM = "1.30"


class NoSchema(LookupError):
    """kubernetes-validate has no schema for this kind (a custom resource)."""


def known_versions() -> list[str]:
    from kubernetes_validate.utils import all_versions, major_minor

    return sorted({major_minor(v) for v in all_versions()}, key=Version)


def kserve_versions() -> list[str]:
    """Every Kubernetes minor version KServe supports that kubernetes-validate knows."""
    return [v for v in known_versions() if Version(v) >= Version(KSERVE_MINIMUM)]


@functools.lru_cache(maxsize=64)
def _validator(version: str, filename: str) -> Any:
    import jsonschema
    from kubernetes_validate.utils import all_versions, major_minor, schema_contents
    from referencing import Registry, Resource

    full = [v for v in all_versions() if major_minor(v) == version]
    if not full:
        raise LookupError(f"kubernetes-validate has no schemas for Kubernetes {version}")
    folder = f"kubernetes-json-schema/v{full[-1]}-local-strict"
    try:
        schema = schema_contents(f"{folder}/{filename}", version)
    except FileNotFoundError:
        raise NoSchema(filename) from None
    definitions = schema_contents(f"{folder}/_definitions.json", version)
    registry: Registry = Resource.from_contents(schema) @ Registry()
    registry = Resource.from_contents(definitions) @ registry
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def schema_file(api_version: str, kind: str) -> str:
    """kubernetes-validate's file name: ``rbac.authorization.k8s.io/v1`` Role is
    ``role-rbac-v1.json``; core types (``v1``) have no group."""
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    return f"{kind.lower()}-{group_version}.json"


def problems(
    obj: dict[str, Any], version: str, *, type_file: str | None = None
) -> list[tuple[str, str]]:
    """Every schema error of ``obj`` as (path, message); [] when it is valid.

    ``type_file``: validate as an embedded type (``container-v1.json``) instead of by the
    object's own apiVersion and kind. Raises :class:`NoSchema` for a kind without one.
    """
    filename = type_file or schema_file(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    validator = _validator(version, filename)
    found = []
    for error in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.path))):
        path = ""
        for part in error.path:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        found.append((path, error.message))
    return found


def assert_valid(obj: dict[str, Any], versions: list[str] | None = None) -> None:
    """Fail with every error if ``obj`` is invalid on any of ``versions`` (default: every
    version KServe supports)."""
    for version in versions or kserve_versions():
        found = problems(obj, version)
        kind = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
        assert not found, f"{kind} is invalid on Kubernetes {version}: {found}"
