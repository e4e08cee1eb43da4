"""Request bodies in: JSON or YAML (safe, no aliases, one document) to plain data."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import yaml

from hyperflow.handlers.errors import BadRequest, FieldProblem, Invalid, UnsupportedMediaType
from serving.yamlfile import NoDuplicateKeys, YamlError, problem

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
JSON_TYPES = ("application/json", "application/merge-patch+json")


class _NoAliases(NoDuplicateKeys, yaml.SafeLoader):
    """A safe loader that refuses anchors/aliases: a small body must not expand into a
    huge object (the "billion laughs"). Pure Python: the C loader composes nodes in C. A
    key given twice is refused, as in files and as Kubernetes' strict decoding does."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases are not accepted by the API", event.start_mark
            )
        return super().compose_node(parent, index)


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _charset(content_type: str | None) -> str | None:
    """The ``charset`` parameter of a Content-Type, lower case and unquoted, if given."""
    for param in (content_type or "").split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


def decode(raw: bytes, content_type: str | None, *, yaml_ok: bool = True) -> Any:
    """The body as data; 415 for a media type other than JSON (or YAML), 400 if malformed,
    422 if it holds an integer beyond int64."""
    media = _media_type(content_type)
    charset = _charset(content_type)
    if charset not in (None, "utf-8", "utf8") and media in JSON_TYPES + YAML_TYPES:
        # JSON is UTF-8 (RFC 8259 8.1), and so is what the YAML loader reads: a body
        # said to be latin-1 would be read as something else than what was meant.
        raise UnsupportedMediaType(f"bodies are UTF-8; got charset={charset}")
    if media in JSON_TYPES:
        return _in_range(_json(raw), raw, lines=False)
    if yaml_ok and media in YAML_TYPES:
        return _in_range(_yaml(raw), raw, lines=True)
    accepted = ", ".join(JSON_TYPES + (YAML_TYPES if yaml_ok else ()))
    raise UnsupportedMediaType(f"Content-Type must be one of {accepted}; got {media or 'none'!r}")


# Kubernetes' widest integer (int64), and what orjson writes: an object holding a larger
# one would be stored and then fail every read of it (and of every list it is in).
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
_MAX_PROBLEMS = 100  # named in an answer: a 3 MiB body could hold 150,000


def _in_range(data: Any, raw: bytes, *, lines: bool) -> Any:
    """``data`` if every integer in it (keys too: YAML's may be numbers) is an int64; else
    422 naming each one's path. The value is not shown: past 4,300 digits Python cannot
    even write it in decimal."""
    if not _any_too_big(data):
        return data
    problems: list[FieldProblem] = []
    pending: list[tuple[str, Any]] = [("", data)]
    while pending:  # not recursive: the parsers allow deeper nesting than Python's stack
        path, value = pending.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                name = _key(key)
                pending.append((f"{path}.{name}" if path else name, item))
                if _too_big(key):
                    problems.append(_out_of_range(f"{path}.{name}" if path else name, key))
        elif isinstance(value, list):
            pending += [(f"{path}[{i}]", v) for i, v in enumerate(value)]
        elif _too_big(value):
            problems.append(_out_of_range(path, value))
    if not problems:
        return data
    problems = sorted(problems, key=lambda p: p.path)[:_MAX_PROBLEMS]
    raise Invalid("invalid request", locate(raw, problems) if lines else problems)


def _any_too_big(data: Any) -> bool:
    """The pass every body takes, without the paths: a third of the time of the pass
    that names them (0.15 s for a 3 MiB body of 500,000 values)."""
    pending: list[Any] = [[data]]  # the body itself may be a number
    while pending:
        value = pending.pop()
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(item, dict | list):
                pending.append(item)
            elif isinstance(item, int) and not INT_MIN <= item <= INT_MAX:
                return True
            if isinstance(key, int) and not INT_MIN <= key <= INT_MAX:
                return True
    return False


