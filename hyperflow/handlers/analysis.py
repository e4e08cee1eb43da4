"""Read models of an experiment for the web UI (and any API client that plots): the trial
table as columns, fetched incrementally; each trial's curve of a metric by step; parameter
importances from optuna's evaluators; a contour grid interpolated on the server.

As optuna-dashboard does, a reader asks only for what changed: ``after=N`` returns the
trials numbered above ``N`` and ``finishedThrough``, the number up to which every trial
has finished (the next ``after``), so a page holding 10,000 finished trials reads only
the few still running. Heavy work (importance, interpolation) runs here, on the server,
cached until another trial finishes; the browser only draws.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from hyperflow.handlers.auth import Caller
from hyperflow.handlers.errors import BadRequest, FieldProblem, Invalid
from hyperflow.handlers.events import EventBus
from hyperflow.handlers.experiments import ExperimentHandlers
from tuner.spec.models import Experiment
from tuner.store import ExperimentRecord, Store
from tuner.store.queries import (
    experiment_summaries,
    finished_through,
    metric_series,
    phase_counts,
    trial_rows,
)
from tuner.suggestion.space import Parameter, SearchSpace
from tuner.types import ExperimentPhase, TrialPhase

EVALUATORS = ("fanova", "mdi", "ped-anova")
_PHASES = {p.value for p in ExperimentPhase}
GRID = 60  # contour grid points per axis
SUMMARY_SECONDS = 2.0


def store_changes(store: Store) -> Callable[[], Any]:
    """A cheap stamp that changes whenever the store may have: SQLite's ``data_version``
    on a connection of its own (it moves with every commit of any other connection or
    process: the server's writers and ``experiment run`` alike); for other databases the
    current SUMMARY_SECONDS slot (writers outside the server are seen that late)."""
    url = store.engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        import sqlite3

        conn = sqlite3.connect(url.database, check_same_thread=False)
        lock = threading.Lock()

        def data_version() -> Any:
            with lock:
                return conn.execute("PRAGMA data_version").fetchone()[0]

        return data_version
    return lambda: int(time.monotonic() / SUMMARY_SECONDS)


def _json(value: Any) -> Any:
    """A JSON column as the driver gave it (text on SQLite, parsed on PostgreSQL)."""
    if value is None or isinstance(value, dict | list):
        return value
    return orjson.loads(value)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _metric_value(entry: Any, strategy: str) -> float | None:
    if not isinstance(entry, dict):
        return None
    return _number(entry.get(strategy, entry.get("latest")))


class AnswerCache:
    """A few computed answers per key (LRU), each valid while its ``stamp`` holds."""

    def __init__(self, size: int = 32) -> None:
        self._items: OrderedDict[tuple[Any, ...], tuple[Any, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.size = size

    def get(self, key: tuple[Any, ...], stamp: Any, compute: Callable[[], Any]) -> Any:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and hit[0] == stamp:
                self._items.move_to_end(key)
                return hit[1]
        value = compute()
        with self._lock:
            self._items[key] = (stamp, value)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


class AnalysisHandlers:
    """UI read models; every method checks the caller's namespace (through
    :meth:`ExperimentHandlers.record`) before it reads anything."""

    def __init__(self, store: Store, experiments: ExperimentHandlers, events: EventBus) -> None:
        self.store = store
        self.experiments = experiments
        self.events = events
        self._cache = AnswerCache()
        # Answers as sent, for the API layer (the trial table gzipped: see api.analysis).
        self.sent = AnswerCache(size=8)
        self._changes = store_changes(store)
        self._lock = threading.Lock()
        # Per experiment: (spec, finishedThrough, columns of the trials up to it).
        self._prefixes: OrderedDict[str, tuple[bytes, int, dict[str, Any]]] = OrderedDict()

    def stamp(self) -> tuple[int, Any]:
        """What every answer here is made of, in one value: it changes with every event
        and every change of the store (see store_changes)."""
        return (self.events.resource_version(), self._changes())

    # -- experiments list ------------------------------------------------------------

    def summaries(
        self, caller: Caller, namespace: str | None, *, phase: str | None = None
    ) -> dict[str, Any]:
        """One row per experiment the caller may see (or of ``namespace``): phase and
        reason, algorithm, trial counts by phase, budget, best objective value, times."""
        if namespace is not None:
            caller.authorize(namespace)
            namespaces: frozenset[str] | None = frozenset({namespace})
        else:
            namespaces = caller.visible()
        if phase is not None and phase not in _PHASES:
            raise BadRequest(f"phase must be one of {', '.join(sorted(_PHASES))}; got {phase!r}")
        version = self.events.resource_version()
        # The answer holds until the next event or change of the store (see store_changes).
        key = ("summaries", tuple(sorted(namespaces)) if namespaces is not None else None, phase)
        stamp = (version, self._changes())
        return self._cache.get(key, stamp, lambda: self._summaries(namespaces, phase, version))

    def _summaries(
        self, namespaces: frozenset[str] | None, phase: str | None, version: int
    ) -> dict[str, Any]:
        rows, counts, ranges = experiment_summaries(
            self.store, sorted(namespaces) if namespaces is not None else None, phase
        )
        items = []
        for uid, ns, name, spec_json, phase_, reason, message, created, started, done in rows:
            spec = (_json(spec_json) or {}).get("spec", {})
            objective = spec.get("objective", {})
            maximize = objective.get("type") == "maximize"
            low_high = ranges.get(uid)
            best = None if low_high is None else (low_high[1] if maximize else low_high[0])
            items.append(
                {
                    "namespace": ns,
                    "name": name,
                    "uid": uid,
                    "phase": phase_,
                    "reason": reason,
                    "message": message,
                    "algorithm": spec.get("algorithm", {}).get("algorithmName"),
                    "objective": {
                        "type": objective.get("type"),
                        "metric": objective.get("objectiveMetricName"),
                        "goal": objective.get("goal"),
                    },
                    "maxTrialCount": spec.get("maxTrialCount"),
                    "parallelTrialCount": spec.get("parallelTrialCount"),
                    "trials": counts.get(uid, {}),
                    "best": _number(best),
                    "created": created,
                    "started": started,
                    "completed": done,
                }
            )
        return {"resourceVersion": str(version), "items": items}

    # -- one experiment --------------------------------------------------------------

    def trial_table(
        self, caller: Caller, namespace: str, name: str, *, after: int = -1
    ) -> dict[str, Any]:
        """The experiment's trials numbered above ``after`` as columns: number, name,
        phase, reason, each parameter (typed), each metric's value (after its
        metricStrategy), observation count and times; plus the search space, the
        objective and ``finishedThrough`` (the next ``after``)."""
        record = self.experiments.record(caller, namespace, name)
        if after < -1:
            raise BadRequest("after must be >= -1")
        version = self.events.resource_version()
        experiment = Experiment.model_validate(record.spec)
        space = SearchSpace.from_specs(experiment.spec.parameters)
        objective = experiment.spec.objective
        metric_names = [objective.objective_metric_name, *objective.additional_metric_names]
        strategies = {m: objective.strategy_for(m).value for m in metric_names}
        params = {p.name: p for p in space.parameters}
        trials, through = self._trials(record, params, metric_names, strategies, after)
        return {
            "uid": record.uid,
            "resourceVersion": str(version),
            "after": after,
            "finishedThrough": through,
            "objective": {
                "type": objective.type.value,
                "metric": objective.objective_metric_name,
                "goal": objective.goal,
                "metrics": metric_names,
                "strategies": strategies,
            },
            "parameters": [_describe(p) for p in space.parameters],
            "trials": trials,
        }

    def _trials(
        self,
        record: ExperimentRecord,
        params: dict[str, Parameter],
        metric_names: list[str],
        strategies: dict[str, str],
        after: int,
    ) -> tuple[dict[str, Any], int]:
        """The columns of the trials numbered above ``after``, and ``finishedThrough``.
        Finished trials never change: their columns are kept (per experiment and spec)
        and only trials finished since, or still running, are read and converted."""
        through = finished_through(self.store, record.uid)
        stamp = orjson.dumps(record.spec)
        with self._lock:
            prefix = self._prefixes.get(record.uid)
            if prefix is not None:
                self._prefixes.move_to_end(record.uid)
        if prefix is None or prefix[0] != stamp or prefix[1] > through:
            prefix = (stamp, -1, _convert([], params, metric_names, strategies))
        _, cached_through, cached = prefix
        # Read from the end of the kept prefix when it grows (it must stay contiguous),
        # else only what the reader lacks.
        start = cached_through if through > cached_through else max(after, cached_through)
        fresh = _convert(
            trial_rows(self.store, record.uid, start), params, metric_names, strategies
        )
        if through > cached_through:
            # Newly finished trials join the kept prefix (new lists: readers of the old
            # ones are never disturbed).
            cut = bisect.bisect_right(fresh["number"], through)
            cached = _concat(cached, _slice(fresh, 0, cut))
            fresh = _slice(fresh, cut, len(fresh["number"]))
            with self._lock:
                self._prefixes[record.uid] = (stamp, through, cached)
                while len(self._prefixes) > 16:
                    self._prefixes.popitem(last=False)
        first = bisect.bisect_right(cached["number"], after)
        later = bisect.bisect_right(fresh["number"], after)
        return _concat(
            _slice(cached, first, len(cached["number"])), _slice(fresh, later, len(fresh["number"]))
        ), through

    def intermediate_values(
        self, caller: Caller, namespace: str, name: str, *, metric: str | None, after: int = -1
    ) -> dict[str, Any]:
        """Every observation of ``metric`` (default: the objective's) of the trials
        numbered above ``after``, as flat columns ``number``/``step``/``value`` (a
        trial's observations are consecutive; a missing step is its index)."""
        record = self.experiments.record(caller, namespace, name)
        metric = self._metric(record, metric)
        if after < -1:
            raise BadRequest("after must be >= -1")
        through = finished_through(self.store, record.uid)
        numbers: list[int] = []
        steps: list[int] = []
        values: list[float | None] = []
        last, index = None, 0
        for seq, step, value in metric_series(self.store, record.uid, metric, after):
            index = 0 if seq != last else index + 1
            last = seq
            numbers.append(seq)
            steps.append(step if step is not None else index)
            values.append(_number(value))
        return {
            "uid": record.uid,
            "metric": metric,
            "after": after,
            "finishedThrough": through,
            "number": numbers,
            "step": steps,
            "value": values,
        }

    def importance(
        self,
        caller: Caller,
        namespace: str,
        name: str,
        *,
        evaluator: str | None = None,
        metric: str | None = None,
    ) -> dict[str, Any]:
        """Parameter importances for ``metric`` (default: the objective) over the
        succeeded trials, by optuna's ``fanova`` (its default), ``mdi`` or ``ped-anova``
        evaluator; sorted, summing to 1. Cached until another trial finishes."""
        record = self.experiments.record(caller, namespace, name)
        evaluator = evaluator or "fanova"
        if evaluator not in EVALUATORS:
            raise BadRequest(f"evaluator must be one of {', '.join(EVALUATORS)}; got {evaluator!r}")
        metric = self._metric(record, metric)
        stamp = self._stamp(record)
        done = stamp[1].get(TrialPhase.SUCCEEDED.value, 0)
        importances = self._cache.get(
            ("importance", record.uid, evaluator, metric),
            stamp,
            lambda: _importances(
                record, self.trial_table(caller, namespace, name), evaluator, metric
            ),
        )
        return {
            "uid": record.uid,
            "metric": metric,
            "evaluator": evaluator,
            "trials": done,
            "importances": importances,
        }

    def contour(
        self,
        caller: Caller,
        namespace: str,
        name: str,
        *,
        x: str | None,
        y: str | None,
        metric: str | None = None,
    ) -> dict[str, Any]:
        """``metric`` (default: the objective) of the succeeded trials linearly
        interpolated on a grid over parameters ``x`` and ``y`` (a log parameter in log
        space, a categorical one by its index), as optuna's contour plot; the points
        themselves are in the trial table."""
        record = self.experiments.record(caller, namespace, name)
        metric = self._metric(record, metric)
        experiment = Experiment.model_validate(record.spec)
        by_name = {
            p.name: _describe(p)
            for p in SearchSpace.from_specs(experiment.spec.parameters).parameters
        }
        problems = [
            FieldProblem(
                field, f"must be one of the parameters {', '.join(by_name)}; got {value!r}"
            )
            for field, value in (("x", x), ("y", y))
            if value not in by_name
        ]
        if problems or x is None or y is None:
            raise Invalid("x and y must name two parameters", problems)
        if x == y:
            raise Invalid("x and y must differ", [FieldProblem("y", "must differ from x")])
        grid = self._cache.get(
            ("contour", record.uid, x, y, metric),
            self._stamp(record),
            lambda: _contour(
                self.trial_table(caller, namespace, name), by_name[x], by_name[y], metric
            ),
        )
        return {"uid": record.uid, "metric": metric, "x": x, "y": y, **grid}

    def _stamp(self, record: ExperimentRecord) -> tuple[Any, ...]:
        """What a computed answer depends on: the trials by phase (and the spec)."""
        counts = phase_counts(self.store, record.uid)
        return finished_through(self.store, record.uid), counts, orjson.dumps(record.spec)

    def _metric(self, record: ExperimentRecord, metric: str | None) -> str:
        objective = record.spec["spec"]["objective"]
        names = [objective["objectiveMetricName"], *objective.get("additionalMetricNames", [])]
        if metric is None or metric == "":
            return str(names[0])
        if metric not in names:
            raise Invalid(
                "unknown metric",
                [FieldProblem("metric", f"must be one of {', '.join(names)}; got {metric!r}")],
            )
        return metric


_COLUMNS = (
    "number",
    "name",
    "phase",
    "reason",
    "value",
    "observations",
    "created",
    "started",
    "completed",
)


def _convert(
    rows: list[tuple[Any, ...]],
    params: dict[str, Parameter],
    metric_names: list[str],
    strategies: dict[str, str],
) -> dict[str, Any]:
    """Trial rows (see :func:`trial_rows`) as columns; parameters typed, each metric
    reduced by its strategy."""
    columns: dict[str, list[Any]] = {k: [] for k in _COLUMNS}
    param_cols: dict[str, list[Any]] = {p: [] for p in params}
    metric_cols: dict[str, list[Any]] = {m: [] for m in metric_names}
    for seq, tname, phase, reason, assignments, metrics, value, count, c, s, d in rows:
        assignments = _json(assignments) or {}
        metrics = _json(metrics) or {}
        columns["number"].append(seq)
        columns["name"].append(tname)
        columns["phase"].append(phase)
        columns["reason"].append(reason)
        columns["value"].append(_number(value))
        columns["observations"].append(count)
        columns["created"].append(c)
        columns["started"].append(s)
        columns["completed"].append(d)
        for pname, param in params.items():
            param_cols[pname].append(_typed(param, assignments.get(pname)))
        for m in metric_names:
            metric_cols[m].append(_metric_value(metrics.get(m), strategies[m]))
    return {**columns, "params": param_cols, "metrics": metric_cols}


def _slice(cols: dict[str, Any], start: int, stop: int) -> dict[str, Any]:
    out: dict[str, Any] = {k: cols[k][start:stop] for k in _COLUMNS}
    out["params"] = {k: v[start:stop] for k, v in cols["params"].items()}
    out["metrics"] = {k: v[start:stop] for k, v in cols["metrics"].items()}
    return out


def _concat(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: a[k] + b[k] for k in _COLUMNS}
    out["params"] = {k: v + b["params"][k] for k, v in a["params"].items()}
    out["metrics"] = {k: v + b["metrics"][k] for k, v in a["metrics"].items()}
    return out


def _typed(param: Parameter, value: Any) -> Any:
    if value is None:
        return None
    try:
        typed = param.typed(value)
    except (TypeError, ValueError):
        return str(value)
    if isinstance(typed, float) and not math.isfinite(typed):
        return None
    return typed


def _describe(p: Parameter) -> dict[str, Any]:
    out: dict[str, Any] = {"name": p.name, "type": p.type.value, "log": p.log}
    if p.numeric:
        out.update(min=p.low, max=p.high, step=p.step)
    else:
        out["choices"] = list(p.choices)
    return out


def _succeeded(table: dict[str, Any], metric: str) -> list[int]:
    trials = table["trials"]
    values = trials["metrics"][metric]
    return [
        i
        for i, phase in enumerate(trials["phase"])
        if phase == TrialPhase.SUCCEEDED.value and values[i] is not None
    ]


def _importances(
    record: ExperimentRecord, table: dict[str, Any], evaluator: str, metric: str
) -> list[dict[str, Any]]:
    import optuna
    from optuna.importance import (
        FanovaImportanceEvaluator,
        MeanDecreaseImpurityImportanceEvaluator,
        PedAnovaImportanceEvaluator,
        get_param_importances,
    )

    experiment = Experiment.model_validate(record.spec)
    space = SearchSpace.from_specs(experiment.spec.parameters)
    distributions = space.distributions()
    trials = table["trials"]
    rows = _succeeded(table, metric)
    params = list(space.parameters)
    if len(rows) < 2 or not params:
        return []
    maximize = table["objective"]["type"] == "maximize"
    if metric != table["objective"]["metric"]:
        maximize = table["objective"]["strategies"][metric] == "max"
    frozen = []
    for i in rows:
        values = {p.name: trials["params"][p.name][i] for p in params}
        if any(
            v is None or not p.contains(v) for p, v in zip(params, values.values(), strict=True)
        ):
            continue
        frozen.append(
            optuna.trial.create_trial(
                params=values,
                distributions={p.name: distributions[p.name] for p in params},
                value=trials["metrics"][metric][i],
            )
        )
    if len(frozen) < 2:
        return []
    study = optuna.create_study(direction="maximize" if maximize else "minimize")
    study.add_trials(frozen)
    chosen: Any
    if evaluator == "fanova":
        chosen = FanovaImportanceEvaluator(seed=0)
    elif evaluator == "mdi":
        chosen = MeanDecreaseImpurityImportanceEvaluator(seed=0)
    else:
        chosen = PedAnovaImportanceEvaluator()
    result = get_param_importances(study, evaluator=chosen, normalize=True)
    return [{"name": k, "importance": float(v)} for k, v in result.items()]


def _axis(param: dict[str, Any], values: Sequence[Any]) -> tuple[list[float], dict[str, Any]]:
    """Coordinates of ``values`` on the axis of ``param`` and the axis description."""
    if param["type"] in ("categorical", "discrete") and param.get("choices") is not None:
        choices = [str(c) for c in param["choices"]]
        index = {c: i for i, c in enumerate(choices)}
        return [float(index.get(str(v), -1)) for v in values], {
            "type": "category",
            "categories": choices,
        }
    coords = [float(v) for v in values]
    if param.get("log"):
        return [math.log10(v) if v > 0 else math.nan for v in coords], {"type": "log"}
    return coords, {"type": "linear"}


def _contour(
    table: dict[str, Any], px: dict[str, Any], py: dict[str, Any], metric: str
) -> dict[str, Any]:
    import numpy as np

    trials = table["trials"]
    rows = [
        i
        for i in _succeeded(table, metric)
        if trials["params"][px["name"]][i] is not None
        and trials["params"][py["name"]][i] is not None
    ]
    xs, xaxis = _axis(px, [trials["params"][px["name"]][i] for i in rows])
    ys, yaxis = _axis(py, [trials["params"][py["name"]][i] for i in rows])
    zs = [trials["metrics"][metric][i] for i in rows]
    points = np.array([xs, ys], dtype=float).T if rows else np.zeros((0, 2))
    values = np.array(zs, dtype=float)
    keep = np.isfinite(points).all(axis=1) & np.isfinite(values) if rows else np.zeros(0, bool)
    points, values = points[keep], values[keep]
    empty = {"xaxis": xaxis, "yaxis": yaxis, "gridX": [], "gridY": [], "z": [], "points": 0}
    if len(points) < 3 or np.ptp(points[:, 0]) == 0 or np.ptp(points[:, 1]) == 0:
        return {**empty, "points": len(points)}
    gx = np.linspace(points[:, 0].min(), points[:, 0].max(), GRID)
    gy = np.linspace(points[:, 1].min(), points[:, 1].max(), GRID)
    z = _interpolate(points, values, gx, gy)
    grid_x = (10**gx).tolist() if xaxis["type"] == "log" else gx.tolist()
    grid_y = (10**gy).tolist() if yaxis["type"] == "log" else gy.tolist()
    return {
        "xaxis": xaxis,
        "yaxis": yaxis,
        "gridX": grid_x,
        "gridY": grid_y,
        "z": [[None if not math.isfinite(v) else v for v in row] for row in z.tolist()],
        "points": len(points),
    }


def _interpolate(points: Any, values: Any, gx: Any, gy: Any) -> Any:
    """Linear interpolation inside the points' hull, nearest outside it; points on a
    line (a hull of no area) are interpolated by nearest neighbour only."""
    import numpy as np
    from scipy.interpolate import griddata  # type: ignore[import-untyped]

    mesh_x, mesh_y = np.meshgrid(gx, gy)
    # Scale both axes to [0, 1]: the triangulation must not depend on their units.
    lo, span = points.min(axis=0), np.ptp(points, axis=0)
    unit = (points - lo) / span
    targets = (np.stack([mesh_x, mesh_y], axis=-1) - lo) / span
    nearest = griddata(unit, values, targets, method="nearest")
    try:
        linear = griddata(unit, values, targets, method="linear")
    except Exception:  # degenerate (collinear) points: QhullError
        return nearest
    return np.where(np.isfinite(linear), linear, nearest)
