"""The local KPA knobs of an InferenceService, as Knative's autoscaler reads them.

Sources, first wins: the predictor's fields (``minReplicas``, ``maxReplicas``,
``scaleTarget``, ``scaleMetric``, ``containerConcurrency``), then Knative annotations
(``autoscaling.knative.dev/...``) on the predictor, then on the InferenceService's metadata,
then KServe's ``serving.kserve.io/...`` annotations, then Knative's defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from serving.spec.durations import parse_duration
from serving.spec.errors import FieldError, SpecError

if TYPE_CHECKING:
    from serving.spec.models import InferenceService

KNATIVE = "autoscaling.knative.dev/"
KSERVE = "serving.kserve.io/"

# Knative's defaults (config-autoscaler), except the scale-to-zero grace: Knative's
# cluster-wide scale-to-zero-grace-period (30s) is the retention default here.
DEFAULT_TARGET = {"concurrency": 100.0, "rps": 200.0, "cpu": 80.0, "memory": 80.0}
DEFAULT_TARGET_UTILIZATION = 70.0
DEFAULT_STABLE_WINDOW = 60.0
DEFAULT_PANIC_WINDOW_PERCENTAGE = 10.0
DEFAULT_PANIC_THRESHOLD_PERCENTAGE = 200.0
DEFAULT_SCALE_TO_ZERO_GRACE = 30.0
DEFAULT_MAX_SCALE_UP_RATE = 1000.0
DEFAULT_MAX_SCALE_DOWN_RATE = 2.0


@dataclass(frozen=True)
class AutoscalingConfig:
    """What the local autoscaler needs for one revision. Times are in seconds."""

    autoscaler_class: str  # "kpa" (Knative) or "hpa"/"keda"/"external"/"none" (KServe)
    metric: str  # concurrency | rps | cpu | memory
    target: float  # metric value per replica that scaling aims at (before utilization)
    target_utilization_percentage: float
    min_replicas: int
    max_replicas: int | None  # None: unbounded
    initial_scale: int
    container_concurrency: int  # hard per-replica limit; 0 = unlimited
    stable_window: float
    panic_window_percentage: float
    panic_threshold_percentage: float
    scale_to_zero_grace: float
    scale_down_delay: float
    max_scale_up_rate: float
    max_scale_down_rate: float

    @property
    def target_per_replica(self) -> float:
        """Knative's effective target: ``target * utilization / 100``."""
        return self.target * self.target_utilization_percentage / 100.0

    @property
    def panic_window(self) -> float:
        return self.stable_window * self.panic_window_percentage / 100.0

    @property
    def scale_to_zero(self) -> bool:
        return self.min_replicas == 0


T = TypeVar("T")


class _Reader:
    """Reads annotations with field-named errors; predictor annotations override metadata."""

    def __init__(self, isvc: InferenceService) -> None:
        self.errors: list[FieldError] = []
        self._sources = [
            ("spec.predictor.annotations", isvc.spec.predictor.annotations),
            ("metadata.annotations", isvc.metadata.annotations),
        ]

    def get(
        self, keys: tuple[str, ...], parse: Callable[[str], T], check: Callable[[T], str | None]
    ) -> T | None:
        for prefix, notes in self._sources:
            for key in keys:
                if key not in notes:
                    continue
                path = f"{prefix}.{key}"
                try:
                    value = parse(notes[key])
                except ValueError as exc:
                    self.errors.append(FieldError(path, str(exc)))
                    return None
                problem = check(value)
                if problem:
                    self.errors.append(FieldError(path, problem))
                    return None
                return value
        return None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"must be a number, got {text!r}") from None


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"must be an integer, got {text!r}") from None


def _between(low: float, high: float) -> Callable[[float], str | None]:
    def check(value: float) -> str | None:
        return None if low <= value <= high else f"must be between {low:g} and {high:g}"

    return check


def _at_least(low: float) -> Callable[[float], str | None]:
    return lambda value: None if value >= low else f"must be >= {low:g}"


def _above(low: float) -> Callable[[float], str | None]:
    return lambda value: None if value > low else f"must be > {low:g}"


def _one_of(*choices: str) -> Callable[[str], str | None]:
    return lambda value: None if value in choices else f"must be one of {', '.join(choices)}"


def _class(text: str) -> str:
    # Knative: "kpa.autoscaling.knative.dev"; KServe: "hpa", "keda", "external", "none".
    return text.split(".", 1)[0].lower()


