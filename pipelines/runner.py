"""Compose a pipeline run: load, check arguments, find or create the run, orchestrate.

``run_pipeline`` is what ``hyperflow pipeline run`` and :func:`pipelines.run` call. The
same pipeline with the same arguments started again after its process died (even
``kill -9``) resumes that run: tasks that had finished keep their outputs and are not
run again, tasks that were running run again. A finished run is never resumed: running
the command again creates a new run, whose unchanged tasks are cache hits.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.spec import (
    PipelineError,
    digest,
    load_pipeline,
    pipeline_arguments,
    pipeline_name_problem,
)
from pipelines.store import PipelineStore, RunRecord, TaskRecord
from tuner.pids import pid_alive
from tuner.settings import TunerSettings


@dataclass(slots=True)
class PipelineRun:
    """A finished (or stopped) run: its record, its tasks and the pipeline's outputs."""

    run: RunRecord
    tasks: list[TaskRecord]
    outputs: dict[str, Any] = field(default_factory=dict)
    tracking: str | None = None
    resumed: bool = False
    # A run named (``run_name``) that had finished before: nothing ran, this is its record.
    already_finished: bool = False

    @property
    def state(self) -> str:
        return self.run.state

    @property
    def name(self) -> str:
        return self.run.name

    @property
    def succeeded(self) -> bool:
        return self.run.state == "SUCCEEDED"

    @property
    def output(self) -> Any:
        """The pipeline's single output (as ``task.output`` in kfp); a run that did not
        succeed has none, and says why."""
        if not self.succeeded and not self.outputs:
            message = f": {self.run.message}" if self.run.message else ""
            # An AttributeError, as for a property that is not there: hasattr() says False.
            raise AttributeError(
                f"pipeline run {self.run.name} {self.run.state}{message}; it has no outputs"
            )
        if len(self.outputs) != 1:
            raise AttributeError(
                f"the pipeline has {len(self.outputs)} outputs ({', '.join(self.outputs)}): "
                "use .outputs[NAME]"
            )
        return next(iter(self.outputs.values()))

    def task(self, name: str) -> TaskRecord:
        """A task by path, or by name when only one task has it."""
        return find_task(self.tasks, name)


def find_task(tasks: list[TaskRecord], name: str) -> TaskRecord:
    for task in tasks:
        if task.path == name:
            return task
    matches = [t for t in tasks if t.name == name]
    if len(matches) == 1:
        return matches[0]
    if matches:
        paths = ", ".join(t.path for t in matches)
        raise LookupError(f"several tasks are named {name}: {paths}; give the path")
    raise LookupError(f"no task {name} (tasks: {', '.join(t.path for t in tasks)})")


def flat_outputs(outputs: dict[str, Any] | None) -> dict[str, Any]:
    """``{"parameters": .., "artifacts": ..}`` as one dict; a single artifact unwrapped."""
    if not outputs:
        return {}
    flat = dict(outputs.get("parameters", {}))
    for name, items in outputs.get("artifacts", {}).items():
        flat[name] = items[0] if len(items) == 1 else items
    return flat


def _pid_started(pid: int) -> float | None:
    try:
        import psutil

        return float(psutil.Process(pid).create_time())
    except Exception:
        return None


def owner_alive(run: RunRecord) -> bool:
    if run.owner_pid is None or not pid_alive(run.owner_pid):  # a killed owner's zombie too
        return False
    started = _pid_started(run.owner_pid)
    if started is None:
        return False
    return run.owner_started is None or abs(started - run.owner_started) < 1.0


