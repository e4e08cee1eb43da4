"""Turn pydantic's ValidationError into :class:`FieldError` s with Katib paths and plain words.

pydantic reports ``loc`` tuples with the camelCase aliases already; what it lacks is a
message a Katib user understands (``must be one of minimize, maximize``) and, for typos,
the field that was probably meant.
"""

from __future__ import annotations

import difflib
import re
import types
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from tuner.spec.errors import FieldError, join_path

# pydantic appends the member type of a union to ``loc`` (``port.int``, ``port.str``);
# those tags are not fields and must not reach the user.
_UNION_TAG = re.compile(r"^(int|str|float|bool|none|\[key\]|[a-z-]+\[.*\])$")


def field_errors(exc: ValidationError, root: type[BaseModel]) -> list[FieldError]:
    """One FieldError per distinct path, in pydantic's order (union members merged)."""
    seen: set[str] = set()
    out: list[FieldError] = []
    for error in exc.errors():
        loc = [p for p in error["loc"] if not (isinstance(p, str) and _UNION_TAG.match(p))]
        if error["type"] == "invalid_key" and loc:
            # The key itself is the problem: name the mapping that holds it.
            path = join_path(loc[:-1])
            if path not in seen:
                seen.add(path)
                out.append(FieldError(path, f"field names must be strings; got {loc[-1]!r}"))
            continue
        path = join_path(loc)
        if path in seen:
            continue
        seen.add(path)
        out.append(FieldError(path, _message(error, root, loc)))
    return out


def _message(error: Any, root: type[BaseModel], loc: list[str | int]) -> str:
    kind: str = error["type"]
    given = error.get("input")
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return _unknown_field(root, loc)
    if kind == "enum":
        expected = error.get("ctx", {}).get("expected", "")
        choices = [c.strip().strip("'") for c in re.split(r",| or ", expected) if c.strip()]
        return f"must be one of {', '.join(choices)}; got {_show(given)}"
    if kind == "finite_number":
        return "must be a finite number"
    if kind in ("int_parsing", "int_type", "int_from_float", "int_parsing_size"):
        return f"must be an integer; got {_show(given)}"
    if kind in ("float_parsing", "float_type"):
        return f"must be a number; got {_show(given)}"
    if kind in ("bool_parsing", "bool_type"):
        return f"must be true or false; got {_show(given)}"
    if kind in ("string_type", "string_unicode"):
        return f"must be a string; got {_show(given)}"
    if kind in ("list_type", "tuple_type"):
        return f"must be a list; got {_type_name(given)}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"must be a mapping; got {_type_name(given)}"
    text: str = error["msg"]
    return text[:1].lower() + text[1:]


def _show(value: Any) -> str:
    if isinstance(value, dict | list):
        return _type_name(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return {"str": "a string", "int": "an integer", "float": "a number", "bool": "a boolean"}.get(
        type(value).__name__, type(value).__name__
    )


def _unknown_field(root: type[BaseModel], loc: list[str | int]) -> str:
    model = _model_at(root, loc[:-1])
    name = loc[-1] if loc else ""
    if model is None or not isinstance(name, str):
        return "unknown field"
    known = sorted(f.alias or n for n, f in model.model_fields.items())
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"unknown field; did you mean {close[0]!r}?"
    return f"unknown field; valid fields: {', '.join(known)}"


def _model_at(root: type[BaseModel], loc: list[str | int]) -> type[BaseModel] | None:
    """The model class found by following ``loc`` from ``root`` (None if not a model)."""
    current: Any = root
    pending_key = False
    for part in loc:
        if pending_key:  # a dict key: step over it into the value type
            pending_key = False
            continue
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        annotation = None
        for field_name, info in current.model_fields.items():
            if part in (field_name, info.alias):
                annotation = info.annotation
                break
        if annotation is None:
            return None
        current, pending_key = _unwrap(annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """Strip Optional/list; report whether a dict key comes next in ``loc``."""
    while True:
        origin = get_origin(annotation)
        if origin in (Union, types.UnionType):
            members = [a for a in get_args(annotation) if a is not type(None)]
            annotation = members[0] if len(members) == 1 else Any
        elif origin is list:
            annotation = get_args(annotation)[0]
        elif origin is dict:
            return get_args(annotation)[1], True
        else:
            return annotation, False