def _read(isvc: InferenceService) -> tuple[AutoscalingConfig, list[FieldError]]:
    predictor = isvc.spec.predictor
    r = _Reader(isvc)
    k = KNATIVE

    klass = r.get((f"{k}class",), _class, _one_of("kpa", "hpa"))
    kserve_class = r.get(
        (f"{KSERVE}autoscalerClass",), str.lower, _one_of("hpa", "keda", "external", "none")
    )
    metric_annotation = r.get(
        (f"{k}metric", f"{KSERVE}metric"),
        str.lower,
        _one_of("concurrency", "rps", "cpu", "memory"),
    )
    target_annotation = r.get((f"{k}target",), _number, _above(0))
    utilization = r.get(
        (f"{k}target-utilization-percentage", f"{KSERVE}targetUtilizationPercentage"),
        _number,
        _between(1, 100),
    )
    window = r.get((f"{k}window",), parse_duration, _between(6, 3600))
    panic_window_pct = r.get((f"{k}panic-window-percentage",), _number, _between(1, 100))
    panic_threshold_pct = r.get((f"{k}panic-threshold-percentage",), _number, _between(110, 1000))
    retention = r.get((f"{k}scale-to-zero-pod-retention-period",), parse_duration, _at_least(0))
    scale_down_delay = r.get((f"{k}scale-down-delay",), parse_duration, _between(0, 3600))
    initial = r.get((f"{k}initial-scale", f"{k}initialScale"), _integer, _at_least(0))
    min_scale = r.get((f"{k}min-scale", f"{k}minScale"), _integer, _at_least(0))
    max_scale = r.get((f"{k}max-scale", f"{k}maxScale"), _integer, _at_least(0))
    up_rate = r.get((f"{k}max-scale-up-rate",), _number, _above(1))
    down_rate = r.get((f"{k}max-scale-down-rate",), _number, _above(1))

    metric = (
        predictor.scale_metric.value
        if predictor.scale_metric is not None
        else metric_annotation or "concurrency"
    )
    container_concurrency = predictor.container_concurrency or 0
    if predictor.scale_target is not None:
        target = float(predictor.scale_target)
    elif target_annotation is not None:
        target = target_annotation
    elif metric == "concurrency" and container_concurrency > 0:
        # Knative: with a hard limit and no soft target, the limit is the target.
        target = float(container_concurrency)
    else:
        target = DEFAULT_TARGET[metric]

    if predictor.min_replicas is not None:
        min_replicas = predictor.min_replicas
    else:
        min_replicas = min_scale if min_scale is not None else 1
    if predictor.max_replicas:
        max_replicas: int | None = predictor.max_replicas
    else:
        max_replicas = max_scale or None
    if not predictor.max_replicas and max_replicas is not None and min_replicas > max_replicas:
        r.errors.append(
            FieldError(
                f"metadata.annotations.{k}max-scale",
                f"max-scale {max_replicas} is below the minimum of {min_replicas} replicas",
            )
        )

    config = AutoscalingConfig(
        autoscaler_class=kserve_class or klass or "kpa",
        metric=metric,
        target=target,
        target_utilization_percentage=utilization
        if utilization is not None
        else DEFAULT_TARGET_UTILIZATION,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        initial_scale=max(initial, min_replicas) if initial is not None else max(min_replicas, 1),
        container_concurrency=container_concurrency,
        stable_window=window if window is not None else DEFAULT_STABLE_WINDOW,
        panic_window_percentage=panic_window_pct
        if panic_window_pct is not None
        else DEFAULT_PANIC_WINDOW_PERCENTAGE,
        panic_threshold_percentage=panic_threshold_pct
        if panic_threshold_pct is not None
        else DEFAULT_PANIC_THRESHOLD_PERCENTAGE,
        scale_to_zero_grace=retention if retention is not None else DEFAULT_SCALE_TO_ZERO_GRACE,
        scale_down_delay=scale_down_delay or 0.0,
        max_scale_up_rate=up_rate if up_rate is not None else DEFAULT_MAX_SCALE_UP_RATE,
        max_scale_down_rate=down_rate if down_rate is not None else DEFAULT_MAX_SCALE_DOWN_RATE,
    )
    return config, r.errors


def autoscaling_errors(isvc: InferenceService) -> list[FieldError]:
    """Problems in the autoscaling annotations (used by validation)."""
    return _read(isvc)[1]


def autoscaling_config(isvc: InferenceService) -> AutoscalingConfig:
    """The local KPA knobs; raises :class:`SpecError` on malformed annotations."""
    config, errors = _read(isvc)
    if errors:
        raise SpecError(errors)
    return config
