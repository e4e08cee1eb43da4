"""The autoscaling knobs of an InferenceService, as Knative's and KServe's autoscalers read them.

Sources, first wins: the predictor's fields (``minReplicas``, ``maxReplicas``,
``scaleTarget``, ``scaleMetric``, ``containerConcurrency``), then Knative annotations
(``autoscaling.knative.dev/...``) on the predictor, then on the InferenceService's metadata,
then KServe's ``serving.kserve.io/...`` annotations, then Knative's defaults.

Two autoscalers, as in KServe: ``concurrency`` and ``rps`` scale with Knative's KPA; ``cpu``
and ``memory`` (or the ``hpa`` class, whose default metric is cpu) with the Kubernetes HPA,
whose target is a utilization percentage of the container's resource request (KServe's HPA
reconciler: ``scaleTarget``, default 80 for cpu). The HPA never scales below one replica.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from serving.spec.durations import parse_duration
from serving.spec.errors import FieldError, SpecError
from serving.spec.quantity import parse_quantity

if TYPE_CHECKING:
    from serving.spec.models import InferenceService

KNATIVE = "autoscaling.knative.dev/"
KSERVE = "serving.kserve.io/"
# Knative reads durations as Go's time.Duration (int64 nanoseconds) and scales as int32:
# a larger annotation is refused there too (and would overflow a timer here).
_DURATION_MAX = (2**63 - 1) / 1e9
_INT32_MAX = 2**31 - 1

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
DEFAULT_PROGRESS_DEADLINE = 600.0  # Knative's progress-deadline (config-deployment)

KPA_METRICS = ("concurrency", "rps")
HPA_METRICS = ("cpu", "memory")
# KServe's default container resources (inferenceservice-config): the request a utilization
# target is a percentage of when the container sets none.
DEFAULT_REQUESTS = {"cpu": 1.0, "memory": 2.0 * 2**30}


@dataclass(frozen=True)
class AutoscalingConfig:
    """What the local autoscaler needs for one revision. Times are in seconds."""

    autoscaler_class: str  # "kpa" (Knative) or "hpa"/"keda"/"external"/"none" (KServe)
    metric: str  # concurrency | rps | cpu | memory
    # Per replica: in-flight requests or requests/s (KPA, before utilization); for the HPA
    # a utilization percentage of ``resource_request`` or, with ``target_type``
    # "AverageValue" (Knative's HPA class with a memory target), MiB.
    target: float
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
    target_type: str = "Utilization"  # HPA metrics only: Utilization | AverageValue
    resource_request: float | None = None  # HPA: cores (cpu) or bytes (memory) per replica
    progress_deadline: float = DEFAULT_PROGRESS_DEADLINE

    @property
    def horizontal(self) -> bool:
        """Scaled by the HPA (cpu/memory), not the KPA."""
        return self.metric in HPA_METRICS

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
        self.paths: dict[str, str] = {}  # first key asked for -> where its value was found

    def get(
        self, keys: tuple[str, ...], parse: Callable[[str], T], check: Callable[[T], str | None]
    ) -> T | None:
        for prefix, notes in self._sources:
            for key in keys:
                if key not in notes:
                    continue
                path = f"{prefix}.{key}"
                self.paths[keys[0]] = path
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
        # Not 'value < low or value > high': NaN is in no range.
        return None if low <= value <= high else f"must be between {low:g} and {_exact(high)}"

    return check


def _exact(value: float) -> str:
    """An int32 bound in full (``:g`` would say 2.14748e+09)."""
    return str(value) if isinstance(value, int) else f"{value:g}"


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
        (f"{k}metric", f"{KSERVE}metric", f"{KSERVE}metrics"),
        str.lower,
        _one_of(*KPA_METRICS, *HPA_METRICS),
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
    retention = r.get(
        (f"{k}scale-to-zero-pod-retention-period",), parse_duration, _between(0, _DURATION_MAX)
    )
    scale_down_delay = r.get((f"{k}scale-down-delay",), parse_duration, _between(0, 3600))
    progress_deadline = r.get(
        ("serving.knative.dev/progress-deadline",),
        parse_duration,
        lambda value: _above(0)(value) or _between(0, _DURATION_MAX)(value),
    )
    scale = _between(0, _INT32_MAX)
    initial = r.get((f"{k}initial-scale", f"{k}initialScale"), _integer, scale)
    min_scale = r.get((f"{k}min-scale", f"{k}minScale"), _integer, scale)
    max_scale = r.get((f"{k}max-scale", f"{k}maxScale"), _integer, scale)
    up_rate = r.get((f"{k}max-scale-up-rate",), _number, _above(1))
    down_rate = r.get((f"{k}max-scale-down-rate",), _number, _above(1))

    hpa_class = "hpa" in (klass, kserve_class)
    if predictor.scale_metric is not None:
        metric, metric_path = predictor.scale_metric.value, "spec.predictor.scaleMetric"
    elif metric_annotation is not None:
        metric, metric_path = metric_annotation, r.paths[f"{k}metric"]
    else:
        # The HPA's metric is cpu unless told otherwise (KServe and Knative alike).
        metric, metric_path = ("cpu" if hpa_class else "concurrency"), ""
    container_concurrency = predictor.container_concurrency or 0
    target_type = "Utilization"
    resource_request: float | None = None
    if metric in HPA_METRICS:
        if klass == "kpa":
            r.errors.append(
                FieldError(
                    metric_path or f"metadata.annotations.{k}class",
                    f"{metric!r} is an HPA metric; the KPA class "
                    f"({k}class) scales on {' or '.join(KPA_METRICS)}",
                )
            )
        metric, target, target_type = _hpa_target(
            r, predictor.scale_target, metric, target_annotation, utilization
        )
        if target_type == "Utilization":
            resource_request = _resource_request(r, isvc, metric)
    else:
        if hpa_class and metric_path:
            r.errors.append(
                FieldError(
                    metric_path,
                    f"{metric!r} is a KPA metric; the HPA class scales on "
                    f"{' or '.join(HPA_METRICS)}",
                )
            )
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
    if metric in HPA_METRICS:
        min_replicas = max(min_replicas, 1)  # KServe's HPA: minReplicas is at least 1
    if predictor.max_replicas:
        max_replicas: int | None = predictor.max_replicas
    else:
        max_replicas = max_scale or None
    if metric in HPA_METRICS and (max_replicas is None or max_replicas < min_replicas):
        # KServe's HPA: maxReplicas = max(maxReplicas, minReplicas); unset is not unbounded.
        max_replicas = min_replicas
    if not predictor.max_replicas and max_replicas is not None and min_replicas > max_replicas:
        r.errors.append(
            FieldError(
                f"metadata.annotations.{k}max-scale",
                f"max-scale {max_replicas} is below the minimum of {min_replicas} replicas",
            )
        )

    config = AutoscalingConfig(
        autoscaler_class="hpa" if metric in HPA_METRICS else kserve_class or klass or "kpa",
        metric=metric,
        target=target,
        target_type=target_type,
        resource_request=resource_request,
        progress_deadline=progress_deadline or DEFAULT_PROGRESS_DEADLINE,
        target_utilization_percentage=utilization
        if utilization is not None and metric in KPA_METRICS
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


def _hpa_target(
    r: _Reader,
    scale_target: int | None,
    metric: str,
    knative_target: float | None,
    utilization: float | None,
) -> tuple[str, float, str]:
    """(metric, target, target type) of an HPA metric.

    KServe's HPA reconciler: ``scaleTarget`` is the average utilization percentage (cpu
    default 80); a memory metric without a target adds no metric, so the HPA's default,
    80% cpu, applies. Knative's HPA class reads ``autoscaling.knative.dev/target``: a
    percentage for cpu, MiB for memory. Older KServe: ``targetUtilizationPercentage``.
    """
    if scale_target is not None:
        if metric == "cpu" and not 1 <= scale_target <= 100:
            r.errors.append(
                FieldError(
                    "spec.predictor.scaleTarget",
                    "the target cpu utilization percentage must be an integer in [1, 100]",
                )
            )
        return metric, float(scale_target), "Utilization"
    if knative_target is not None:
        return metric, knative_target, "AverageValue" if metric == "memory" else "Utilization"
    if utilization is not None:
        return metric, utilization, "Utilization"
    return "cpu", DEFAULT_TARGET["cpu"], "Utilization"


def _resource_request(r: _Reader, isvc: InferenceService, metric: str) -> float | None:
    """The predictor container's request for ``metric`` (cores or bytes): its
    ``resources.requests``, else its limit (Kubernetes' default request), else KServe's."""
    predictor = isvc.spec.predictor
    found = predictor.implementations()
    impl = predictor.implementation
    if impl is not None:
        resources, path = impl.resources, f"spec.predictor.{found[0]}.resources"
    else:
        containers = predictor.containers or []
        resources = containers[0].resources if containers else None
        path = "spec.predictor.containers[0].resources"
    for part in ("requests", "limits"):
        section = (resources or {}).get(part)
        if isinstance(section, dict) and metric in section:
            try:
                value = parse_quantity(section[metric])
            except ValueError as exc:
                r.errors.append(FieldError(f"{path}.{part}.{metric}", str(exc)))
                return None
            if value <= 0:
                r.errors.append(FieldError(f"{path}.{part}.{metric}", "must be > 0"))
                return None
            return value
    return DEFAULT_REQUESTS[metric]


def autoscaling_errors(isvc: InferenceService) -> list[FieldError]:
    """Problems in the autoscaling annotations (used by validation)."""
    return _read(isvc)[1]


def autoscaling_config(isvc: InferenceService) -> AutoscalingConfig:
    """The local KPA knobs; raises :class:`SpecError` on malformed annotations."""
    config, errors = _read(isvc)
    if errors:
        raise SpecError(errors)
    return config