def remove_run_folder(store: PipelineStore, record: RunRecord) -> None:
    """Delete a run's folder (``pipeline_root``) after its rows.

    Other runs' cache hits reuse this run's artifacts by path, as KFP's cache does; KFP
    keeps a deleted run's artifacts in its object store, so those runs stay whole. Here
    each finished such run first gets its own hard-linked copy (a copy across file
    systems) of the artifacts it names (their ``uri``), under ``<its folder>/from-<run
    name>-<uid>/``, and its paths are rewritten to the copy in one transaction; only then
    is the folder removed. A crash before the rewrite leaves the old paths valid; after
    it, the new ones. While a run that is not finished names them (it holds its paths in
    memory), the folder is kept."""
    import shutil

    root = Path(record.pipeline_root)
    prefix = str(root).rstrip(os.sep) + os.sep
    in_use = False
    for run, tasks in store.referencing(prefix, record.uid):
        if not run.finished:
            in_use = True
            continue
        base = Path(run.pipeline_root) / f"from-{record.name}-{record.uid[:8]}"

        def moved(value: Any, base: Path = base) -> Any:
            if isinstance(value, list):
                return [moved(v) for v in value]
            if not isinstance(value, dict):
                return value
            out = {k: moved(v) for k, v in value.items()}
            uri = value.get("uri")
            if isinstance(uri, str) and uri.startswith(prefix) and os.path.lexists(uri):
                target = base / uri[len(prefix) :]
                # An artifact's own path only, and inside the copy's folder ("..": none).
                if target.resolve().is_relative_to(base.resolve()):
                    if not os.path.lexists(target):
                        _link_copy(Path(uri), target)
                    out["uri"] = str(target)
            return out

        store.rewrite_paths(
            run.uid,
            moved(run.outputs),
            {t.id: (moved(t.inputs), moved(t.outputs)) for t in tasks},
        )
    if not in_use:
        shutil.rmtree(root, ignore_errors=True)


def _link_copy(source: Path, target: Path) -> None:
    """``source`` (a file or a folder) at ``target``: hard links where they can be made."""
    import shutil

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, copy_function=link, symlinks=True)
    else:
        link(str(source), str(target))


def run_pipeline(
    source: Any,
    arguments: dict[str, Any] | None = None,
    *,
    pipeline: str | None = None,
    parallelism: int | None = None,
    cache: bool = True,
    run_name: str | None = None,
    namespace: str = "default",
    settings: TunerSettings | None = None,
    track: bool = True,
    from_cli: bool = False,
    observer: Callable[[Any], None] | None = None,
    on_start: Callable[[RunRecord, Any], None] | None = None,
    function_backend: Any = None,
) -> PipelineRun:
    """Run (or resume) a pipeline in the foreground; see the module docstring.

    ``function_backend``: a :class:`~tuner.backends.function.FunctionBackend` of
    :func:`pipelines._lightweight.execute` to run lightweight components in, shared
    between runs (the caller closes it); by default each run has its own pool.
    """
    parallelism = parallelism or os.cpu_count() or 1
    if parallelism < 1:
        raise PipelineError(f"parallelism must be at least 1, got {parallelism}")
    own_pool = None
    if function_backend is None:
        own_pool = worker_pool(parallelism)
        own_pool.prestart(min(parallelism, 2))
    try:
        return _run(
            source, arguments, pipeline, parallelism, cache, run_name, namespace, settings,
            track, from_cli, observer, on_start, function_backend or own_pool,
        )  # fmt: skip
    finally:
        if own_pool is not None:
            own_pool.close()


def worker_pool(workers: int, start: str = "fork") -> Any:
    """A pool of warm workers for lightweight components.

    ``fork`` (Linux; the default for a run's own pool): workers are forks of this process,
    ready in milliseconds with what it imported; each imports kfp's executor in the
    background (``prepare_worker``) while this process loads and compiles the pipeline.
    ``spawn``: fresh interpreters (what a long-lived, many-threaded server uses).
    """
    from pipelines import _lightweight
    from tuner.backends.function import FunctionBackend

    return FunctionBackend(
        _lightweight.execute,
        workers=workers,
        start=start,
        initializer=_lightweight.prepare_worker,
    )


def resume_key(spec: dict[str, Any], args: dict[str, Any], cache: bool, namespace: str) -> str:
    """What makes a run the same run again (same pipeline, arguments, caching, namespace)."""
    return digest({"spec": spec, "arguments": args, "cache": cache, "ns": namespace})


_engines: dict[str, Any] = {}


