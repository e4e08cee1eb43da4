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

from serving.autoscaler import AutoscalerConfig
from serving.router.service import CANARY, DEFAULT
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


def autoscaler_config(isvc: InferenceService, tick_interval: float) -> AutoscalerConfig:
    """The KPA knobs S1's spec parsed, in the autoscaler's own type.

    cpu/memory metrics have no local meaning (replicas are processes on one machine), so
    they scale on concurrency with the same target.
    """
    a = isvc.autoscaling()
    metric = a.metric if a.metric in ("concurrency", "rps") else "concurrency"
    return AutoscalerConfig(
        metric=metric,  # type: ignore[arg-type]
        target=a.target,
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
        out.append(
            RevisionSpec(
                service=name,
                revision=revision,
                isvc_json=json.dumps(isvc.to_dict(), separators=(",", ":")),
                base_dir=Path(isvc.base_dir or Path.cwd()),
                autoscaling=autoscaler_config(isvc, tick_interval),
                canary_percent=percent or 0,
                container_concurrency=isvc.spec.predictor.container_concurrency or 0,
                timeout=float(isvc.spec.predictor.timeout) if isvc.spec.predictor.timeout else None,
            )
        )
    return out
