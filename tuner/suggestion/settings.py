"""Algorithm settings: a typed schema per setting, parsing Katib's string values.

Katib passes every ``algorithmSettings[].value`` as a string. Each algorithm declares its
settings as :class:`Setting` objects; :func:`parse_settings` turns the user's list into
typed keyword values or ``(path, message)`` problems, never an exception.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tuner.spec.models import AlgorithmSetting

Parser = Callable[[str], Any]


class SettingError(ValueError):
    """A setting value is invalid; ``str()`` is the user-facing reason ("must be ...")."""


def integer(minimum: int) -> Parser:
    def parse(text: str) -> int:
        try:
            value = int(text.strip(), 10)
        except ValueError:
            # Katib writes "2" but YAML authors sometimes write 2.0.
            try:
                as_float = float(text)
            except ValueError:
                raise SettingError(f"must be an integer >= {minimum}") from None
            if not as_float.is_integer():
                raise SettingError(f"must be an integer >= {minimum}") from None
            value = int(as_float)
        if value < minimum:
            raise SettingError(f"must be an integer >= {minimum}")
        return value

    return parse


def number(
    *, above: float | None = None, low: float | None = None, high: float | None = None
) -> Parser:
    """A finite float, ``> above`` or within ``[low, high]``."""
    if above is not None:
        rule = f"a number > {above:g}"
    elif low is not None and high is not None:
        rule = f"a number between {low:g} and {high:g}"
    else:
        rule = "a number"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise SettingError(f"must be {rule}") from None
        if (
            not math.isfinite(value)
            or (above is not None and value <= above)
            or (low is not None and value < low)
            or (high is not None and value > high)
        ):
            raise SettingError(f"must be {rule}")
        return value

    return parse


def choice(*options: str, case_sensitive: bool = False) -> Parser:
    def parse(text: str) -> str:
        for option in options:
            if text == option or (not case_sensitive and text.lower() == option.lower()):
                return option
        raise SettingError(f"must be one of: {', '.join(options)}")

    return parse


def boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise SettingError("must be true or false")


def text_value(text: str) -> str:
    if not text.strip():
        raise SettingError("must not be empty")
    return text


@dataclass(frozen=True, slots=True)
class Setting:
    """One Katib algorithm setting.

    ``name`` is Katib's name; ``parse`` checks and converts the string value; ``help`` says
    what it maps to (shown in docs); ``required`` settings must be present.
    """

    name: str
    parse: Parser
    help: str
    required: bool = False


def parse_settings(
    algorithm: str, schema: Sequence[Setting], given: Sequence[AlgorithmSetting]
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Typed settings by name and the problems found (paths relative to ``spec.``)."""
    known = {s.name: s for s in schema}
    valid = ", ".join(s.name for s in schema) or "(none)"
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for i, item in enumerate(given):
        path = f"algorithm.algorithmSettings[{i}]"
        setting = known.get(item.name)
        if setting is None:
            problems.append(
                (
                    f"{path}.name",
                    f"unknown setting {item.name!r} for {algorithm}; valid settings: {valid}",
                )
            )
            continue
        if item.name in values:
            problems.append((f"{path}.name", f"duplicate setting {item.name!r}"))
            continue
        try:
            values[item.name] = setting.parse(item.value)
        except SettingError as exc:
            problems.append((f"{path}.value", f"{item.name} {exc}; got {item.value!r}"))
    for setting in schema:
        if (
            setting.required
            and setting.name not in values
            and not any(g.name == setting.name for g in given)
        ):
            problems.append(
                ("algorithm.algorithmSettings", f"{algorithm} needs the setting {setting.name!r}")
            )
    return values, problems
