"""Spec errors that name the field: ``spec.parameters[1].feasibleSpace.min: must be < max``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem at one field.

    ``path`` uses Katib's camelCase names and ``[i]`` indices, rooted at the document
    (``spec.objective.type``, ``metadata.name``); it is empty for problems with the file or
    document as a whole (unreadable file, bad YAML syntax).
    """

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class SpecError(ValueError):
    """An Experiment file, document or object is invalid; ``errors`` lists every problem."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        """One ``"<path>: <message>"`` line per problem, in the order found."""
        return [str(error) for error in self.errors]

    def __str__(self) -> str:
        return "\n".join(self.lines())


def join_path(parts: Iterable[str | int]) -> str:
    """``("spec", "parameters", 0, "name")`` -> ``spec.parameters[0].name``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def prefixed(prefix: str, errors: Iterable[FieldError]) -> list[FieldError]:
    """``errors`` re-rooted under ``prefix`` (``document[1]`` + ``spec.x`` -> ``document[1].spec.x``)."""
    return [FieldError(f"{prefix}.{e.path}" if e.path else prefix, e.message) for e in errors]
