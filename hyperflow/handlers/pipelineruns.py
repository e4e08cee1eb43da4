"""Pipeline run handlers: create/list/get/delete and task logs; no HTTP.

A PipelineRun as the API takes it (``hyperflow create -f`` builds it from a compiled
pipeline and ``--arg`` values; KFP's own API names the arguments
``runtime_config.parameters``)::

    apiVersion: hyperflow.io/v1
    kind: PipelineRun
    metadata: {name: add-1}            # or generateName: add-
    spec:
      pipelineSpec: {...}              # the compiled pipeline (kfp IR), inline
      runtimeConfig: {parameters: {a: 1, b: 2}}
      parallelism: 4                   # optional (default: the server's CPUs)
      cache: true                      # optional (KFP's enable_caching)

What comes back is the run object ``hyperflow pipeline get`` prints (spec + status with
every task).
"""

from __future__ import annotations

import builtins
import os
import secrets
import string
from pathlib import Path
from typing import Any

from hyperflow.handlers import paging
from hyperflow.handlers.auth import Caller
from hyperflow.handlers.errors import (
    BadRequest,
    Conflict,
    FieldProblem,
    Invalid,
    NotFound,
    Unavailable,
)
from hyperflow.handlers.events import DELETED, EventBus
from hyperflow.handlers.names import check_dns_label, shown
from hyperflow.pipelineruns import KIND, SOURCE, PipelineRunManager
from pipelines.store import RUN_FINISHED, PipelineStore, RunRecord, TaskRecord

API_VERSION = "hyperflow.io/v1"
SOURCE_ANNOTATION = "hyperflow.io/pipeline-file"  # where the client read the pipeline
_STATES = {"PENDING", "RUNNING", *RUN_FINISHED}
_SUFFIX = string.ascii_lowercase + string.digits
INT32_MAX = 2**31 - 1


