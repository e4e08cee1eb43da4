"""Katib's ``successCondition``/``failureCondition``: GJSON paths over a trial's object.

Katib evaluates them with GJSON against the trial job (``gjson.Get(job, condition)``) and
calls the trial succeeded/failed when the result is non-empty. The subset of GJSON that
Katib's documented conditions use is supported, and anything else is refused when the
backend starts (never silently false):

* dotted paths: ``status.phase``, ``status.conditions``;
* queries on arrays: ``#(type=="Complete")`` (the first match), ``#(type=="Complete")#``
  (every match), with ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=`` against a quoted
  string, a number, ``true``/``false``;
* pipes ``|`` (the next path applies to the previous result) and ``@this`` / ``[@this]``
  (the value itself / wrapped in an array, as in Katib's Argo Workflow example
  ``status.[@this].#(phase=="Succeeded")#``).

Katib's defaults (:mod:`tuner.spec.defaults`), e.g. a batch/v1 Job's
``status.conditions.#(type=="Complete")#|#(status=="True")#``.
"""

from __future__ import annotations

import json
import re
from typing import Any

_QUERY = re.compile(
    r"^#\((?P<key>[^=!<>()]+?)\s*(?P<op>==|!=|<=|>=|<|>)\s*(?P<value>.+?)\)(?P<all>#?)$"
)
_MISSING = object()


class ConditionError(ValueError):
    pass


def _split(text: str, sep: str) -> list[str]:
    parts, depth, quoted, current = [], 0, False, ""
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        if ch == sep and depth == 0 and not quoted:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return parts


def _literal(text: str) -> Any:
    text = text.strip()
    try:
        return json.loads(text)
    except ValueError:
        raise ConditionError(f"cannot read {text!r} as a value (quote strings)") from None


def _compare(left: Any, op: str, right: Any) -> bool:
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if isinstance(left, bool) or isinstance(right, bool):
        return False
    if isinstance(left, int | float) and isinstance(right, int | float):
        pass
    elif not (isinstance(left, str) and isinstance(right, str)):
        return False
    return bool(
        {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]
    )


def compile_condition(condition: str) -> list[list[tuple[str, Any]]]:
    """The condition as pipes of steps; raises :class:`ConditionError` for what this
    subset of GJSON does not read."""
    if not condition.strip():
        raise ConditionError("a condition is empty")
    pipes = []
    for pipe in _split(condition.strip(), "|"):
        steps: list[tuple[str, Any]] = []
        for part in _split(pipe, "."):
            part = part.strip()
            if not part:
                raise ConditionError(f"an empty path element in {condition!r}")
            if part == "@this":
                steps.append(("this", None))
            elif part == "[@this]":
                steps.append(("wrap", None))
            elif part.startswith("#"):
                match = _QUERY.match(part)
                if match is None:
                    raise ConditionError(f"cannot read the query {part!r} in {condition!r}")
                steps.append(
                    (
                        "all" if match["all"] else "first",
                        (match["key"].strip(), match["op"], _literal(match["value"])),
                    )
                )
            elif any(ch in part for ch in "*?#@[]()"):
                raise ConditionError(f"GJSON feature {part!r} is not supported in {condition!r}")
            else:
                steps.append(("key", part))
        pipes.append(steps)
    return pipes


def _field(item: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        if not isinstance(item, dict) or key not in item:
            return _MISSING
        item = item[key]
    return item


def evaluate(condition: str | list[list[tuple[str, Any]]], obj: Any) -> bool:
    """True when the condition's result on ``obj`` exists and is not empty."""
    pipes = compile_condition(condition) if isinstance(condition, str) else condition
    value: Any = obj
    for steps in pipes:
        for step, arg in steps:
            if value is _MISSING:
                return False
            if step == "key":
                value = value.get(arg, _MISSING) if isinstance(value, dict) else _MISSING
            elif step == "wrap":
                value = [value]
            elif step in ("all", "first"):
                if not isinstance(value, list):
                    return False
                key, op, right = arg
                matches = [
                    item
                    for item in value
                    if (left := _field(item, key)) is not _MISSING and _compare(left, op, right)
                ]
                value = matches if step == "all" else (matches[0] if matches else _MISSING)
    return value is not _MISSING and value is not None and value != [] and value != {}
