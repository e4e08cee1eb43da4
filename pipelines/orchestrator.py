"""Run a compiled PipelineSpec: the DAG, its control flow, caching, retries, resume.

One thread drives the run (:meth:`Orchestrator.run`): it starts every task whose upstream
tasks are done, up to ``parallelism`` leaf tasks at once (and within the CPUs tasks ask
for with ``set_cpu_request``/``set_cpu_limit``), then waits for one to end. Semantics
follow KFP's driver:

* a task runs when all its ``dependentTasks`` are done; if one of them failed (or was
  skipped because something before it failed) it is SKIPPED, unless its trigger strategy
  is ``ALL_UPSTREAM_TASKS_COMPLETED`` (``ignore_upstream_failure``, exit handlers);
  independent tasks keep running;
* ``triggerPolicy.condition`` (``dsl.If/Elif/Else``) is evaluated on the task's resolved
  inputs (:mod:`pipelines.cel`); false: SKIPPED;
* a DAG component (nested pipeline, condition or exit-handler group) runs as a child
  scope; with a ``parameterIterator``/``artifactIterator`` (``dsl.ParallelFor``) once per
  item, at most ``iteratorPolicy.parallelismLimit`` at once; its outputs are then lists
  in item order (``dsl.Collected``); ``valueFromOneof`` and several artifact selectors
  (``dsl.OneOf``) take the branch that produced a value;
* ``taskFinalStatus`` inputs (``dsl.PipelineTaskFinalStatus``) get the producer's state;
* ``retryPolicy`` retries a failed task with its backoff; ``cachingOptions`` and the
  run's cache switch decide whether a task may reuse the outputs of an earlier
  execution with the same cache key (component, input values, input artifact contents,
  environment).

Leaf tasks: lightweight Python components run from their source in warm worker processes
(:mod:`pipelines._lightweight`), other container components as local processes
(the image is recorded, not pulled), importers in-process.

Every state change is committed to the store before the orchestrator acts on it; a run
started again after its process died restores the tasks that had finished (their
outputs come from the store) and runs again the ones that were running.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines import cel, executor_io
from pipelines.cache import cache_key
from pipelines.spec import (
    PipelineError,
    cpu_amount,
    default_value,
    lightweight,
    missing_packages,
)
from pipelines.store import TASK_DONE, PipelineStore, RunRecord, TaskRecord
from tuner.backends.base import TrialBackend, TrialExit, TrialRun

if TYPE_CHECKING:
    from pipelines.tracking import PipelineTracker

ALL_COMPLETED = "ALL_UPSTREAM_TASKS_COMPLETED"
_PLACEHOLDER = re.compile(r"\{\{\$\.inputs\.parameters\['([^']+)'\]\}\}")
_SELECTOR_KEY = re.compile(r'\[\s*"((?:\\.|[^"\\])*)"\s*\]')

Outputs = executor_io.Outputs
Observer = Callable[["Node"], None]


def _empty() -> Outputs:
    return {"parameters": {}, "artifacts": {}}


@dataclass(eq=False)
class Scope:
    """One execution of a DAG component: the root, a sub-DAG, or one loop iteration."""

    path: str
    component: dict[str, Any]
    params: dict[str, Any]
    artifacts: dict[str, list[dict[str, Any]]]
    owner: Node | None
    nodes: dict[str, Node] = field(default_factory=dict)
    done: bool = False


@dataclass(eq=False)
class Node:
    """One task of a scope, as executed in this run."""

    scope: Scope
    name: str
    path: str
    task: dict[str, Any]
    component_name: str
    component: dict[str, Any]
    kind: str  # container | importer | dag | loop | iteration
    state: str = "PENDING"
    message: str = ""
    # Failed, or skipped because something upstream failed: downstream tasks skip too.
    failed: bool = False
    outputs: Outputs = field(default_factory=_empty)
    inputs: Outputs = field(default_factory=_empty)
    attempts: int = 0
    not_before: float = 0.0
    queued: bool = False
    cached: bool = False
    cached_from: str | None = None
    cache_key: str | None = None
    cpu: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    child: Scope | None = None
    # Loops: the items, iteration scopes started so far, at most ``limit`` running.
    items: list[Any] | None = None
    iterations: list[Scope] = field(default_factory=list)
    limit: int = 0
    trial: str | None = None  # the backend's name for the running attempt
    backend: TrialBackend | None = None
    executor_input: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.state in TASK_DONE

    @property
    def task_dir_name(self) -> str:
        return self.path


class Detached(Exception):
    """The run was detached (its process is going away): nothing was recorded as final."""


class Orchestrator:
    def __init__(
        self,
        *,
        store: PipelineStore,
        run: RunRecord,
        function_backend: Any,
        process_backend: TrialBackend,
        tracker: PipelineTracker | None = None,
        observer: Observer | None = None,
        cpu_capacity: float | None = None,
        task_env: dict[str, str] | None = None,
        import_paths: list[str] | None = None,
    ) -> None:
        self.store = store
        self.run_record = run
        self.spec = run.spec
        self.components: dict[str, Any] = self.spec.get("components", {})
        self.executors: dict[str, Any] = self.spec.get("deploymentSpec", {}).get("executors", {})
        self.parallelism = max(1, run.parallelism)
        self.cache_enabled = run.cache
        self.root_dir = Path(run.pipeline_root)
        self.functions = function_backend
        self.processes = process_backend
        self.tracker = tracker
        self.observer = observer
        self.cpu_capacity = cpu_capacity if cpu_capacity is not None else float(os.cpu_count() or 1)
        # The run's settings (home, store, MLflow) for tasks that use hyperflow themselves.
        self.task_env = dict(task_env or {})
        # Folders tasks import from (the pipeline file's, as for a script).
        self.import_paths = list(import_paths or [])
        self.previous: dict[str, TaskRecord] = {t.path: t for t in store.tasks(run.uid)}
        self.scopes: list[Scope] = []
        self.running: list[Node] = []
        self.nodes: list[Node] = []  # every node, in creation order (for views)
        self._stop = False
        self._detach = False
        # Set once run() has returned: a Ctrl-C then only cuts the bookkeeping short.
        self.finished = False
        self.root: Scope | None = None

    # -- the loop --------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the run to stop: running tasks are killed and end CANCELED (any thread)."""
        self._stop = True

    def detach(self) -> None:
        """Leave the run as the store has it (RUNNING), for a later start to resume, as
        if this process had died: running tasks are killed, their states not touched
        (a resume runs them again); ``run`` raises :class:`Detached` (any thread)."""
        self._detach = True

    def run(self, arguments: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        """Run to the end: (state, message, outputs)."""
        try:
            return self._run(arguments)
        finally:
            self.finished = True

    def _run(self, arguments: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        root = self._scope("", self.spec["root"], arguments, {}, None)
        self.root = root
        while True:
            if self._detach:
                self._abandon()
            if self._stop:
                return self._cancel()
            while self._advance():
                pass
            if root.done:
                break
            if not self.running and not any(n.queued for n in self.nodes):
                raise RuntimeError("pipeline run stalled: no task can start (a bug)")
            self._wait()
            self._collect()
        failed = [n for n in root.nodes.values() if n.failed]
        if failed:
            return "FAILED", self._failure_message(), {}
        try:
            outputs = self._dag_outputs(root)
        except PipelineError as exc:
            return "FAILED", str(exc), {}
        return "SUCCEEDED", "", _plain_outputs(outputs)

    def _failure_message(self) -> str:
        leaves = [
            n for n in self.nodes if n.state == "FAILED" and n.kind in ("container", "importer")
        ]
        if not leaves:
            leaves = [n for n in self.nodes if n.state == "FAILED"]
        if not leaves:
            return "a task failed"
        first = leaves[0]
        more = f" (and {len(leaves) - 1} more)" if len(leaves) > 1 else ""
        return f"task {first.path} failed: {first.message}{more}"

    def _cancel(self) -> tuple[str, str, dict[str, Any]]:
        for node in list(self.running):
            if node.backend is not None and node.trial is not None:
                node.backend.kill(node.trial)
                with contextlib.suppress(Exception):
                    node.backend.release(node.trial)
            self._finish(node, "CANCELED", "the run was stopped")
        self.running.clear()
        for node in self.nodes:
            if not node.done and node.state == "RUNNING":
                self._finish(node, "CANCELED", "the run was stopped")
        return "CANCELED", "the run was stopped", {}

    def _abandon(self) -> None:
        for node in list(self.running):
            if node.backend is not None and node.trial is not None:
                with contextlib.suppress(Exception):
                    node.backend.kill(node.trial)
                    node.backend.release(node.trial)
        self.running.clear()
        raise Detached(f"pipeline run {self.run_record.name} detached")

    def _advance(self) -> bool:
        """Start whatever can start; True if anything changed."""
        changed = False
        for scope in list(self.scopes):
            if scope.done:
                continue
            for node in list(scope.nodes.values()):
                if node.state == "PENDING" and not node.queued and self._ready(node):
                    self._decide(node)
                    changed = True
                elif node.kind == "loop" and node.state == "RUNNING":
                    changed |= self._start_iterations(node)
            if all(n.done for n in scope.nodes.values()):
                self._complete_scope(scope)
                changed = True
        changed |= self._launch_queued()
        return changed

    def _ready(self, node: Node) -> bool:
        deps = node.task.get("dependentTasks", [])
        return all(node.scope.nodes[d].done for d in deps if d in node.scope.nodes)

    def _wait(self) -> None:
        if self._stop or self._detach:
            return
        timeout = 1.0
        waiting = [n.not_before for n in self.nodes if n.queued and n.not_before > time.time()]
        if waiting:
            timeout = max(0.0, min(timeout, min(waiting) - time.time()))
        if any(n.backend is self.processes for n in self.running):
            timeout = min(timeout, 0.05)
        if any(n.backend is self.functions for n in self.running):
            self.functions.wait(timeout)
        elif timeout > 0:
            time.sleep(timeout)

    def _collect(self) -> None:
        for node in list(self.running):
            assert node.backend is not None and node.trial is not None
            exit = node.backend.poll(node.trial)
            if exit is None:
                continue
            node.backend.collect(node.trial)
            node.backend.release(node.trial)
            self.running.remove(node)
            self._attempt_ended(node, exit)

    # -- deciding what a ready task does -------------------------------------------------------

    def _decide(self, node: Node) -> None:
        previous = self.previous.get(node.path)
        if previous is not None and previous.state in TASK_DONE:
            self._restore(node, previous)
            return
        strategy = node.task.get("triggerPolicy", {}).get("strategy")
        failed = [
            d
            for d in node.task.get("dependentTasks", [])
            if d in node.scope.nodes and node.scope.nodes[d].failed
        ]
        if failed and strategy != ALL_COMPLETED:
            self._finish(node, "SKIPPED", f"upstream task {failed[0]} failed", failed=True)
            return
        try:
            node.inputs = self._resolve_inputs(node)
        except PipelineError as exc:
            self._finish(node, "FAILED", str(exc), failed=True)
            return
        condition = node.task.get("triggerPolicy", {}).get("condition")
        if condition:
            try:
                go = cel.evaluate(condition, node.inputs["parameters"])
            except cel.ConditionError as exc:
                self._finish(node, "FAILED", f"condition {condition!r}: {exc}", failed=True)
                return
            if not go:
                self._finish(node, "SKIPPED", f"condition is false: {condition}")
                return
        if node.kind == "dag":
            node.started_at = time.time()
            node.state = "RUNNING"
            self._save(node)
            params, artifacts = self._dag_inputs(node, node.inputs)
            node.child = self._scope(node.path, node.component, params, artifacts, node)
        elif node.kind == "loop":
            self._start_loop(node)
        elif node.kind == "importer":
            self._run_importer(node)
        else:
            self._prepare_container(node)

    def _restore(self, node: Node, previous: TaskRecord) -> None:
        node.state = previous.state
        node.message = previous.message
        node.outputs = previous.outputs or _empty()
        node.inputs = previous.inputs or _empty()
        node.cached = previous.state == "CACHED"
        node.cached_from = previous.cached_from
        node.started_at, node.finished_at = previous.started_at, previous.finished_at
        node.failed = previous.state == "FAILED" or bool(
            (previous.details or {}).get("upstream_failed")
        )
        node.details = dict(previous.details or {})
        node.details["restored"] = True
        if (
            self.tracker is not None
            and node.kind == "container"
            and (previous.attempts > 0 or node.cached)
            and previous.state in ("SUCCEEDED", "FAILED", "CANCELED", "CACHED")
        ):
            # Sent again, with its own times: the process that ran it may have died before
            # its tracker wrote the task's run (or its end). The writer finds the run by its
            # tag and leaves a complete one alone.
            self._track_start(node, previous.started_at)
            self._track_end(node, previous.state, previous.attempts, previous.finished_at)
        self._notify(node)

    # -- inputs ----------------------------------------------------------------------------

    def _resolve_inputs(self, node: Node) -> Outputs:
        scope = node.scope
        spec_inputs = node.task.get("inputs", {})
        definitions = node.component.get("inputDefinitions", {}).get("parameters", {})
        params: dict[str, Any] = {}
        for name, source in spec_inputs.get("parameters", {}).items():
            where = f"task {node.path}: input {name}"
            if "runtimeValue" in source:
                params[name] = source["runtimeValue"].get("constant")
            elif "componentInputParameter" in source:
                key = source["componentInputParameter"]
                if key not in scope.params:
                    if _has_fallback(definitions.get(name)):
                        continue
                    raise PipelineError(f"{where}: the enclosing pipeline has no value for {key}")
                value = scope.params[key]
                selector = source.get("parameterExpressionSelector")
                if selector:
                    value = _select(value, selector, where)
                params[name] = value
            elif "taskOutputParameter" in source:
                ref = source["taskOutputParameter"]
                producer = scope.nodes.get(ref["producerTask"])
                key = ref["outputParameterKey"]
                if producer is None or key not in producer.outputs["parameters"]:
                    if _has_fallback(definitions.get(name)):
                        continue  # the component's default (ignore_upstream_failure)
                    state = producer.state if producer else "missing"
                    raise PipelineError(
                        f"{where}: task {ref['producerTask']} ({state}) produced no output {key}"
                    )
                params[name] = producer.outputs["parameters"][key]
            elif "taskFinalStatus" in source:
                producer_name = source["taskFinalStatus"]["producerTask"]
                params[name] = self._final_status(scope.nodes.get(producer_name), producer_name)
            else:
                raise PipelineError(f"{where}: unsupported input source {sorted(source)}")
            params[name] = executor_io.typed(params[name], definitions.get(name))
        runtime = self._runtime_constants(node)
        for name, source in spec_inputs.get("parameters", {}).items():
            constant = source.get("runtimeValue", {}).get("constant")
            if isinstance(constant, str | dict | list) and "{{$." in json.dumps(constant):
                # Pipeline channels in f-strings, dicts and lists (the channels are inputs of
                # this task), and KFP's run placeholders (dsl.PIPELINE_JOB_NAME_PLACEHOLDER...).
                params[name] = _fill(constant, params, runtime, top=True)
        artifact_definitions = node.component.get("inputDefinitions", {}).get("artifacts", {})
        artifacts: dict[str, list[dict[str, Any]]] = {}
        for name, source in spec_inputs.get("artifacts", {}).items():
            where = f"task {node.path}: input artifact {name}"
            if "componentInputArtifact" in source:
                key = source["componentInputArtifact"]
                if key in scope.artifacts:
                    artifacts[name] = scope.artifacts[key]
                elif not artifact_definitions.get(name, {}).get("isOptional"):
                    raise PipelineError(f"{where}: the enclosing pipeline has no artifact {key}")
            elif "taskOutputArtifact" in source:
                ref = source["taskOutputArtifact"]
                producer = scope.nodes.get(ref["producerTask"])
                key = ref["outputArtifactKey"]
                if producer is None or key not in producer.outputs["artifacts"]:
                    if artifact_definitions.get(name, {}).get("isOptional"):
                        continue
                    state = producer.state if producer else "missing"
                    raise PipelineError(
                        f"{where}: task {ref['producerTask']} ({state}) produced no artifact {key}"
                    )
                artifacts[name] = producer.outputs["artifacts"][key]
            else:
                raise PipelineError(f"{where}: unsupported artifact source {sorted(source)}")
        return {"parameters": params, "artifacts": artifacts}

    def _runtime_constants(self, node: Node) -> dict[str, str]:
        """KFP's run and task placeholders (``dsl.PIPELINE_*_PLACEHOLDER``), by name."""
        record = self.run_record
        created = datetime.datetime.fromtimestamp(record.created_at, datetime.UTC)
        created_text = created.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return {
            "pipeline_job_name": record.name,
            "pipeline_job_resource_name": record.name,
            "pipeline_job_uuid": record.uid,
            "pipeline_task_name": node.name,
            # one id per task of the run, the same when a resumed run redoes it
            "pipeline_task_uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{record.uid}/{node.path}")),
            "pipeline_job_create_time_utc": created_text,
            "pipeline_job_schedule_time_utc": created_text,  # a run not from a schedule
            "pipeline_root": str(self.root_dir),
        }

    def _final_status(self, producer: Node | None, name: str) -> dict[str, Any]:
        state = "SUCCEEDED"
        error: dict[str, Any] = {}
        if producer is not None and producer.failed:
            state = "FAILED"
            error = {"code": 1, "message": self._first_failure(producer)}
        elif producer is not None and producer.state == "CANCELED":
            state = "CANCELED"
        return {
            "state": state,
            "pipelineJobResourceName": self.run_record.name,
            "pipelineTaskName": name,
            "error": error,
        }

    def _first_failure(self, node: Node) -> str:
        prefix = node.path + "/"
        for other in self.nodes:
            if (
                other.state == "FAILED"
                and other.path.startswith(prefix)
                and other.kind
                in (
                    "container",
                    "importer",
                )
            ):
                return f"task {other.path} failed: {other.message}"
        return f"task {node.path} failed: {node.message}"

    def _dag_inputs(
        self, node: Node, inputs: Outputs
    ) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
        params = dict(inputs["parameters"])
        for name, definition in (
            node.component.get("inputDefinitions", {}).get("parameters", {}).items()
        ):
            if name not in params:
                has_default, value = default_value(definition)
                if has_default:
                    params[name] = value
        return params, dict(inputs["artifacts"])

    # -- scopes and DAG outputs ------------------------------------------------------------

    def _scope(
        self,
        path: str,
        component: dict[str, Any],
        params: dict[str, Any],
        artifacts: dict[str, list[dict[str, Any]]],
        owner: Node | None,
    ) -> Scope:
        scope = Scope(path, component, params, artifacts, owner)
        for name, task in component.get("dag", {}).get("tasks", {}).items():
            component_name = task.get("componentRef", {}).get("name", "")
            child_component = self.components.get(component_name)
            node_path = f"{path}/{name}" if path else name
            if child_component is None:
                raise PipelineError(f"task {node_path}: no component {component_name!r}")
            if "dag" in child_component:
                iterating = "parameterIterator" in task or "artifactIterator" in task
                kind = "loop" if iterating else "dag"
            else:
                executor = self.executors.get(child_component.get("executorLabel", ""), {})
                kind = "importer" if "importer" in executor else "container"
            node = Node(scope, name, node_path, task, component_name, child_component, kind)
            scope.nodes[name] = node
            self.nodes.append(node)
        _check_acyclic(scope, path)
        self.scopes.append(scope)
        return scope

    def _complete_scope(self, scope: Scope) -> None:
        scope.done = True
        owner = scope.owner
        if owner is None:
            return
        failed = any(n.failed for n in scope.nodes.values())
        if owner.kind == "iteration":
            self._iteration_done(owner, scope, failed)
            return
        if failed:
            self._finish(owner, "FAILED", self._first_failure(owner), failed=True)
            return
        try:
            owner.outputs = self._dag_outputs(scope)
        except PipelineError as exc:
            self._finish(owner, "FAILED", str(exc), failed=True)
            return
        self._finish(owner, "SUCCEEDED", "")

    def _dag_outputs(self, scope: Scope) -> Outputs:
        outputs_spec = scope.component.get("dag", {}).get("outputs", {})
        where = scope.path or "the pipeline"
        params: dict[str, Any] = {}
        for name, selector in outputs_spec.get("parameters", {}).items():
            if "valueFromParameter" in selector:
                candidates = [selector["valueFromParameter"]]
            else:
                candidates = selector.get("valueFromOneof", {}).get("parameterSelectors", [])
            found = [
                scope.nodes[c["producerSubtask"]].outputs["parameters"][c["outputParameterKey"]]
                for c in candidates
                if c["producerSubtask"] in scope.nodes
                and c["outputParameterKey"]
                in scope.nodes[c["producerSubtask"]].outputs["parameters"]
            ]
            if not found:
                if "valueFromOneof" in selector:
                    raise PipelineError(
                        f"{where}: no branch of dsl.OneOf output {name} produced a value"
                    )
                continue  # e.g. produced inside a branch that did not run
            params[name] = found[0]
        artifacts: dict[str, list[dict[str, Any]]] = {}
        for name, selector in outputs_spec.get("artifacts", {}).items():
            chosen = [
                scope.nodes[c["producerSubtask"]].outputs["artifacts"][c["outputArtifactKey"]]
                for c in selector.get("artifactSelectors", [])
                if c["producerSubtask"] in scope.nodes
                and c["outputArtifactKey"] in scope.nodes[c["producerSubtask"]].outputs["artifacts"]
            ]
            if not chosen:
                if len(selector.get("artifactSelectors", [])) > 1:
                    raise PipelineError(
                        f"{where}: no branch of dsl.OneOf output {name} produced an artifact"
                    )
                continue
            artifacts[name] = chosen[0]
        return {"parameters": params, "artifacts": artifacts}

    # -- loops -------------------------------------------------------------------------------

    def _start_loop(self, node: Node) -> None:
        task = node.task
        where = f"task {node.path}"
        params = node.inputs["parameters"]
        items: Any
        if "parameterIterator" in task:
            iterator = task["parameterIterator"]
            source = iterator.get("items", {})
            if "raw" in source:
                try:
                    items = json.loads(source["raw"])
                except json.JSONDecodeError as exc:
                    self._finish(node, "FAILED", f"{where}: loop items: {exc}", failed=True)
                    return
            else:
                items = params.get(source.get("inputParameter", ""))
                if isinstance(items, str):
                    with contextlib.suppress(json.JSONDecodeError):
                        items = json.loads(items)
        else:
            iterator = task["artifactIterator"]
            items = node.inputs["artifacts"].get(iterator.get("items", {}).get("inputArtifact"))
        if not isinstance(items, list):
            self._finish(
                node, "FAILED", f"{where}: ParallelFor items are not a list: {items!r}", failed=True
            )
            return
        node.items = items
        node.limit = int(task.get("iteratorPolicy", {}).get("parallelismLimit", 0) or 0)
        node.started_at = time.time()
        node.state = "RUNNING"
        node.details["items"] = len(items)
        self._save(node)
        self._start_iterations(node)

    def _start_iterations(self, node: Node) -> bool:
        assert node.items is not None
        started = False
        while len(node.iterations) < len(node.items):
            active = sum(1 for s in node.iterations if not s.done)
            if node.limit and active >= node.limit:
                break
            index = len(node.iterations)
            item = node.items[index]
            path = f"{node.path}/iteration-{index}"
            iteration = Node(
                node.scope, f"iteration-{index}", path, {}, node.component_name, {}, "iteration"
            )
            iteration.state = "RUNNING"
            iteration.started_at = time.time()
            iteration.details["item"] = index
            self.nodes.append(iteration)
            params, artifacts = self._dag_inputs(node, node.inputs)
            if "parameterIterator" in node.task:
                params[node.task["parameterIterator"]["itemInput"]] = item
            else:
                artifacts[node.task["artifactIterator"]["itemInput"]] = [item]
            previous = self.previous.get(path)
            if previous is not None and previous.state in TASK_DONE:
                self._restore(iteration, previous)
                scope = Scope(path, node.component, params, artifacts, iteration, done=True)
                scope.nodes = {}
                node.iterations.append(scope)
                started = True
                continue
            self._save(iteration)
            scope = self._scope(path, node.component, params, artifacts, iteration)
            node.iterations.append(scope)
            started = True
        if (
            node.state == "RUNNING"
            and len(node.iterations) == len(node.items)
            and all(s.done for s in node.iterations)
        ):
            self._loop_done(node)
            started = True
        return started

    def _iteration_done(self, iteration: Node, scope: Scope, failed: bool) -> None:
        if failed:
            self._finish(iteration, "FAILED", self._first_failure(iteration), failed=True)
        else:
            try:
                iteration.outputs = self._dag_outputs(scope)
            except PipelineError as exc:
                self._finish(iteration, "FAILED", str(exc), failed=True)
            else:
                self._finish(iteration, "SUCCEEDED", "")
        # The loop itself completes in _advance (_start_iterations) once all are done.

    def _loop_done(self, loop: Node) -> None:
        iterations = [s.owner for s in loop.iterations]
        if any(i is not None and i.failed for i in iterations):
            self._finish(loop, "FAILED", self._first_failure(loop), failed=True)
            return
        definitions = loop.component.get("outputDefinitions", {})
        params: dict[str, Any] = {name: [] for name in definitions.get("parameters", {})}
        artifacts: dict[str, list[dict[str, Any]]] = {
            name: [] for name in definitions.get("artifacts", {})
        }
        for iteration in iterations:
            assert iteration is not None
            for name, value in iteration.outputs["parameters"].items():
                params.setdefault(name, []).append(value)
            for name, value in iteration.outputs["artifacts"].items():
                artifacts.setdefault(name, []).extend(value)
        loop.outputs = {"parameters": params, "artifacts": artifacts}
        self._finish(loop, "SUCCEEDED", "")

    # -- leaf tasks ----------------------------------------------------------------------------

    def _executor(self, node: Node) -> dict[str, Any]:
        label = node.component.get("executorLabel", "")
        executor = self.executors.get(label)
        if executor is None:
            raise PipelineError(f"task {node.path}: no executor {label!r} in deploymentSpec")
        return dict(executor)

    def _task_dir(self, node: Node) -> Path:
        # Task names are checked at load (pipelines.spec); here too, before any rmtree.
        task_dir = self.root_dir / node.path
        if not task_dir.resolve().is_relative_to(self.root_dir.resolve()):
            raise PipelineError(f"task {node.path!r} is outside the run's folder")
        return task_dir

    def _run_importer(self, node: Node) -> None:
        node.started_at = time.time()
        try:
            importer = self._executor(node)["importer"]
            uri_spec = importer.get("artifactUri", {})
            if "constant" in uri_spec:
                uri = uri_spec["constant"]
            else:
                uri = node.inputs["parameters"].get(uri_spec.get("runtimeParameter", ""))
            if not isinstance(uri, str) or not uri:
                raise PipelineError(f"task {node.path}: importer has no artifact URI")
            if uri.startswith("file://"):
                uri = uri[len("file://") :]
            metadata = _resolve_metadata(importer.get("metadata") or {}, node.inputs["parameters"])
            artifact = {
                "name": "artifact",
                "uri": uri,
                "type": importer.get("typeSchema", {}),
                "metadata": metadata,
            }
            node.outputs = {"parameters": {}, "artifacts": {"artifact": [artifact]}}
        except PipelineError as exc:
            self._finish(node, "FAILED", str(exc), failed=True)
            return
        self._finish(node, "SUCCEEDED", "")

    def _prepare_container(self, node: Node) -> None:
        try:
            executor = self._executor(node)
            container = executor.get("container")
            if container is None:
                raise PipelineError(
                    f"task {node.path}: executor of unknown kind {sorted(executor)}"
                )
            node.cpu = cpu_amount(container)
        except PipelineError as exc:
            self._finish(node, "FAILED", str(exc), failed=True)
            return
        node.details = {
            "image": container.get("image", ""),
            "resources": container.get("resources") or {},
        }
        light = lightweight(container)
        if light is not None:
            missing = missing_packages(light.packages)
            if missing:
                message = (
                    f"task {node.path}: packages_to_install not installed in this environment: "
                    f"{', '.join(missing)} (hyperflow runs components in its own environment "
                    "and installs nothing at run time: pip install them first)"
                )
                self._finish(node, "FAILED", message, failed=True)
                return
        enabled = node.task.get("cachingOptions", {}).get("enableCache", False)
        if self.cache_enabled and enabled:
            custom = node.task.get("cachingOptions", {}).get("cacheKey")
            node.cache_key = cache_key(node.component, container, node.inputs, custom)
            if self._reuse(node):
                return
        node.queued = True

    def _launch_queued(self) -> bool:
        changed = False
        now = time.time()
        for node in self.nodes:
            if not node.queued or node.not_before > now:
                continue
            if len(self.running) >= self.parallelism:
                break
            used = sum(n.cpu for n in self.running)
            if self.running and used + node.cpu > self.cpu_capacity:
                continue
            node.queued = False
            self._launch(node)
            changed = True
        return changed

    def _launch(self, node: Node) -> None:
        container = self._executor(node)["container"]
        task_dir = self._task_dir(node)
        for sub in ("outputs", "artifacts"):
            shutil.rmtree(task_dir / sub, ignore_errors=True)
        (task_dir / "outputs").mkdir(parents=True, exist_ok=True)
        (task_dir / "artifacts").mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            (task_dir / "executor_output.json").unlink()
        node.attempts += 1
        try:
            executor_input = executor_io.executor_input(
                node.component, node.inputs, task_dir, f"task {node.path}"
            )
        except PipelineError as exc:
            self._finish(node, "FAILED", str(exc), failed=True)
            return
        node.executor_input = executor_input
        env = {
            **self.task_env,
            **{e["name"]: str(e.get("value", "")) for e in container.get("env", [])},
        }
        node.trial = f"{self.run_record.uid}:{node.path}:{node.attempts}"
        light = lightweight(container)
        if node.started_at is None:
            node.started_at = time.time()
        node.state = "RUNNING"
        self._save(node)
        if self.tracker is not None and node.attempts == 1:
            self._track_start(node)
        if light is not None:
            env["_KFP_RUNTIME"] = "true"
            run = TrialRun(
                experiment_name=self.run_record.name,
                trial_name=node.trial,
                command=None,
                env=env,
                cwd=task_dir,
                trial_dir=task_dir,
                assignments={
                    "executor_input": json.dumps(executor_input),
                    "source": light.source,
                    "function": light.function,
                    "task_dir": str(task_dir),
                    "paths": os.pathsep.join(self.import_paths),
                },
            )
            node.backend = self.functions
        else:
            from kfp.local import placeholder_utils

            command = [*container.get("command", []), *container.get("args", [])]
            try:
                argv = placeholder_utils.replace_placeholders(
                    full_command=command,
                    executor_input_dict=executor_input,
                    pipeline_resource_name=self.run_record.name,
                    task_resource_name=node.name,
                    pipeline_root=str(self.root_dir),
                    unique_pipeline_id=self.run_record.uid,
                )
            except Exception as exc:
                self._finish(node, "FAILED", f"task {node.path}: placeholders: {exc}", failed=True)
                return
            if not argv:
                image = container.get("image", "?")
                self._finish(
                    node,
                    "FAILED",
                    f"task {node.path}: the container has no command: hyperflow runs a "
                    f"container component's command and args on this machine, not image "
                    f"{image}'s own entrypoint",
                    failed=True,
                )
                return
            if self.import_paths:
                inherited = env.get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
                env["PYTHONPATH"] = os.pathsep.join([*self.import_paths, inherited]).rstrip(
                    os.pathsep
                )
            run = TrialRun(
                experiment_name=self.run_record.name,
                trial_name=node.trial,
                command=argv,
                env=env,
                cwd=task_dir,
                trial_dir=task_dir,
                assignments={},
            )
            node.backend = self.processes
        self.running.append(node)
        node.backend.launch(run)

    def _attempt_ended(self, node: Node, exit: TrialExit) -> None:
        if exit.succeeded:
            try:
                assert node.executor_input is not None
                node.outputs = executor_io.read_outputs(
                    node.component, node.executor_input, f"task {node.path}"
                )
            except PipelineError as exc:
                self._finish(node, "FAILED", str(exc), failed=True)
                return
            self._finish(node, "SUCCEEDED", "")
            return
        message = exit.message
        policy = node.task.get("retryPolicy", {})
        retries = int(policy.get("maxRetryCount", 0) or 0)
        if node.attempts <= retries and not self._stop:
            backoff = _seconds(policy.get("backoffDuration", "0s"))
            factor = float(policy.get("backoffFactor", 0) or 2.0)
            cap = _seconds(policy.get("backoffMaxDuration", "3600s")) or 3600.0
            delay = min(backoff * factor ** (node.attempts - 1), cap)
            node.not_before = time.time() + delay
            node.queued = True
            node.message = f"attempt {node.attempts} failed: {message}; retrying"
            self._save(node)
            self._notify(node)
            return
        self._finish(node, "FAILED", message, failed=True)

    # -- caching ---------------------------------------------------------------------------

    def _reuse(self, node: Node) -> bool:
        assert node.cache_key is not None
        for run, task in self.store.cached_tasks(node.cache_key, self.run_record.namespace):
            outputs = task.outputs or _empty()
            present = all(
                os.path.exists(a["uri"])
                for items in outputs.get("artifacts", {}).values()
                for a in items
                if a.get("type", {}).get("schemaTitle") not in executor_io.METRIC_LIKE
            )
            if not present:
                continue
            node.outputs = outputs
            node.cached = True
            node.cached_from = f"{run.name}/{task.path}"
            node.started_at = time.time()
            if self.tracker is not None:
                self._track_start(node)
            self._finish(node, "CACHED", f"outputs of {node.cached_from}")
            return True
        return False

    # -- state changes -------------------------------------------------------------------------

    def _finish(self, node: Node, state: str, message: str, *, failed: bool = False) -> None:
        node.state = state
        node.message = message
        # A FAILED task always fails its scope (its downstream tasks are skipped, the run
        # fails); a SKIPPED one only when it was skipped for an upstream failure.
        node.failed = failed or state == "FAILED"
        node.queued = False
        node.finished_at = time.time()
        if node.started_at is None and state not in ("SKIPPED",):
            node.started_at = node.finished_at
        if failed and state == "SKIPPED":
            node.details["upstream_failed"] = True
        self._save(node)
        if (
            self.tracker is not None
            and node.kind == "container"
            and (node.attempts > 0 or node.cached)
        ):
            self._track_end(node, state, node.attempts)
        self._notify(node)

    def _track_start(self, node: Node, started_at: float | None = None) -> None:
        """The task's MLflow run (its inputs; a cache hit tagged so)."""
        assert self.tracker is not None
        self.tracker.task_started(
            node.path,
            node.component_name,
            node.inputs["parameters"],
            node.inputs["artifacts"],
            cached=node.cached,
            started_at=started_at,
        )

    def _track_end(
        self, node: Node, state: str, attempts: int, ended_at: float | None = None
    ) -> None:
        """The task's MLflow run ended (its outputs; its log when it ran)."""
        assert self.tracker is not None
        self.tracker.task_finished(
            node.path,
            state,
            node.outputs["artifacts"],
            self._task_dir(node) if attempts > 0 else None,
            node.outputs.get("parameters") or {},
            ended_at=ended_at,
        )

    def _save(self, node: Node) -> None:
        self.store.save_task(
            self.run_record.uid,
            node.path,
            name=node.name,
            parent=node.scope.path if node.kind != "iteration" else node.path.rsplit("/", 1)[0],
            kind=node.kind,
            component=node.component_name,
            state=node.state,
            message=node.message,
            attempts=node.attempts,
            cache_key=node.cache_key,
            cached_from=node.cached_from,
            inputs=_plain_outputs(node.inputs),
            outputs=_plain_outputs(node.outputs) if node.done else None,
            details=node.details,
            task_dir=str(self._task_dir(node)) if node.kind == "container" else "",
            started_at=node.started_at,
            finished_at=node.finished_at if node.done else None,
        )
        self._notify(node)

    def _notify(self, node: Node) -> None:
        if self.observer is not None:
            self.observer(node)


