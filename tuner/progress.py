"""The live view of ``hyperflow experiment run``: a progress bar and the latest trials."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tuner.spec.models import Experiment
from tuner.types import TrialPhase

if TYPE_CHECKING:  # the controller (optuna's client and all) is not needed to draw a table
    from tuner.controller import Snapshot

PHASE_STYLE = {
    TrialPhase.CREATED: "dim",
    TrialPhase.RUNNING: "cyan",
    TrialPhase.SUCCEEDED: "green",
    TrialPhase.FAILED: "red",
    TrialPhase.KILLED: "yellow",
    TrialPhase.EARLY_STOPPED: "yellow",
    TrialPhase.METRICS_UNAVAILABLE: "magenta",
}
# Phases whose message says nothing the status column does not ("Trial is running").
_QUIET_PHASES = frozenset({TrialPhase.CREATED, TrialPhase.RUNNING, TrialPhase.SUCCEEDED})


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def trials_table(
    experiment: Experiment, trials: list[Any], best: str | None = None, limit: int | None = None
) -> Table:
    """The trial table; ``best`` (marked with *) defaults to the best succeeded trial."""
    if best is None:
        from tuner.status import best_trial

        found = best_trial(experiment.spec.objective, trials)
        best = found.name if found else None
    objective = experiment.spec.objective.objective_metric_name
    params = [p.name for p in experiment.spec.parameters]
    table = Table(box=None, pad_edge=False, header_style="bold")
    # A trial's name is what `hyperflow logs` takes: never cut or folded.
    table.add_column(
        "trial", no_wrap=True, min_width=max((len(t.name) + 2 for t in trials), default=5)
    )
    table.add_column("status", no_wrap=True)
    for p in params:
        table.add_column(p, justify="right")
    table.add_column(objective, justify="right")
    shown = trials if limit is None else trials[-limit:]
    hidden = len(trials) - len(shown)
    if hidden:
        md = experiment.metadata
        namespace = "" if md.namespace == "default" else f" -n {md.namespace}"
        table.caption = (
            f"{hidden} earlier trial{'s' if hidden != 1 else ''} not shown: "
            f"hyperflow experiment trials {md.name}{namespace}"
        )
        table.caption_justify = "left"
    # Why a trial did not succeed (command not found, exit code, no metric, stopped early)
    # is worth a column as soon as one shown trial has such a reason.
    reasons = [_reason(t) for t in shown]
    if any(reasons):
        table.add_column("reason", overflow="fold", max_width=60)
    for t, reason in zip(shown, reasons, strict=True):
        value = "" if t.objective_value is None else format_value(t.objective_value)
        name = f"{t.name} *" if t.name == best else t.name
        table.add_row(
            name,
            f"[{PHASE_STYLE[t.phase]}]{t.phase.value}[/]",
            *[format_value(t.assignments.get(p, "")) for p in params],
            value,
            *([reason] if any(reasons) else []),
        )
    return table


def _reason(trial: Any) -> str:
    if trial.phase in _QUIET_PHASES:
        return ""
    message = str(getattr(trial, "message", "") or "")
    # "Trial has failed: command not found: x" -> the part the status does not say.
    if message.startswith("Trial ") and ": " in message:
        message = message.split(": ", 1)[1]
    return escape(message)


class LiveProgress:
    """Observer for the controller; renders at most ``fps`` times a second."""

    def __init__(self, experiment: Experiment, console: Console, fps: float = 8.0) -> None:
        self.experiment = experiment
        self.console = console
        self.min_interval = 1.0 / fps
        self._last = 0.0
        total = experiment.spec.max_trial_count
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[best]}"),
            console=console,
        )
        self.task = self.progress.add_task(experiment.metadata.name, total=total, best="")
        self.live = Live(console=console, auto_refresh=False, transient=False)
        self._snapshot: Snapshot | None = None
        self._stopped = False

    def __enter__(self) -> LiveProgress:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Draw the last state and leave the live display (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        if self._snapshot is not None:
            self._render(self._snapshot)
        self.live.__exit__(None, None, None)
        if not self.console.is_terminal and self._snapshot is not None:
            self.console.print()

    def __call__(self, snapshot: Snapshot) -> None:
        if self._stopped:
            return
        self._snapshot = snapshot
        now = time.monotonic()
        if now - self._last < self.min_interval and not snapshot.experiment.phase.finished:
            return
        self._last = now
        self._render(snapshot)

    def _render(self, snapshot: Snapshot) -> None:
        done = sum(1 for t in snapshot.trials if t.phase.finished)
        best = ""
        if snapshot.best_trial is not None and snapshot.best_value is not None:
            metric = self.experiment.spec.objective.objective_metric_name
            best = f"best {metric}={snapshot.best_value:.6g} ({snapshot.best_trial})"
        self.progress.update(self.task, completed=done, best=best)
        table = trials_table(self.experiment, snapshot.trials, snapshot.best_trial, limit=12)
        self.live.update(Group(self.progress, table), refresh=True)
