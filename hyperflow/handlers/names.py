"""Kubernetes object names: namespaces and experiment names are DNS labels (RFC 1123)."""

from __future__ import annotations

import re

from hyperflow.handlers.errors import FieldProblem

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def check_dns_label(value: object, path: str, what: str = "a name") -> list[FieldProblem]:
    if not isinstance(value, str) or len(value) > 63 or not _DNS_LABEL.fullmatch(value):
        return [
            FieldProblem(
                path,
                f"{what} must be a DNS label: at most 63 lower case letters, digits and '-', "
                f"starting and ending with a letter or digit; got {value!r}",
            )
        ]
    return []
