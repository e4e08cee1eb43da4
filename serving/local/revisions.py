"""From loaded InferenceServices to the revisions the local deployment runs.

Local convention for canaries: KServe rolls a canary out by applying a new spec (with
``canaryTrafficPercent``) over the running one. Locally, pass both files: the first file
with a given ``metadata.name`` is the default revision; a second file with the same name
must set ``canaryTrafficPercent`` and becomes the canary revision, which gets that
percentage of the traffic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from serving.autoscaler import AutoscalerConfig, HorizontalConfig
from serving.router.service import CANARY, DEFAULT
from serving.runtimes import local_notes
from serving.spec import FieldError, InferenceService, SpecError

DEFAULT_TICK_INTERVAL = 2.0  # Knative's autoscaler tick


@dataclass(frozen=True)
class RevisionSpec:
    """One revision to run: what to start and how to scale it."""

    service: str
    revision: str
    isvc_json: str
    base_dir: Path
    autoscaling: AutoscalerConfig
    canary_percent: int = 0
    container_concurrency: int = 0
    timeout: float | None = None
    # cpu/memory metrics: scaled by the HPA's algorithm on the replicas' usage instead.
    horizontal: HorizontalConfig | None = None
    # Knative's progress deadline: a revision not ready by then is Failed.
    progress_deadline: float = 600.0
    notes: tuple[str, ...] = ()  # what a local run leaves out (sidecars ...)

    @property
    def initial_replicas(self) -> int:
        if self.horizontal is not None:
            return self.horizontal.initial_replicas
        return self.autoscaling.initial_replicas


def horizontal_config(isvc: InferenceService, tick_interval: float) -> HorizontalConfig | None:
    """The HPA's knobs for a cpu/memory metric (None for concurrency/rps)."""
    a = isvc.autoscaling()
    if not a.horizontal:
        return None
    return HorizontalConfig(
        metric=a.metric,  # type: ignore[arg-type]
        target=a.target,
        target_type=a.target_type,  # type: ignore[arg-type]
        resource_request=a.resource_request or 1.0,
        min_replicas=a.min_replicas,
        max_replicas=a.max_replicas or 0,
        initial_replicas=a.min_replicas,  # a Deployment starts at the HPA's minimum
        tick_interval=tick_interval,
    )


def autoscaler_config(isvc: InferenceService, tick_interval: float) -> AutoscalerConfig:
    """The KPA knobs the spec parsed, in the autoscaler's own type (for cpu/memory
    metrics: the bounds only; :func:`horizontal_config` holds the HPA's)."""
    a = isvc.autoscaling()
    horizontal = a.horizontal
    return AutoscalerConfig(
        metric="concurrency" if horizontal else a.metric,  # type: ignore[arg-type]
        target=100.0 if horizontal else a.target,
        target_utilization_percentage=a.target_utilization_percentage,
        stable_window=a.stable_window,
        panic_window_percentage=a.panic_window_percentage,
        panic_threshold_percentage=a.panic_threshold_percentage,
        max_scale_up_rate=a.max_scale_up_rate,
        max_scale_down_rate=a.max_scale_down_rate,
        min_replicas=a.min_replicas,
        max_replicas=a.max_replicas or 0,
        initial_replicas=a.initial_scale,
        scale_to_zero_grace=a.scale_to_zero_grace,
        scale_down_delay=a.scale_down_delay,
        tick_interval=tick_interval,
    )


def scaling_summary(isvc: InferenceService) -> str:
    """How ``serve run`` scales this service, for ``validate`` and the status table."""
    horizontal = horizontal_config(isvc, DEFAULT_TICK_INTERVAL)
    if horizontal is not None:
        return f"HPA on {horizontal.describe()}"
    a = isvc.autoscaling()
    return f"{a.metric} target {a.target:g}"


def revision_spec(
    isvc: InferenceService,
    revision: str,
    canary_percent: int = 0,
    tick_interval: float = DEFAULT_TICK_INTERVAL,
) -> RevisionSpec:
    """What to run for one revision of ``isvc`` (relative paths from its ``base_dir``,
    else the working directory)."""
    predictor = isvc.spec.predictor
    return RevisionSpec(
        service=isvc.metadata.name,
        revision=revision,
        isvc_json=json.dumps(isvc.to_dict(), separators=(",", ":")),
        base_dir=Path(isvc.base_dir or Path.cwd()),
        autoscaling=autoscaler_config(isvc, tick_interval),
        canary_percent=canary_percent,
        container_concurrency=predictor.container_concurrency or 0,
        timeout=float(predictor.timeout) if predictor.timeout else None,
        horizontal=horizontal_config(isvc, tick_interval),
        progress_deadline=isvc.autoscaling().progress_deadline,
        notes=tuple(local_notes(isvc)),
    )


def revision_specs(
    isvcs: list[InferenceService], tick_interval: float = DEFAULT_TICK_INTERVAL
) -> list[RevisionSpec]:
    """Default and canary revisions, in file order; raises SpecError on a bad pairing."""
    out: list[RevisionSpec] = []
    seen: dict[str, int] = {}
    for isvc in isvcs:
        name = isvc.metadata.name
        count = seen.get(name, 0)
        seen[name] = count + 1
        percent = isvc.spec.predictor.canary_traffic_percent
        if count == 0:
            revision = DEFAULT
            percent = 0
        elif count == 1:
            if percent is None:
                raise SpecError(
                    [
                        FieldError(
                            "spec.predictor.canaryTrafficPercent",
                            f"{name!r} is defined twice; the second definition is the "
                            "canary revision and must set canaryTrafficPercent",
                        )
                    ]
                )
            revision = CANARY
        else:
            raise SpecError(
                [
                    FieldError(
                        "metadata.name",
                        f"{name!r} is defined more than twice (at most default + canary)",
                    )
                ]
            )
        out.append(revision_spec(isvc, revision, percent or 0, tick_interval))
    return out
