"""Parse Katib's string-typed numbers (``feasibleSpace.min: "0.01"``) with a reason on failure."""

from __future__ import annotations

import math

INT32_MAX = 2**31 - 1


class NumberError(ValueError):
    """The text is not a number of the required kind; ``str()`` is the user-facing reason."""


def parse_number(text: str, *, integer: bool = False) -> float | int:
    """``text`` as an int (``integer=True``) or a finite float.

    Raises :class:`NumberError` with ``must be an integer; got '1.5'``,
    ``must be a number; got 'abc'`` or ``must be a finite number; got '1e400'``.
    """
    stripped = text.strip()
    if integer:
        try:
            return int(stripped, 10)
        except ValueError:
            raise NumberError(f"must be an integer; got {text!r}") from None
    try:
        value = float(stripped)
    except ValueError:
        raise NumberError(f"must be a number; got {text!r}") from None
    if not math.isfinite(value):
        raise NumberError(f"must be a finite number; got {text!r}")
    return value
