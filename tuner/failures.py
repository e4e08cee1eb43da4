"""Saying why trials did not succeed, in one line a person can act on.

Used when an experiment ends Failed (no trial succeeded, or ``maxFailedTrialCount``
reached) and for a MetricsUnavailable trial's message: the commonest cause of "no metric"
is a name that differs from ``objectiveMetricName`` (``Loss`` vs ``loss``), so the trial's
output is searched, with the experiment's own collector rules, for the names it did print.
Only read after the fact (one bounded read per file), never on the hot path.
"""

from __future__ import annotations

import difflib
import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from tuner.metrics.factory import resolve_metrics_path
from tuner.metrics.lines import compile_filters, finite
from tuner.spec.models import ExperimentSpec, FileFormat, MetricsCollectorKind
from tuner.store import TrialRecord
from tuner.types import TrialPhase

_TAIL_BYTES = 64 * 1024  # of each file: where the last metrics are
_MAX_TRIALS = 20  # read at most this many trials' files
_MAX_NAMES = 5


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - _TAIL_BYTES))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def printed_metric_names(spec: ExperimentSpec, trial_dir: Path) -> Counter[str]:
    """Names the trial reported in the collector's format (whatever the experiment wants)."""
    collector = spec.metrics_collector_spec
    kind = collector.collector.kind
    source = collector.source
    found: Counter[str] = Counter()
    filters = list(source.filter.metrics_format) if source and source.filter else []
    try:
        patterns = compile_filters(filters)
    except ValueError:
        return found
    texts: list[str] = [_tail(trial_dir / "trial.log")]
    json_lines: list[str] = []
    if kind is MetricsCollectorKind.FILE and source and source.file_system_path:
        path = resolve_metrics_path(source.file_system_path.path, trial_dir, {})
        if source.file_system_path.format is FileFormat.JSON:
            json_lines = _tail(path).splitlines()
        else:
            texts.append(_tail(path))
    for text in texts:
        for line in text.splitlines():
            for pattern in patterns:
                for match in pattern.finditer(line):
                    name = (match.group(1) or "").strip()
                    if name and finite(match.group(2) or "") is not None:
                        found[name] += 1
    for line in json_lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            found.update(
                str(k)
                for k, v in record.items()
                if k not in ("timestamp", "step", "epoch") and finite(v) is not None
            )
    return found


def missing_metrics_file(spec: ExperimentSpec, trial_dir: Path) -> Path | None:
    """A File collector's metrics file for ``trial_dir`` when the trial never wrote it."""
    collector = spec.metrics_collector_spec
    source = collector.source
    if collector.collector.kind is not MetricsCollectorKind.FILE or not source:
        return None
    if not source.file_system_path:
        return None
    path = resolve_metrics_path(source.file_system_path.path, trial_dir, {})
    return None if path.exists() else path


def other_names(spec: ExperimentSpec, names: Counter[str]) -> list[str]:
    """The printed names that are not the experiment's metrics, likeliest typo first."""
    wanted = {spec.objective.objective_metric_name, *spec.objective.additional_metric_names}
    others = [n for n, _ in names.most_common() if n not in wanted]
    objective = spec.objective.objective_metric_name
    close = [n for n in others if n.lower() == objective.lower()]
    close += [
        n for n in difflib.get_close_matches(objective, others, n=3, cutoff=0.6) if n not in close
    ]
    return (close + [n for n in others if n not in close])[:_MAX_NAMES]


def names_hint(spec: ExperimentSpec, trial_dirs: Iterable[Path]) -> str:
    """``trials reported 'Loss'; objectiveMetricName is 'loss'``, or "" if nothing else."""
    counted: Counter[str] = Counter()
    for i, trial_dir in enumerate(trial_dirs):
        if i >= _MAX_TRIALS:
            break
        counted.update(printed_metric_names(spec, trial_dir))
    names = other_names(spec, counted)
    if not names:
        return ""
    listed = ", ".join(repr(n) for n in names)
    return (
        f"trials reported {listed}; objectiveMetricName is {spec.objective.objective_metric_name!r}"
    )


def _short(message: str) -> str:
    # "Trial has failed: exit code 2: ..." -> "exit code 2: ..."
    if message.startswith("Trial ") and ": " in message:
        return message.split(": ", 1)[1]
    return message


def describe(spec: ExperimentSpec, trials: Sequence[TrialRecord]) -> str:
    """What the trials that did not succeed have in common, e.g.
    ``6 Failed (last: exit code 2: ...); 4 MetricsUnavailable (trials reported 'Loss';
    objectiveMetricName is 'loss')``."""
    parts: list[str] = []
    failed = [t for t in trials if t.phase is TrialPhase.FAILED]
    if failed:
        parts.append(f"{len(failed)} Failed (last: {_short(failed[-1].message)})")
    unavailable = [t for t in trials if t.phase is TrialPhase.METRICS_UNAVAILABLE]
    if unavailable:
        hint = names_hint(spec, (Path(t.trial_dir) for t in reversed(unavailable)))
        metric = spec.objective.objective_metric_name
        parts.append(
            f"{len(unavailable)} MetricsUnavailable ("
            + (hint or f"no {metric!r} was reported")
            + ")"
        )
    others = Counter(
        t.phase.value
        for t in trials
        if t.phase not in (TrialPhase.FAILED, TrialPhase.METRICS_UNAVAILABLE, TrialPhase.SUCCEEDED)
        and t.phase.finished
    )
    parts += [f"{n} {phase}" for phase, n in others.items()]
    return "; ".join(parts)
