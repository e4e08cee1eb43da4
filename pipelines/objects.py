"""Pipeline runs as API objects (what ``hyperflow pipeline get`` prints)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pipelines.live import shown_state
from pipelines.store import RunRecord, TaskRecord

__all__ = ["run_object", "shown_state", "timestamp"]


def timestamp(ts: float | None) -> str | None:
    """RFC 3339 in UTC with microseconds, as KFP's API gives its times (a task of 0.3 s
    keeps its duration)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def run_object(record: RunRecord, tasks: list[TaskRecord]) -> dict[str, Any]:
    """A pipeline run as an API object (apiVersion/kind/metadata/spec/status), for the
    CLI's ``get`` and, once the control plane serves pipeline runs, its API."""
    from pipelines.runner import owner_alive

    obj = _object(record, tasks)
    if not record.finished and not owner_alive(record):
        obj["status"]["interrupted"] = True
        for task in obj["status"]["tasks"]:
            if task["state"] == "RUNNING":  # its process died with the run's: not running
                task["interrupted"] = True
    return obj


def _object(record: RunRecord, tasks: list[TaskRecord]) -> dict[str, Any]:
    return {
        "apiVersion": "hyperflow.io/v1",
        "kind": "PipelineRun",
        "metadata": {
            "name": record.name,
            "namespace": record.namespace,
            "uid": record.uid,
            "creationTimestamp": timestamp(record.created_at),
        },
        "spec": {
            "pipelineName": record.pipeline_name,
            "arguments": record.arguments,
            "parallelism": record.parallelism,
            "cache": record.cache,
            "source": record.source,
        },
        "status": {
            "state": record.state,
            "message": record.message,
            "startedAt": timestamp(record.started_at),
            "finishedAt": timestamp(record.finished_at),
            "outputs": record.outputs,
            "pipelineRoot": record.pipeline_root,
            "mlflowRunId": record.mlflow_run_id,
            "tasks": [
                {
                    "path": t.path,
                    "kind": t.kind,
                    "component": t.component,
                    "state": t.state,
                    "message": t.message,
                    "attempts": t.attempts,
                    "cachedFrom": t.cached_from,
                    "startedAt": timestamp(t.started_at),
                    "finishedAt": timestamp(t.finished_at),
                    "inputs": t.inputs,
                    "outputs": t.outputs,
                    "details": t.details,
                }
                for t in tasks
            ],
        },
    }
