"""Pipeline runs owned by the control plane: each runs in a thread of the server.

A run submitted through the API (``POST .../pipelineruns``) is stored first (state
PENDING, ``source`` starting with ``api``) and then run by :func:`pipelines.runner.
run_pipeline` under its stored name, exactly as ``hyperflow pipeline run`` would run it:
the same orchestrator, store rows, caching and MLflow logging. Lightweight components run
in one pool of warm (spawned) workers shared by every run of the server.

Restarts: the server stopping (Ctrl-C, SIGTERM) *detaches* its runs (running tasks are
killed, nothing is recorded as final) and the server dying (``kill -9``) leaves them as
they were; either way the next start resumes every API run that had not finished and whose
owner process is gone: tasks that had finished keep their outputs, tasks that were running
run again. Runs of ``hyperflow pipeline run`` (their own foreground process) are never
taken over.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hyperflow.handlers.events import ADDED, MODIFIED, EventBus
from hyperflow.settings import ServerSettings
from pipelines.store import PipelineStore, RunRecord

log = logging.getLogger(__name__)

KIND = "PipelineRun"
SOURCE = "api"  # ``source`` of a run submitted through the API ("api" or "api:<file>")


def from_api(record: RunRecord) -> bool:
    return record.source == SOURCE or record.source.startswith(f"{SOURCE}:")


@dataclass
class _Active:
    record: RunRecord
    thread: threading.Thread | None = None
    orchestrator: Any = None
    stop_requested: bool = False
    detach_requested: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class PipelineRunManager:
    """Starts, stops, detaches and resumes the server's pipeline runs (thread-safe)."""

    def __init__(
        self,
        store: PipelineStore,
        settings: ServerSettings,
        events: EventBus,
        *,
        runner: Callable[..., Any] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.events = events
        self._runner = runner
        self._lock = threading.Lock()
        self._active: dict[str, _Active] = {}
        self._pool: Any = None
        self._closed = False
        self.resumed: list[RunRecord] = []

    # -- lifecycle -------------------------------------------------------------------------

    def resume_all(self) -> list[RunRecord]:
        """Start every API run that had not finished and whose owner is gone."""
        from pipelines.runner import owner_alive

        resumed = []
        for record in self.store.list_runs(None):
            if record.finished or not from_api(record) or owner_alive(record):
                continue
            self.start(record, reason="Resumed", message="resumed after a server restart")
            resumed.append(record)
        self.resumed = resumed
        return resumed

    def start(self, record: RunRecord, *, reason: str = "", message: str = "") -> None:
        with self._lock:
            if self._closed or record.uid in self._active:
                return
            active = _Active(record)
            active.thread = threading.Thread(
                target=self._run,
                args=(active,),
                name=f"hyperflow-pipeline-{record.namespace}-{record.name}",
                daemon=True,
            )
            self._active[record.uid] = active
        if reason:
            self._publish(record, MODIFIED, reason, message, record.state)
        active.thread.start()

    def is_running(self, uid: str) -> bool:
        with self._lock:
            return uid in self._active

    def running_count(self) -> int:
        with self._lock:
            return len(self._active)

    def stop(self, uid: str, timeout: float = 60.0) -> bool:
        """Cancel a run (running tasks killed, state CANCELED); True once it has ended."""
        with self._lock:
            active = self._active.get(uid)
            if active is None:
                return True
            active.stop_requested = True
            orchestrator = active.orchestrator
        if orchestrator is not None:
            orchestrator.stop()
        return active.done.wait(timeout)

    def shutdown(self, timeout: float = 30.0) -> None:
        """Detach every run (the next start resumes them) and stop the worker pool."""
        with self._lock:
            self._closed = True
            actives = list(self._active.values())
            for active in actives:
                active.detach_requested = True
                if active.orchestrator is not None:
                    active.orchestrator.detach()
        deadline = time.monotonic() + timeout
        for active in actives:
            active.done.wait(max(0.0, deadline - time.monotonic()))
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    # -- one run ---------------------------------------------------------------------------

    def _functions(self) -> Any:
        with self._lock:
            if self._pool is None:
                from pipelines.runner import worker_pool

                # Spawned, not forked: the server has many threads (see _func_fork).
                self._pool = worker_pool(os.cpu_count() or 1, start="spawn")
            return self._pool

    def _run(self, active: _Active) -> None:
        record = active.record
        try:
            self._execute(active)
        except BaseException as exc:  # a bug or a broken store: never a silent success
            log.exception("pipeline run %s/%s crashed", record.namespace, record.name)
            if not active.detach_requested:
                from pipelines.spec import PipelineError

                # Bad input (a run stored before a check existed): what is wrong, not
                # which Python exception said so.
                message = (
                    str(exc)
                    if isinstance(exc, PipelineError)
                    else f"the server could not run it: {type(exc).__name__}: {exc}"
                )
                try:
                    self.store.update_run(
                        record.uid, state="FAILED", message=message, finished_at=time.time()
                    )
                except Exception:
                    log.exception("cannot record the failure of %s", record.name)
                self._publish(record, MODIFIED, "Failed", message, "FAILED")
        finally:
            with self._lock:
                self._active.pop(record.uid, None)
            active.done.set()

    def _execute(self, active: _Active) -> None:
        from pipelines.runner import run_pipeline

        record = active.record
        seen: dict[str, str] = {}

        def on_start(started: RunRecord, orchestrator: Any) -> None:
            with self._lock:
                active.orchestrator = orchestrator
                stop, detach = active.stop_requested, active.detach_requested
            if stop:
                orchestrator.stop()
            if detach:
                orchestrator.detach()
            self._publish(record, MODIFIED, "Running", "the run started", "RUNNING")

        def observer(node: Any) -> None:
            if seen.get(node.path) == node.state:
                return
            seen[node.path] = node.state
            if node.kind == "iteration" or node.state == "PENDING":
                return
            state = node.state.title()
            self._publish(
                record,
                MODIFIED,
                f"Task{state}",
                f"task {node.path}: {node.state}" + (f": {node.message}" if node.message else ""),
                "RUNNING",
                task={"path": node.path, "state": node.state},
            )

        runner = self._runner or run_pipeline
        result = runner(
            record.spec,
            record.arguments,
            run_name=record.name,
            namespace=record.namespace,
            parallelism=record.parallelism,
            cache=record.cache,
            settings=self.settings,
            track=self.settings.track,
            observer=observer,
            on_start=on_start,
            function_backend=self._functions(),
        )
        if active.detach_requested and not result.run.finished:
            return
        final = result.run
        reason = {"SUCCEEDED": "Succeeded", "FAILED": "Failed", "CANCELED": "Canceled"}.get(
            final.state, final.state.title()
        )
        self._publish(
            final, MODIFIED, reason, final.message or f"the run {final.state}", final.state
        )

    # -- events ----------------------------------------------------------------------------

    def created(self, record: RunRecord) -> None:
        self._publish(record, ADDED, "Created", "pipeline run created", record.state)

    def _publish(
        self,
        record: RunRecord,
        type_: str,
        reason: str,
        message: str,
        state: str,
        task: dict[str, str] | None = None,
    ) -> None:
        status: dict[str, Any] = {"state": state}
        if task is not None:
            status["task"] = task
        self.events.publish(
            type_,
            KIND,
            record.namespace,
            record.name,
            reason=reason,
            message=message,
            status=status,
        )