# -- helpers ---------------------------------------------------------------------------------


def _has_fallback(definition: dict[str, Any] | None) -> bool:
    return definition is not None and (
        "defaultValue" in definition or bool(definition.get("isOptional"))
    )


def _select(value: Any, selector: str, where: str) -> Any:
    """``parseJson(string_value)["a"]["b"]`` on a loop item (a dict, or its JSON text)."""
    if isinstance(value, str) and selector.startswith("parseJson"):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise PipelineError(f"{where}: {value!r} is not JSON ({selector})") from None
    for key in _SELECTOR_KEY.findall(selector):
        if not isinstance(value, dict) or key not in value:
            raise PipelineError(f"{where}: loop item {value!r} has no field {key!r}")
        value = value[key]
    return value


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


_RUNTIME = re.compile(r"\{\{\$\.([a-z_]+)\}\}")


def _fill(value: Any, params: dict[str, Any], runtime: dict[str, str], *, top: bool) -> Any:
    """A constant input with its placeholders replaced: a string that is one channel inside
    a dict or list becomes the channel's value (a number stays a number); a placeholder
    within text, or a top-level string input, becomes text."""
    if isinstance(value, dict):
        return {k: _fill(v, params, runtime, top=False) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, params, runtime, top=False) for v in value]
    if not isinstance(value, str):
        return value
    whole = _PLACEHOLDER.fullmatch(value)
    if whole and not top:
        return params.get(whole[1])
    text = _PLACEHOLDER.sub(lambda m: _as_text(params.get(m[1])), value)
    return _RUNTIME.sub(lambda m: runtime.get(m[1], m[0]), text)


