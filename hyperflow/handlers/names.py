"""Kubernetes object names: namespaces and experiment names are DNS labels (RFC 1123)."""

from __future__ import annotations

import re

from hyperflow.handlers.errors import FieldProblem
from serving.spec.errors import shown

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def check_dns_label(value: object, path: str, what: str = "a name") -> list[FieldProblem]:
    if not isinstance(value, str) or len(value) > 63 or not _DNS_LABEL.fullmatch(value):
        return [
            FieldProblem(
                path,
                f"{what} must be a DNS label: at most 63 lower case letters, digits and '-', "
                f"starting and ending with a letter or digit; got {shown(value)}",
            )
        ]
    return []


def model_name_problem(namespace: str, model: str) -> str | None:
    """Whether namespace ``namespace`` may use the MLflow registered model ``model``.

    One Model Registry serves every namespace, so a model's name says whose it is: deploy-
    best registers ``<namespace>.<experiment>`` outside ``default`` and ``<experiment>`` in
    it. A namespace may write and serve only its own: ``<namespace>.*``, or, in
    ``default``, a name without a ``.`` (a dotted one is another namespace's)."""
    if namespace == "default":
        if "." not in model:
            return None
        return (
            f"{model!r} is another namespace's model (names with a '.' are "
            "<namespace>.<name>); in namespace default use a name without '.'"
        )
    if model.startswith(f"{namespace}.") and len(model) > len(namespace) + 1:
        return None
    return f"must be a model of namespace {namespace}: {namespace}.<name>; got {model!r}"