def _engine(url: str) -> Any:
    """One engine per store URL for the process: SQLAlchemy caches compiled statements
    per engine (~0.1 s of a short run's first statements); ``store.close()`` only returns
    its connections."""
    engine = _engines.get(url)
    if engine is None:
        from tuner.store import create_store_engine

        engine = _engines[url] = create_store_engine(url)
    return engine


def _run(
    source: Any,
    arguments: dict[str, Any] | None,
    pipeline: str | None,
    parallelism: int,
    cache: bool,
    run_name: str | None,
    namespace: str,
    settings: TunerSettings | None,
    track: bool,
    from_cli: bool,
    observer: Callable[[Any], None] | None,
    on_start: Callable[[RunRecord, Any], None] | None,
    functions: Any,
) -> PipelineRun:
    # Both are folders of the run (``pipelines/<namespace>/<name>``, which delete removes):
    # "--name ../.." named $HYPERFLOW_HOME itself.
    for what, value in (("run name", run_name), ("namespace", namespace)):
        problem = None if value is None else pipeline_name_problem(value)
        if problem is not None:
            raise PipelineError(f"{what} {value!r}: {problem}")
    spec, where = load_pipeline(source, pipeline)
    args = pipeline_arguments(spec, dict(arguments or {}), from_cli=from_cli)
    settings = settings or TunerSettings()
    settings.ensure_home()
    functions.prestart(min(parallelism, _lightweight_count(spec)))
    pipeline_name = spec["pipelineInfo"]["name"]
    key = resume_key(spec, args, cache, namespace)
    store = PipelineStore(engine=_engine(settings.store_url))
    try:
        record, resumed = _find_or_create(
            store,
            settings,
            spec=spec,
            args=args,
            where=where,
            pipeline_name=pipeline_name,
            resume_key=key,
            run_name=run_name,
            namespace=namespace,
            parallelism=parallelism,
            cache=cache,
        )
        if record.finished:
            tasks = store.tasks(record.uid)
            return PipelineRun(record, tasks, flat_outputs(record.outputs), already_finished=True)
        return _execute(
            store, settings, record, args, track, resumed, observer, on_start, functions
        )
    finally:
        store.close()


def _find_or_create(
    store: PipelineStore,
    settings: TunerSettings,
    *,
    spec: dict[str, Any],
    args: dict[str, Any],
    where: str,
    pipeline_name: str,
    resume_key: str,
    run_name: str | None,
    namespace: str,
    parallelism: int,
    cache: bool,
) -> tuple[RunRecord, bool]:
    pid = os.getpid()
    started = _pid_started(pid)
    candidates: list[RunRecord]
    if run_name is not None:
        existing = store.get_run(run_name, namespace)
        if existing is not None and existing.resume_key != resume_key:
            raise PipelineError(
                f"pipeline run {run_name} exists with another pipeline or other arguments; "
                f"delete it (hyperflow pipeline delete {run_name}) or pick another name"
            )
        if existing is not None and existing.finished:
            return existing, False
        candidates = [existing] if existing is not None else []
    else:
        candidates = store.unfinished_runs(resume_key)
    for candidate in candidates:
        if owner_alive(candidate) and candidate.owner_pid != pid:
            if run_name is not None:
                raise PipelineError(
                    f"pipeline run {run_name} is running (pid {candidate.owner_pid}); stop it first"
                )
            continue
        expected = (candidate.owner_pid, candidate.owner_started)
        if store.claim_run(candidate.uid, pid, started or 0.0, expected):
            return store.get_run_by_uid(candidate.uid), True
    name = run_name or f"{pipeline_name}-{secrets.token_hex(4)}"
    root = settings.home / "pipelines" / namespace / name
    record = store.create_run(
        namespace=namespace,
        name=name,
        pipeline_name=pipeline_name,
        spec=spec,
        arguments=args,
        resume_key=resume_key,
        source=where,
        parallelism=parallelism,
        cache=cache,
        pipeline_root=str(root),
        state="PENDING",
        owner_pid=pid,
        owner_started=started,
    )
    return record, False