class PipelineRunHandlers:
    def __init__(self, store: PipelineStore, manager: PipelineRunManager, events: EventBus) -> None:
        self.store = store
        self.manager = manager
        self.events = events

    def create(self, caller: Caller, namespace: str, body: Any) -> dict[str, Any]:
        """Store and start a run; 409 if the name is taken, 422 with every field error."""
        caller.authorize(namespace)
        if not isinstance(body, dict):
            raise Invalid("a PipelineRun must be a mapping (a YAML or JSON object)")
        problems: list[FieldProblem] = []
        kind = body.get("kind", KIND)
        if kind != KIND:
            problems.append(FieldProblem("kind", f"must be {KIND}, got {shown(kind)}"))
        api_version = body.get("apiVersion", API_VERSION)
        if api_version != API_VERSION:
            problems.append(
                FieldProblem("apiVersion", f"must be {API_VERSION}, got {shown(api_version)}")
            )
        metadata = body.get("metadata", {})
        if not isinstance(metadata, dict):
            problems.append(FieldProblem("metadata", "must be a mapping"))
            metadata = {}
        for key in ("labels", "annotations"):
            value = metadata.get(key, {})
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                problems.append(FieldProblem(f"metadata.{key}", "must be a map of strings"))
        given_ns = metadata.get("namespace")
        if given_ns is not None and given_ns != namespace:
            problems.append(
                FieldProblem(
                    "metadata.namespace",
                    f"{shown(given_ns)} does not match the namespace of the request ({namespace!r})",
                )
            )
        name = metadata.get("name")
        prefix = metadata.get("generateName")
        if name is None and prefix is not None:
            if not isinstance(prefix, str) or len(prefix) > 57:
                problems.append(FieldProblem("metadata.generateName", "must be a short string"))
            else:
                name = prefix + "".join(secrets.choice(_SUFFIX) for _ in range(5))
                problems += check_dns_label(name, "metadata.generateName")
        else:
            problems += check_dns_label(name, "metadata.name")
        spec = body.get("spec")
        if not isinstance(spec, dict):
            problems.append(FieldProblem("spec", "must be a mapping"))
            raise Invalid("the PipelineRun is invalid", problems)
        pipeline = spec.get("pipelineSpec")
        if not isinstance(pipeline, dict):
            problems.append(
                FieldProblem("spec.pipelineSpec", "must be the compiled pipeline (kfp IR) inline")
            )
        runtime = spec.get("runtimeConfig", {})
        parameters: Any = runtime.get("parameters", {}) if isinstance(runtime, dict) else None
        if not isinstance(parameters, dict):
            problems.append(
                FieldProblem("spec.runtimeConfig.parameters", "must be a mapping of arguments")
            )
        parallelism = spec.get("parallelism", os.cpu_count() or 1)
        if (
            not isinstance(parallelism, int)
            or isinstance(parallelism, bool)
            or not 1 <= parallelism <= INT32_MAX  # an INTEGER column (int32 on PostgreSQL)
        ):
            problems.append(
                FieldProblem("spec.parallelism", f"must be an integer from 1 to {INT32_MAX}")
            )
        cache = spec.get("cache", True)
        if not isinstance(cache, bool):
            problems.append(FieldProblem("spec.cache", "must be true or false"))
        # Read-only (the run object's, from pipelineInfo.name): taken back, never used.
        if not isinstance(spec.get("pipelineName", ""), str):
            problems.append(FieldProblem("spec.pipelineName", "must be a string"))
        unknown = sorted(
            set(spec) - {"pipelineSpec", "runtimeConfig", "parallelism", "cache", "pipelineName"}
        )
        problems += [FieldProblem(f"spec.{k}", "unknown field") for k in unknown]
        if problems:
            raise Invalid("the PipelineRun is invalid", problems)
        assert isinstance(pipeline, dict) and isinstance(parameters, dict)
        checked, arguments = _checked(pipeline, parameters)
        annotations = metadata.get("annotations")
        where = annotations.get(SOURCE_ANNOTATION) if isinstance(annotations, dict) else None
        source = f"{SOURCE}:{where}" if isinstance(where, str) and where else SOURCE
        assert isinstance(name, str)
        if self.store.get_run(name, namespace) is not None:
            raise Conflict(f'pipelineruns "{name}" already exists in namespace {namespace}')
        from pipelines.runner import resume_key

        root = self.manager.settings.home / "pipelines" / namespace / name
        try:
            record = self.store.create_run(
                namespace=namespace,
                name=name,
                pipeline_name=checked["pipelineInfo"]["name"],
                spec=checked,
                arguments=arguments,
                resume_key=resume_key(checked, arguments, cache, namespace),
                source=source,
                parallelism=parallelism,
                cache=cache,
                pipeline_root=str(root),
                state="PENDING",
                owner_pid=None,
                owner_started=None,
            )
        except Exception as exc:  # the unique (namespace, name) index: a concurrent create
            if self.store.get_run(name, namespace) is not None:
                raise Conflict(
                    f'pipelineruns "{name}" already exists in namespace {namespace}'
                ) from None
            raise exc
        self.manager.created(record)
        self.manager.start(record)
        return run_api_object(record, [])

    def list(
        self,
        caller: Caller,
        namespace: str | None,
        *,
        state: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
    ) -> paging.Page:
        """Runs of ``namespace`` (None: every namespace the caller may see), oldest first."""
        if namespace is not None:
            caller.authorize(namespace)
        visible = caller.visible() if namespace is None else None
        if state is not None and state not in _STATES:
            raise BadRequest(f"state must be one of {', '.join(sorted(_STATES))}; got {state!r}")
        version = self.events.resource_version()
        query = ("pipelineruns", namespace, state)
        offset, limit = paging.start(limit, continue_, query)
        records = [
            r
            for r in self.store.list_runs(namespace)
            if (visible is None or r.namespace in visible) and (state is None or r.state == state)
        ]
        window = records[offset : offset + limit]
        items = [run_api_object(r, self.store.tasks(r.uid)) for r in window]
        more = offset + limit < len(records)
        return paging.Page(items, paging.next_token(offset, len(items), more, query), version)

    def get(self, caller: Caller, namespace: str, name: str) -> dict[str, Any]:
        record = self._record(caller, namespace, name)
        return run_api_object(record, self.store.tasks(record.uid))

    def delete(self, caller: Caller, namespace: str, name: str) -> dict[str, Any]:
        """Cancel the run if it runs here (its tasks killed), then delete its rows and
        folder. MLflow runs are kept."""
        from pipelines.runner import owner_alive, remove_run_folder

        record = self._record(caller, namespace, name)
        if self.manager.is_running(record.uid):
            if not self.manager.stop(record.uid):
                raise Unavailable(f"pipeline run {namespace}/{name} is still stopping; try again")
            record = self.store.get_run_by_uid(record.uid)
        elif not record.finished and owner_alive(record) and record.owner_pid != os.getpid():
            raise Conflict(
                f"pipeline run {namespace}/{name} is being run by process {record.owner_pid} "
                "(hyperflow pipeline run); stop it first"
            )
        obj = run_api_object(record, self.store.tasks(record.uid))
        self.store.delete_run(record.uid)
        remove_run_folder(self.store, record)
        self.events.publish(
            DELETED, KIND, namespace, name, reason="Deleted", status={"state": record.state}
        )
        return obj

    def logs(self, caller: Caller, namespace: str, name: str, task: str | None) -> bytes:
        """A task's log, or every executed task's log in turn with a header line each."""
        from pipelines.runner import find_task

        record = self._record(caller, namespace, name)
        tasks = self.store.tasks(record.uid)
        if task is not None:
            try:
                chosen = [find_task(tasks, task)]
            except LookupError as exc:
                raise NotFound(str(exc)) from None
        else:
            chosen = [t for t in tasks if t.task_dir]
        return b"".join(_task_log(t, header=task is None) for t in chosen)

    # -- helpers ---------------------------------------------------------------------------

    def _record(self, caller: Caller, namespace: str, name: str) -> RunRecord:
        caller.authorize(namespace)
        record = self.store.get_run(name, namespace)
        if record is None:
            raise NotFound(f'pipelineruns "{name}" not found in namespace {namespace}')
        return record


