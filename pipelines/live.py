"""The live view of a running pipeline: one table row per task (state, duration, cached)."""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

STYLES = {
    "SUCCEEDED": "green",
    "CACHED": "cyan",
    "FAILED": "red",
    "SKIPPED": "dim",
    "CANCELED": "yellow",
    "INTERRUPTED": "yellow",
    "RUNNING": "bold blue",
    "PENDING": "",
}


def shown_state(status: dict[str, Any]) -> str:
    """A run's state as tables show it: ``INTERRUPTED`` for an unfinished run that no live
    process runs (its process was killed; the same command resumes it), as an experiment
    shows ``Interrupted``; the object's ``state`` stays KFP's."""
    return "INTERRUPTED" if status.get("interrupted") else str(status.get("state", ""))


def shown_task_state(task: dict[str, Any]) -> tuple[str, Any]:
    """A task object's state and start as tables show them: a task whose process died
    with its run's (``interrupted``) is INTERRUPTED, with no start (no running clock)."""
    if task.get("interrupted"):
        return "INTERRUPTED", None
    return str(task.get("state", "")), task.get("startedAt")


def epoch(value: Any) -> float | None:
    """Seconds since the epoch of a time as stores keep it (a number) or as API objects
    give it (RFC 3339 text); None for none."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    from datetime import datetime

    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def duration(started: Any, finished: Any) -> str:
    """``1.3s`` / ``2m05s`` from a start and an end (now while running): numbers or RFC 3339."""
    start, end = epoch(started), epoch(finished)
    if start is None:
        return ""
    seconds = (end or time.time()) - start
    return f"{seconds:.1f}s" if seconds < 60 else f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def task_table(rows: list[dict[str, Any]], title: str | None = None) -> Table:
    """``rows``: dicts with path, kind, state, started_at, finished_at, message, cached_from."""
    table = Table(title=title, title_justify="left", expand=False)
    table.add_column("task")
    table.add_column("state")
    table.add_column("duration", justify="right")
    table.add_column("note", overflow="fold")
    for row in rows:
        depth = row["path"].count("/")
        name = "  " * depth + row["path"].rsplit("/", 1)[-1]
        note = row.get("message") or ""
        if row["state"] == "CACHED" and row.get("cached_from"):
            note = f"cached: {row['cached_from']}"
        state = row["state"]
        table.add_row(
            name,
            f"[{STYLES.get(state, '')}]{state}[/]" if STYLES.get(state) else state,
            duration(row.get("started_at"), row.get("finished_at")),
            note[:160],
        )
    return table


def tree_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with each task under its parent, siblings in the order they first appeared."""
    seen = {row["path"]: index for index, row in enumerate(rows)}

    def key(row: dict[str, Any]) -> tuple[int, ...]:
        parts = row["path"].split("/")
        return tuple(seen.get("/".join(parts[: i + 1]), -1) for i in range(len(parts)))

    return sorted(rows, key=key)


class LiveTasks:
    """An orchestrator observer that redraws the task table at most ``fps`` times a second."""

    def __init__(self, console: Console, title: str = "") -> None:
        self.console = console
        self.title = title
        self._rows: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._live = Live(console=console, refresh_per_second=4, transient=False)

    def __call__(self, node: Any) -> None:
        row = {
            "path": node.path,
            "kind": node.kind,
            "state": node.state if not node.queued or node.state != "PENDING" else "PENDING",
            "started_at": node.started_at,
            "finished_at": node.finished_at,
            "message": node.message,
            "cached_from": node.cached_from,
        }
        with self._lock:
            self._rows[node.path] = row
            self._live.update(self._render())

    def _render(self) -> Table:
        return task_table(tree_order(list(self._rows.values())), self.title)

    def __enter__(self) -> LiveTasks:
        self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._lock:
            shown = bool(self._rows)  # none when the run never started (a bad argument)
            if shown:
                self._live.update(self._render())
        self._live.__exit__(exc_type, exc, tb)
        if shown and not self.console.is_terminal:
            self.console.print()  # the last render ends without a newline off a terminal
