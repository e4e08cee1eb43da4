"""Kubernetes resource quantities (``100m``, ``1``, ``0.5``, ``128Mi``, ``1G``, ``2e3``).

The suffixes of ``k8s.io/apimachinery/pkg/api/resource``: binary ``Ki Mi Gi Ti Pi Ei``,
decimal ``n u m k M G T P E``, or a decimal exponent ``e``/``E``. The value is returned in
the base unit (cores for cpu, bytes for memory).
"""

from __future__ import annotations

import re

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "": 1.0,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
}
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$")


def parse_quantity(value: object) -> float:
    """The quantity's value in base units; ``ValueError`` naming what was given."""
    text = str(value).strip() if isinstance(value, str | int | float) else None
    match = _QUANTITY.match(text) if text else None
    if match is None or isinstance(value, bool):
        raise ValueError(
            f"must be a Kubernetes quantity such as '500m', '2', '128Mi' or '1G', got {value!r}"
        )
    number, suffix = float(match.group(1)), match.group(2) or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix[:1] in ("e", "E"):
        return number * 10.0 ** int(suffix[1:])
    return number * _DECIMAL[suffix]