def _checked(
    pipeline: dict[str, Any], parameters: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    from pipelines.spec import (
        PipelineError,
        SpecProblems,
        import_kfp_runtime,
        load_pipeline,
        pipeline_arguments,
    )

    if not import_kfp_runtime():
        raise Unavailable(
            "kfp is not installed where the server runs: pip install hyperflow[pipelines]"
        )
    try:
        checked, _ = load_pipeline(pipeline)
    except SpecProblems as exc:
        named = [FieldProblem(f"spec.pipelineSpec.{p}", m) for p, m in exc.problems]
        raise Invalid("the PipelineRun is invalid", named) from None
    except PipelineError as exc:
        raise Invalid(
            "the PipelineRun is invalid", [FieldProblem("spec.pipelineSpec", str(exc))]
        ) from None
    try:
        arguments = pipeline_arguments(checked, dict(parameters))
    except PipelineError as exc:
        raise Invalid(
            "the PipelineRun is invalid",
            [FieldProblem("spec.runtimeConfig.parameters", str(exc))],
        ) from None
    return checked, arguments


def _task_log(task: TaskRecord, header: bool) -> bytes:
    out = f"==> {task.path} ({task.state}) <==\n".encode() if header else b""
    log = Path(task.task_dir) / "trial.log" if task.task_dir else None
    if log is None or not log.is_file():
        note = f"cached: outputs of {task.cached_from}" if task.cached_from else task.state
        return out + f"(no log: {note})\n".encode()
    return out + log.read_bytes()


def run_api_object(record: RunRecord, tasks: builtins.list[TaskRecord]) -> dict[str, Any]:
    """The run object (``pipelines.objects.run_object``, RFC 3339 times) with KFP's name
    for its arguments (``spec.runtimeConfig.parameters``)."""
    from pipelines.objects import run_object

    obj = run_object(record, tasks)
    obj["apiVersion"] = API_VERSION
    obj["spec"]["runtimeConfig"] = {"parameters": record.arguments}
    return obj
