"""Spec errors that name the field: ``spec.predictor.minReplicas: must be >= 0``."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One problem at one field; ``path`` uses the YAML (camelCase) names, ``a.b[0].c``."""

    path: str
    message: str
    # 1-based document number in a multi-document file; None for a single document.
    document: int | None = None

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}" if self.path else self.message
        return f"document {self.document}: {text}" if self.document is not None else text


class SpecError(ValueError):
    """An InferenceService file or document is invalid; ``errors`` lists every problem."""

    def __init__(self, errors: Sequence[FieldError], source: str | None = None) -> None:
        self.errors = list(errors)
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__(prefix + "; ".join(self.lines()))

    def lines(self) -> list[str]:
        return [str(e) for e in self.errors]


def shown(value: object) -> str:
    """``repr(value)`` for a message, but for an integer too long to write in decimal
    (Python refuses past 4,300 digits: YAML's ``0xfff...`` gives one from a short line)."""
    try:
        return repr(value)
    except ValueError:
        bits = value.bit_length() if isinstance(value, int) else 0
        return f"an integer of {bits} bits" if bits else f"a {type(value).__name__}"


def join_path(parts: Iterable[str | int]) -> str:
    """``("spec", "containers", 0, "name")`` -> ``spec.containers[0].name``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def unknown_field(name: str, known: Iterable[str], message: str = "unknown field") -> str:
    """``message``, plus ``; did you mean 'storageUri'?`` when a known name is close.

    Case is ignored (``storageURI`` means ``storageUri``, not ``storage``).
    """
    by_lower = {k.lower(): k for k in sorted(known)}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1)
    return f"{message}; did you mean {by_lower[close[0]]!r}?" if close else message
