"""The CEL subset kfp's compiler writes into ``triggerPolicy.condition``.

``dsl.If/Elif/Else`` compile to conjunctions of comparisons over the condition task's
inputs, e.g. ``!(int(inputs.parameter_values['pipelinechannel--x']) == 0) &&
inputs.parameter_values['pipelinechannel--coin'] == 'heads'``. This module parses and
evaluates exactly that language (no ``eval``): ``inputs.parameter_values['NAME']``,
string/number/bool/null literals, ``int()``, ``double()``, ``string()``, ``!``, ``&&``,
``||``, the six comparisons and parentheses. Anything else is a :class:`ConditionError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any


class ConditionError(ValueError):
    pass


_TOKEN = re.compile(
    r"""\s*(?:
    (?P<input>inputs\.parameter_values\[\s*(?P<q>['"])(?P<name>(?:\\.|(?!(?P=q)).)*)(?P=q)\s*\])
    |(?P<string>'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")
    |(?P<number>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)
    |(?P<op>==|!=|<=|>=|&&|\|\||[<>!()])
    |(?P<word>[A-Za-z_]\w*)
    )""",
    re.VERBOSE,
)

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m[1], m[1]), body)


def _tokens(expression: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    text = expression.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ConditionError(f"cannot parse condition at {text[pos:]!r}")
        pos = match.end()
        if match["input"]:
            out.append(("input", _unquote(match["q"] + match["name"] + match["q"])))
        elif match["string"]:
            out.append(("value", _unquote(match["string"])))
        elif match["number"]:
            number = match["number"]
            out.append(("value", float(number) if any(c in number for c in ".eE") else int(number)))
        elif match["op"]:
            out.append(("op", match["op"]))
        else:
            out.append(("word", match["word"]))
    return out


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ConditionError(f"int() of a bool: {value!r}")
    if isinstance(value, str):
        return int(value.strip())
    if isinstance(value, float) and not value.is_integer():
        return int(value)
    return int(value)


def _double(value: Any) -> float:
    if isinstance(value, bool):
        raise ConditionError(f"double() of a bool: {value!r}")
    return float(value)


def _string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


_FUNCTIONS: dict[str, Callable[[Any], Any]] = {"int": _int, "double": _double, "string": _string}
_LITERALS = {"true": True, "false": False, "null": None}


class _Parser:
    def __init__(self, tokens: list[tuple[str, Any]], values: dict[str, Any]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.values = values

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, kind: str, value: Any = None) -> tuple[str, Any]:
        token = self.peek()
        if token is None or token[0] != kind or (value is not None and token[1] != value):
            raise ConditionError(f"expected {value or kind}, got {token[1] if token else 'end'}")
        self.pos += 1
        return token

    def parse(self) -> Any:
        result = self.disjunction()
        if self.peek() is not None:
            raise ConditionError(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return result

    def disjunction(self) -> Any:
        left = self.conjunction()
        while self.peek() == ("op", "||"):
            self.pos += 1
            right = self.conjunction()
            left = _truth(left) or _truth(right)
        return left

    def conjunction(self) -> Any:
        left = self.comparison()
        while self.peek() == ("op", "&&"):
            self.pos += 1
            right = self.comparison()
            left = _truth(left) and _truth(right)
        return left

    def comparison(self) -> Any:
        left = self.unary()
        token = self.peek()
        if token is not None and token[0] == "op" and token[1] in _COMPARE:
            self.pos += 1
            right = self.unary()
            try:
                return _COMPARE[token[1]](left, right)
            except TypeError as exc:
                raise ConditionError(f"cannot compare {left!r} {token[1]} {right!r}") from exc
        return left

    def unary(self) -> Any:
        if self.peek() == ("op", "!"):
            self.pos += 1
            return not _truth(self.unary())
        return self.primary()

    def primary(self) -> Any:
        token = self.peek()
        if token is None:
            raise ConditionError("unexpected end of condition")
        kind, value = token
        self.pos += 1
        if kind == "value":
            return value
        if kind == "input":
            if value not in self.values:
                raise ConditionError(f"condition input {value!r} has no value")
            return self.values[value]
        if kind == "op" and value == "(":
            inner = self.disjunction()
            self.take("op", ")")
            return inner
        if kind == "word" and value in _LITERALS:
            return _LITERALS[value]
        if kind == "word" and value in _FUNCTIONS:
            self.take("op", "(")
            argument = self.disjunction()
            self.take("op", ")")
            try:
                return _FUNCTIONS[value](argument)
            except (TypeError, ValueError) as exc:
                raise ConditionError(f"{value}({argument!r}): {exc}") from exc
        raise ConditionError(f"unexpected {value!r}")


def _truth(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConditionError(f"{value!r} is not a bool")
    return value


def evaluate(expression: str, parameter_values: dict[str, Any]) -> bool:
    """Evaluate a trigger condition against the task's resolved input parameters."""
    if not expression.strip():
        return True
    result = _Parser(_tokens(expression), parameter_values).parse()
    return _truth(result)
