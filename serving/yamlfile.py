"""YAML from users, read safely: the one loader of Experiment and InferenceService files.

* libyaml's C parser with PyYAML's safe constructor (``CSafeLoader``; the pure-Python
  ``SafeLoader`` where PyYAML was built without libyaml): a 500k-item list parses in
  seconds instead of minutes, and only plain data (no Python objects) is built;
* a size cap (:data:`MAX_BYTES`), checked before anything is parsed;
* duplicate mapping keys are an error naming the key and both lines, as Kubernetes'
  strict decoding rejects them (PyYAML alone silently keeps the last value);
* at most :data:`MAX_VALUES` values once aliases are expanded (a "billion laughs" file
  is refused, not expanded when it is sent or stored).

Every problem is a :class:`YamlError` (a ``ValueError``) whose ``str()`` is one line for
people; the spec loaders turn it into their own field errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

import yaml

# Larger files are certainly not hand-written specs; refused before they are parsed.
MAX_BYTES = 10 * 1024 * 1024
# Values of a file once its aliases are expanded (what JSON, the store and the server
# see): a few aliased lists make billions of them from a few lines ("billion laughs").
# A file within MAX_BYTES without aliases holds fewer (each value takes 2 bytes or more).
MAX_VALUES = MAX_BYTES

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
LIBYAML = _BaseLoader is not yaml.SafeLoader
_MERGE = "tag:yaml.org,2002:merge"


class YamlError(ValueError):
    """Unreadable, oversized or invalid YAML; ``str()`` is one line."""


class NoDuplicateKeys:
    """A loader mix-in (before a ``yaml.SafeLoader`` class in the bases) refusing a key
    that appears twice in one mapping: :class:`YamlError` naming the key and both lines.
    The control plane's request bodies use it with a loader of their own."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:  # "<<: *anchor" may override keys on purpose
                continue
            key = self.construct_object(key_node, deep=True)  # type: ignore[attr-defined]
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if first is not key_node:
                raise YamlError(
                    f"invalid YAML: duplicate key {key!r} at line "
                    f"{key_node.start_mark.line + 1}, column {key_node.start_mark.column + 1} "
                    f"(already set at line {first.start_mark.line + 1})"
                )
        return super().construct_mapping(node, deep)  # type: ignore[misc]


class _StrictLoader(NoDuplicateKeys, _BaseLoader):  # type: ignore[valid-type,misc]
    """The safe loader, refusing a key that appears twice in one mapping."""


def problem(exc: yaml.YAMLError) -> str:
    """``invalid YAML: <what> at line L, column C`` for a PyYAML error."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"invalid YAML: {what}{where}"


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise YamlError(f"too large: {size} bytes (at most {max_bytes})")


def _check_expansion(document: Any, limit: int = MAX_VALUES) -> Any:
    """``document`` if it holds at most ``limit`` values with its aliases expanded (PyYAML
    builds an alias as a second reference to the same object: cheap until serialized).
    A list of documents counts as one."""
    stack = [document]
    count = 0
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            count += len(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            count += len(value)
            stack.extend(value)
        if count > limit:
            raise YamlError(f"invalid YAML: more than {limit} values once its aliases are expanded")
    return document


def load_all(text: str, *, max_bytes: int = MAX_BYTES) -> list[Any]:
    """Every document of ``text`` (empty ones skipped)."""
    _check_size(len(text.encode("utf-8", errors="surrogatepass")), max_bytes)
    try:
        documents = [d for d in yaml.load_all(text, Loader=_StrictLoader) if d is not None]
        return _check_expansion(documents)  # the file's values, all documents together
    except yaml.YAMLError as exc:
        raise YamlError(problem(exc)) from None
    except RecursionError:
        raise YamlError("invalid YAML: nested too deeply") from None


def load(text: str, *, max_bytes: int = MAX_BYTES) -> Any:
    """The single document of ``text`` (None when empty)."""
    _check_size(len(text.encode("utf-8", errors="surrogatepass")), max_bytes)
    try:
        return _check_expansion(yaml.load(text, Loader=_StrictLoader))
    except yaml.YAMLError as exc:
        raise YamlError(problem(exc)) from None
    except RecursionError:
        raise YamlError("invalid YAML: nested too deeply") from None


def read_bounded(stream: BinaryIO, max_bytes: int = MAX_BYTES) -> bytes:
    """At most ``max_bytes`` of ``stream``: :class:`YamlError` if it holds more, found by
    reading one byte more, not all of it (standard input may never end)."""
    raw = stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise YamlError(f"too large: more than {max_bytes} bytes")
    return raw


def read_text(path: Path, *, max_bytes: int = MAX_BYTES) -> str:
    """``path``'s UTF-8 text, its size checked first.

    Raises ``FileNotFoundError``/``IsADirectoryError``/``OSError`` as reading does (the
    callers word those themselves) and :class:`YamlError` for a file over ``max_bytes``
    or one that is not UTF-8.
    """
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory, not a file")
    _check_size(path.stat().st_size, max_bytes)
    # A device or a pipe has no size (0): read one byte past the cap, never to the end
    # (``/dev/zero`` has none).
    with path.open("rb") as stream:
        raw = read_bounded(stream, max_bytes)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlError(f"not UTF-8 text (byte {exc.start} is invalid)") from None
