"""Reduce observations to Katib metrics and rank trials.

Katib keeps, per metric of a trial, its ``min``, ``max`` and ``latest`` value; the
objective's ``metricStrategies`` entry picks which of the three is the trial's value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from tuner.spec.models import MetricStrategyType, ObjectiveSpec, ObjectiveType
from tuner.types import Observation


@dataclass(slots=True)
class MetricSummary:
    name: str
    min: float
    max: float
    latest: float

    def value(self, strategy: MetricStrategyType) -> float:
        if strategy is MetricStrategyType.MIN:
            return self.min
        if strategy is MetricStrategyType.MAX:
            return self.max
        return self.latest

    def to_dict(self) -> dict[str, float]:
        return {"min": self.min, "max": self.max, "latest": self.latest}


def summarize(observations: Iterable[Observation]) -> dict[str, MetricSummary]:
    summaries: dict[str, MetricSummary] = {}
    for o in observations:
        s = summaries.get(o.name)
        if s is None:
            summaries[o.name] = MetricSummary(o.name, o.value, o.value, o.value)
        else:
            s.min = min(s.min, o.value)
            s.max = max(s.max, o.value)
            s.latest = o.value
    return summaries


def objective_value(objective: ObjectiveSpec, summaries: dict[str, MetricSummary]) -> float | None:
    summary = summaries.get(objective.objective_metric_name)
    if summary is None:
        return None
    value = summary.value(objective.strategy_for(objective.objective_metric_name))
    return value if math.isfinite(value) else None


def final_metrics(
    objective: ObjectiveSpec, summaries: dict[str, MetricSummary]
) -> dict[str, float]:
    """One value per metric, each reduced by its own strategy (what MLflow and tables show)."""
    return {name: s.value(objective.strategy_for(name)) for name, s in summaries.items()}


def is_better(objective: ObjectiveSpec, candidate: float, incumbent: float | None) -> bool:
    if incumbent is None:
        return True
    if objective.type is ObjectiveType.MINIMIZE:
        return candidate < incumbent
    return candidate > incumbent


def goal_reached(objective: ObjectiveSpec, best: float | None) -> bool:
    if objective.goal is None or best is None:
        return False
    if objective.type is ObjectiveType.MINIMIZE:
        return best <= objective.goal
    return best >= objective.goal