def _execute(
    store: PipelineStore,
    settings: TunerSettings,
    record: RunRecord,
    args: dict[str, Any],
    track: bool,
    resumed: bool,
    observer: Callable[[Any], None] | None,
    on_start: Callable[[RunRecord, Any], None] | None,
    functions: Any,
) -> PipelineRun:
    from pipelines.orchestrator import Detached, Orchestrator
    from pipelines.tracking import PipelineLayout, PipelineTracker
    from tuner.backends.local import LocalBackend
    from tuner.interrupts import interrupts_stop

    Path(record.pipeline_root).mkdir(parents=True, exist_ok=True)
    processes = LocalBackend()
    tracker: PipelineTracker | None = None
    if track:
        from tuner.tracking.mlflow_tracker import MlflowTracker

        subject = PipelineLayout(
            pipeline_name=record.pipeline_name,
            namespace=record.namespace,
            run_name=record.name,
            arguments=args,
            spec=record.spec,
            options={"parallelism": record.parallelism, "cache": record.cache},
        )
        mlflow = MlflowTracker(
            settings.tracking_uri, artifact_root=settings.home / "mlartifacts", in_process=True
        )
        # A resumed run's parent run (if a kill -9 came before it was written) starts
        # when the run started, not at the resume.
        tracker = PipelineTracker(mlflow, subject, record.uid, record.started_at)
    now = time.time()
    store.update_run(
        record.uid,
        state="RUNNING",
        started_at=record.started_at or now,
        message="",
    )
    orchestrator = Orchestrator(
        store=store,
        run=store.get_run_by_uid(record.uid),
        function_backend=functions,
        process_backend=processes,
        tracker=tracker,
        observer=observer,
        import_paths=[str(Path(record.source).resolve().parent)]
        if record.source.endswith(".py")
        else [],
        task_env={
            "HYPERFLOW_HOME": str(settings.home),
            "HYPERFLOW_DATABASE_URL": settings.store_url,
            "MLFLOW_TRACKING_URI": settings.tracking_uri,
            # The control plane the deploy component talks to, as of this run (a warm
            # worker may have started before the caller set them).
            **{
                k: os.environ[k] for k in ("HYPERFLOW_SERVER", "HYPERFLOW_TOKEN") if k in os.environ
            },
        },
    )
    if on_start is not None:
        on_start(record, orchestrator)
    state, message = "FAILED", ""
    outputs: dict[str, Any] = {}
    detached = False
    tracking = None
    try:
        with interrupts_stop(orchestrator):
            try:
                state, message, outputs = orchestrator.run(args)
            except PipelineError as exc:
                state, message = "FAILED", str(exc)
    except Detached:
        detached = True
    finally:
        processes.close()
        if not detached:  # also when interrupted: the state is written before it goes on
            mlflow_run = tracker.run_id() if tracker is not None else None
            store.update_run(
                record.uid,
                state=state,
                message=message,
                outputs=outputs,
                finished_at=time.time(),
                mlflow_run_id=mlflow_run,
            )
            if tracker is not None:
                tracker.run_finished(state, message)
                tracker.close()
                tracking = tracker.describe()
                if tracker.run_id() and not mlflow_run:
                    store.update_run(record.uid, mlflow_run_id=tracker.run_id())
    if detached:
        # Left RUNNING for a later start to resume (see Orchestrator.detach).
        if tracker is not None:
            tracker.close(timeout=5)
        current = store.get_run_by_uid(record.uid)
        return PipelineRun(current, store.tasks(record.uid), {}, None, resumed)
    final = store.get_run_by_uid(record.uid)
    return PipelineRun(
        final, store.tasks(record.uid), flat_outputs(final.outputs), tracking, resumed
    )


def _lightweight_count(spec: dict[str, Any]) -> int:
    from pipelines.spec import lightweight

    executors = spec.get("deploymentSpec", {}).get("executors", {}).values()
    return sum(1 for e in executors if "container" in e and lightweight(e["container"]))
