"""Where a File collector's file is: the path as written, expanded for one trial."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

_VAR = re.compile(r"\$(?:(\w+)|\{(\w+)\})")


def resolve_metrics_path(path: str, trial_dir: Path, env: Mapping[str, str] | None) -> Path:
    """A File collector's path: ``$VAR``s from ``env``, relative to ``trial_dir``."""
    expanded = _expand(path, env or {})
    resolved = Path(expanded).expanduser()
    return resolved if resolved.is_absolute() else trial_dir / resolved


def _expand(text: str, env: Mapping[str, str]) -> str:
    """``$NAME`` / ``${NAME}`` from ``env``; unknown names are left as written."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return env.get(name, match.group(0))

    return _VAR.sub(value, text)
