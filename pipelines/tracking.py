"""How a pipeline run maps onto MLflow, recorded through the tuner's MLflow tracker.

* one MLflow experiment per pipeline (its ``pipelineInfo.name``; ``<namespace>/`` outside
  ``default``), one parent run per pipeline run (run name = the run's name), with the
  pipeline's arguments as params and the compiled spec as ``pipeline.yaml``;
* one nested run per executed task (run name = the task's path), with its input
  parameters as params (input artifacts as their URIs), the metrics of its ``Metrics``
  output artifacts and its numeric output parameters as MLflow metrics, its
  ``trial.log`` and output artifact files, each ``ClassificationMetrics`` output's
  metadata as ``<output>.json`` and, when one is no finite number, its output parameters
  as ``output-parameters.json`` (no output can have that name: outputs are identifiers);
  a cache hit gets a run too (tag ``hyperflow.cached=true``, the metrics it reused).

All of it goes through :class:`tuner.tracking.MlflowTracker`: queued, written by a
background thread, off the orchestrator's path. Nothing here imports mlflow.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuner.metrics.lines import finite
from tuner.tracking import layout
from tuner.types import ExperimentPhase, ExperimentReason, Observation, TrialPhase

if TYPE_CHECKING:
    from tuner.tracking.mlflow_tracker import MlflowTracker

TAG_PIPELINE = "hyperflow.pipeline"
TAG_PIPELINE_RUN = "hyperflow.pipeline_run"
TAG_TASK = "hyperflow.task"
TAG_COMPONENT = "hyperflow.component"
TAG_CACHED = "hyperflow.cached"
SPEC_ARTIFACT = "pipeline.yaml"
METRICS_SCHEMAS = frozenset({"system.Metrics"})
# Metadata-only outputs that are no list of numbers (a confusion matrix, ROC points): a
# JSON artifact of the task's run.
JSON_METRICS_SCHEMAS = frozenset(
    {"system.ClassificationMetrics", "system.SlicedClassificationMetrics"}
)

_TASK_PHASE = {
    "SUCCEEDED": TrialPhase.SUCCEEDED,
    "CACHED": TrialPhase.SUCCEEDED,
    "FAILED": TrialPhase.FAILED,
    "CANCELED": TrialPhase.KILLED,
}


class PipelineLayout:
    """The :class:`~tuner.tracking.layout.RunsLayout` of one pipeline run."""

    def __init__(
        self,
        *,
        pipeline_name: str,
        namespace: str,
        run_name: str,
        arguments: dict[str, Any],
        spec: dict[str, Any],
        options: dict[str, Any],
    ) -> None:
        self.pipeline_name = pipeline_name
        self.namespace = namespace
        self.run_name = run_name
        self.arguments = arguments
        self.spec = spec
        self.options = options

    def experiment_name(self) -> str:
        name = self.pipeline_name
        return name if self.namespace == "default" else f"{self.namespace}/{name}"

    def fallback_experiment_name(self, uid: str) -> str:
        return f"{self.experiment_name()} ({uid[:8]})"

    def experiment_tags(self) -> dict[str, str]:
        return {TAG_PIPELINE: self.pipeline_name, layout.TAG_NAMESPACE: self.namespace}

    def parent_run_name(self) -> str:
        return self.run_name

    def parent_tags(self, uid: str) -> dict[str, str]:
        return {
            TAG_PIPELINE: self.pipeline_name,
            TAG_PIPELINE_RUN: self.run_name,
            layout.TAG_NAMESPACE: self.namespace,
            layout.TAG_UID: uid,
            layout.TAG_RUN_TYPE: layout.RUN_TYPE_PIPELINE_RUN,
            layout.TAG_STATUS: "RUNNING",
        }

    def child_tags(self, uid: str, child: str, parent_run_id: str) -> dict[str, str]:
        return {
            layout.TAG_PARENT_RUN_ID: parent_run_id,
            TAG_PIPELINE: self.pipeline_name,
            TAG_PIPELINE_RUN: self.run_name,
            layout.TAG_NAMESPACE: self.namespace,
            layout.TAG_UID: uid,
            layout.TAG_RUN_TYPE: layout.RUN_TYPE_PIPELINE_TASK,
            layout.TAG_TRIAL: layout.tag_value(child),
            TAG_TASK: layout.tag_value(child),
            layout.TAG_STATUS: "RUNNING",
        }

    def parent_params(self) -> dict[str, str]:
        params = {**{f"arg.{k}": _param(v) for k, v in self.arguments.items()}, **self.options}
        return {layout.key(k): layout.param_value(v) for k, v in params.items()}

    def spec_artifact(self) -> tuple[str, str]:
        import yaml

        # libyaml's emitter: a tenth of the pure-Python one's time, on the writer's thread.
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        return SPEC_ARTIFACT, yaml.dump(self.spec, Dumper=dumper, sort_keys=False)


def _param(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


PARAMETERS_ARTIFACT = "output-parameters.json"


def _metric_value(value: Any) -> float | None:
    """``value`` as an MLflow metric: a finite int or float (not a bool, not a numeric
    string: that is a string output), else None."""
    return finite(value) if isinstance(value, int | float) else None


def _strict(value: Any) -> Any:
    """``value`` for strict JSON (jq, a browser's JSON.parse): NaN and infinities as the
    strings Python and JavaScript print for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    return value


def _json(value: Any) -> str:
    return json.dumps(_strict(value), indent=2, sort_keys=True, allow_nan=False, default=str)


def _json_texts(
    artifacts: dict[str, list[dict[str, Any]]], parameters: dict[str, Any]
) -> dict[str, str]:
    """Artifact name -> JSON text: each ClassificationMetrics output's metadata
    (``<output>.json``; ``<output>-<i>.json`` for a list of several), and every output
    parameter (:data:`PARAMETERS_ARTIFACT`) when one of them is no metric (a string, a
    list, NaN)."""
    texts: dict[str, str] = {}
    for name, items in artifacts.items():
        shown = [
            i
            for i in items
            if i.get("type", {}).get("schemaTitle") in JSON_METRICS_SCHEMAS and i.get("metadata")
        ]
        for k, item in enumerate(shown):
            file = f"{name}.json" if len(shown) == 1 else f"{name}-{k}.json"
            texts[file] = _json(item["metadata"])
    if any(_metric_value(v) is None for v in parameters.values()):
        texts[PARAMETERS_ARTIFACT] = _json(parameters)
    return texts


class PipelineTracker:
    """Records one pipeline run; every method returns at once (see MlflowTracker)."""

    def __init__(
        self,
        tracker: MlflowTracker,
        subject: PipelineLayout,
        uid: str,
        started_at: float | None = None,
    ) -> None:
        self._tracker = tracker
        self._layout = subject
        tracker.start(subject, uid, started_at)

    def task_started(
        self,
        path: str,
        component: str,
        parameters: dict[str, Any],
        artifacts: dict[str, list[dict[str, Any]]],
        cached: bool,
        started_at: float | None = None,
    ) -> None:
        tags = {TAG_COMPONENT: component}
        if cached:
            tags[TAG_CACHED] = "true"
        params: dict[str, float | int | str] = {k: _param(v) for k, v in parameters.items()}
        for name, items in artifacts.items():
            params[name] = ",".join(str(a.get("uri", "")) for a in items)
        self._tracker.start_trial(path, params, started_at, tags=tags)

    def task_finished(
        self,
        path: str,
        state: str,
        artifacts: dict[str, list[dict[str, Any]]],
        task_dir: Path | None,
        parameters: dict[str, Any] | None = None,
        ended_at: float | None = None,
    ) -> None:
        now = ended_at or time.time()
        observations: list[Observation] = []
        # A task's one Metrics output logs its metrics by their own names (another output,
        # a Model say, does not rename them); several are told apart by output name.
        metric_outputs = {
            name: [i for i in items if i.get("type", {}).get("schemaTitle") in METRICS_SCHEMAS]
            for name, items in artifacts.items()
        }
        metric_outputs = {name: items for name, items in metric_outputs.items() if items}
        for name, items in metric_outputs.items():
            for item in items:
                for metric, value in (item.get("metadata") or {}).items():
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        key = metric if len(metric_outputs) == 1 else f"{name}.{metric}"
                        observations.append(Observation(key, float(value), 0, now))
        # A number the task returned (``-> float``, a NamedTuple's fields) is a metric by
        # its output name, unless a Metrics output already has that name.
        taken = {o.name for o in observations}
        for name, value in (parameters or {}).items():
            number = _metric_value(value)
            if number is not None and name not in taken:
                observations.append(Observation(name, number, 0, now))
        if observations:
            self._tracker.log_observations(path, observations)
        phase = _TASK_PHASE.get(state, TrialPhase.FAILED)
        texts = _json_texts(artifacts, parameters or {})
        self._tracker.end_trial(path, phase, {}, task_dir, ended_at, texts=texts)

    def run_finished(self, state: str, message: str) -> None:
        if state == "SUCCEEDED":
            phase, reason = ExperimentPhase.SUCCEEDED, "PipelineRunSucceeded"
        elif state == "CANCELED":
            phase, reason = ExperimentPhase.FAILED, ExperimentReason.KILLED.value
        else:
            phase, reason = ExperimentPhase.FAILED, message or "PipelineRunFailed"
        self._tracker.end_experiment(phase, reason, None, {})

    def run_id(self) -> str | None:
        return self._tracker.run_id(None)

    def describe(self) -> str:
        return self._tracker.describe()

    def close(self, timeout: float | None = None) -> None:
        self._tracker.close(timeout)