def _too_big(value: Any) -> bool:
    return isinstance(value, int) and not INT_MIN <= value <= INT_MAX


def _key(key: Any) -> str:
    return f"<an integer of {key.bit_length()} bits>" if _too_big(key) else str(key)


def _out_of_range(path: str, value: int) -> FieldProblem:
    return FieldProblem(
        path,
        f"integers must be between {INT_MIN} and {INT_MAX} (int64); "
        f"got a {value.bit_length()}-bit integer",
    )


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"body is not UTF-8 (byte {exc.start})") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different (``json`` alone keeps the last value)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return out


def _json(raw: bytes) -> Any:
    try:
        return json.loads(
            _text(raw), parse_constant=_reject_constant, object_pairs_hook=_unique_keys
        )
    except ValueError as exc:
        raise BadRequest(f"invalid JSON: {_reason(exc)}") from None
    except RecursionError:
        raise BadRequest("invalid JSON: nested too deeply") from None


def _reason(exc: ValueError) -> str:
    """The parser's words, but for Python's cap on integer digits (its message tells the
    client to call ``sys.set_int_max_str_digits()``)."""
    if "integer string conversion" in str(exc):
        return f"a number has more than {sys.get_int_max_str_digits()} digits"
    return str(exc)


def _yaml(raw: bytes) -> Any:
    text = _text(raw)
    try:
        documents = [d for d in yaml.load_all(text, Loader=_NoAliases) if d is not None]
    except yaml.YAMLError as exc:
        # With the line as a detail too (as a field error has it): the UI's editor marks it.
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        details = [] if mark is None else [FieldProblem("", problem(exc), mark.line + 1)]
        raise BadRequest(problem(exc), details) from None
    except YamlError as exc:  # a duplicate key
        raise BadRequest(str(exc)) from None
    except RecursionError:
        raise BadRequest("invalid YAML: nested too deeply") from None
    except ValueError as exc:  # a scalar PyYAML cannot convert (a 5,000-digit integer)
        raise BadRequest(f"invalid YAML: {_reason(exc)}") from None
    if len(documents) != 1:
        raise BadRequest(f"the body must hold one object; it holds {len(documents)}")
    return documents[0]


def is_yaml(content_type: str | None) -> bool:
    return _media_type(content_type) in YAML_TYPES


def yaml_lines(raw: bytes) -> dict[str, int]:
    """The 1-based line of every field path (``spec.parameters[0].name``) of a YAML body;
    empty if it does not compose."""
    try:
        root = yaml.compose(raw.decode("utf-8"), Loader=_NoAliases)
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError):
        return {}
    lines: dict[str, int] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if not isinstance(key, yaml.ScalarNode):
                    continue
                child = f"{path}.{key.value}" if path else str(key.value)
                lines[child] = key.start_mark.line + 1
                walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for i, value in enumerate(node.value):
                child = f"{path}[{i}]"
                lines[child] = value.start_mark.line + 1
                walk(value, child)

    if root is not None:
        walk(root, "")
    return lines


def locate(raw: bytes, problems: list[FieldProblem]) -> list[FieldProblem]:
    """``problems`` with the YAML line of their path (or of its nearest present parent)."""
    lines = yaml_lines(raw)
    out = []
    for p in problems:
        path, line = p.path, None
        while path and line is None:
            line = lines.get(path)
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        out.append(FieldProblem(p.path, p.message, line))
    return out


async def with_body(request: Any, handler: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``handler(*args, body, **kwargs)`` off the event loop, ``body`` the request's (JSON
    or YAML); a YAML body's field errors come back with their lines in it."""
    from fastapi.concurrency import run_in_threadpool

    raw, content_type = await request.body(), request.headers.get("content-type")
    body = decode(raw, content_type)
    try:
        return await run_in_threadpool(handler, *args, body, **kwargs)
    except Invalid as exc:
        if is_yaml(content_type):
            raise Invalid(exc.message, locate(raw, exc.details)) from None
        raise