def _resolve_metadata(metadata: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    pattern = _PLACEHOLDER

    def resolve(value: Any) -> Any:
        if isinstance(value, str):
            whole = pattern.fullmatch(value)
            if whole:
                return params.get(whole[1])
            return pattern.sub(lambda m: str(params.get(m[1], "")), value)
        if isinstance(value, dict):
            return {resolve(k): resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return value

    resolved: dict[str, Any] = resolve(metadata)
    return resolved


def _seconds(duration: Any) -> float:
    if isinstance(duration, int | float):
        return float(duration)
    text = str(duration).strip()
    if text.endswith("s"):
        text = text[:-1]
    try:
        return float(text)
    except ValueError:
        return 0.0


def _plain_outputs(outputs: Outputs) -> dict[str, Any]:
    return json.loads(json.dumps(outputs, default=str))


def _check_acyclic(scope: Scope, path: str) -> None:
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = " -> ".join([*trail[trail.index(name) :], name])
            raise PipelineError(
                f"{path or 'pipeline'}: tasks depend on each other in a cycle: {cycle}"
            )
        state[name] = 1
        node = scope.nodes[name]
        for dep in node.task.get("dependentTasks", []):
            if dep not in scope.nodes:
                raise PipelineError(f"task {node.path} depends on unknown task {dep}")
            visit(dep, [*trail, name])
        state[name] = 2

    for name in scope.nodes:
        visit(name, [])
