"""Applies queued tracking events to MLflow, in the writer process.

Two phases, so one round trip carries many calls:

* :meth:`MlflowWriter.apply` folds an event into per-run buffers, in memory, no I/O;
* :meth:`MlflowWriter.sync` writes the buffers: trials that started and ended since the
  last cycle are inserted whole, many runs in one transaction; other runs are created (or,
  on resume, found), get one ``log_batch`` with pending params/metrics/tags, artifacts,
  then final statuses.

Where the tracking store is a SQL database, the writes are SQL statements on
MLflow's tables (:mod:`tuner.tracking.mlflow_sql`) and mlflow is never imported (seconds
of CPU beside the trials); elsewhere (an MLflow server, a file store, tables that are not
what that module expects) they go through MLflow's API (:mod:`tuner.tracking.mlflow_api`).

``sync`` raises on errors that may pass (network, locked database): the caller retries
later and nothing buffered is lost, since each buffer is emptied only after its write
succeeded. Errors MLflow reports as the data's fault (a changed param, a deleted run) are
logged and the offending data is dropped, so one bad value cannot stall all tracking.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tuner.tracking import layout
from tuner.tracking.events import (
    Event,
    ExperimentEnded,
    ExperimentStarted,
    ObservationsLogged,
    TrialEnded,
    TrialStarted,
)
from tuner.tracking.mlflow_sql import (
    MAX_ENTITIES_PER_BATCH,
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_TAGS_PER_BATCH,
    ExperimentInfo,
    FinishedRun,
    FoundRun,
    Metric,
    SqlRunStore,
    TrackingRejected,
    new_run_id,
    run_artifact_uri,
    validate,
)

logger = logging.getLogger(__name__)

_SQL_SCHEMES = ("sqlite:", "postgresql", "mysql")

# MLflow error codes that mean "this request will never succeed": retrying cannot help.
_PERMANENT_ERRORS = frozenset(
    {
        "INVALID_PARAMETER_VALUE",
        "RESOURCE_ALREADY_EXISTS",
        "RESOURCE_DOES_NOT_EXIST",
        "INVALID_STATE",
        "BAD_REQUEST",
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
        "ENDPOINT_NOT_FOUND",
        "NOT_FOUND",
    }
)


def is_permanent(error: BaseException) -> bool:
    """MLflow refused the request for good (retrying cannot help)."""
    if isinstance(error, TrackingRejected):
        return error.error_code in _PERMANENT_ERRORS
    exceptions = sys.modules.get("mlflow.exceptions")  # never imported just to look
    return (
        exceptions is not None
        and isinstance(error, exceptions.MlflowException)
        and error.error_code in _PERMANENT_ERRORS
    )


class RunStore(Protocol):
    """What the writer asks of a tracking store: :class:`~tuner.tracking.mlflow_sql.SqlRunStore`
    (SQL, no mlflow import) or :class:`~tuner.tracking.mlflow_api.ApiRunStore` (MLflow's API)."""

    def close(self) -> None: ...

    def experiment_by_name(self, name: str) -> ExperimentInfo | None: ...

    def create_experiment(self, name: str, artifact_location: str, tags: dict[str, str]) -> str: ...

    def experiment_location(self, experiment_id: str) -> str: ...

    def find_runs(self, experiment_id: str, tag: str, value: str) -> list[FoundRun]: ...

    def create_run(
        self, experiment: ExperimentInfo, run_name: str, start_ms: int, tags: dict[str, str]
    ) -> tuple[str, str]: ...

    def log_batch(
        self, run_id: str, metrics: list[Metric], params: dict[str, str], tags: dict[str, str]
    ) -> None: ...

    def set_status(self, run_id: str, status: str, end_ms: int | None) -> None: ...

    def log_text(self, run_id: str, artifact_uri: str | None, text: str, name: str) -> None: ...

    def log_files(
        self, run_id: str, artifact_uri: str | None, file: Path | None, folder: Path | None
    ) -> None: ...


def _is_transient_db_error(error: BaseException) -> bool:
    """A database that is locked, busy or unreachable: worth retrying."""
    import sqlite3

    if isinstance(error, sqlite3.OperationalError):  # the SQL writer's SQLite connection
        return True
    alchemy = sys.modules.get("sqlalchemy.exc")  # never imported just to look
    return alchemy is not None and isinstance(
        error, alchemy.OperationalError | alchemy.DisconnectionError | alchemy.TimeoutError
    )


def default_artifact_root(tracking_uri: str) -> Path | None:
    """Artifacts of a local SQLite store go next to the database file, not into ./mlruns."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix) or tracking_uri == prefix + ":memory:":
        return None
    db_path = Path(tracking_uri[len(prefix) :].split("?", 1)[0])
    return db_path.resolve().parent / "mlartifacts"


# A folder name's bytes: most file systems take 255; room left for what MLflow adds.
_FOLDER_BYTES = 200


def experiment_folder(root: Path, name: str) -> Path:
    """Where a new MLflow experiment named ``name`` keeps its artifacts: ``root/<name>``
    with spaces as ``_`` (``<namespace>/<name>`` nests), inside ``root`` whatever the name.

    Names come from users (a pipeline's ``pipelineInfo.name``): a ``..`` segment, a
    control character or an over-long segment is made a plain folder name, and a folder
    that would still be outside ``root`` is refused (``TrackingRejected``: tracking off,
    never retried).
    """
    parts = [_folder_name(part) for part in name.replace(" ", "_").split("/")]
    folder = root.joinpath(*parts)
    base = os.path.normpath(os.path.abspath(root))
    if os.path.commonpath([base, os.path.normpath(os.path.abspath(folder))]) != base:
        raise TrackingRejected(f"experiment {name!r}: artifact folder {folder} is outside {root}")
    return folder


def _folder_name(part: str) -> str:
    text = "".join(c if c.isprintable() and c != "\\" else "_" for c in part)
    if text in ("", ".", ".."):
        text = "_" * max(len(text), 1)
    if len(text.encode()) > _FOLDER_BYTES:
        tail = "-" + hashlib.sha256(part.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        head = text.encode()[: _FOLDER_BYTES - len(tail)].decode(errors="ignore")
        text = head + tail
    return text


def switch_to_wal(engine: Any) -> None:
    """Put a SQLite store in WAL mode with ``synchronous=NORMAL``.

    MLflow commits several times per call; with SQLite's default rollback journal every
    commit waits for fsyncs (tens of ms on a busy disk: 100 trials took 10-20 s). In WAL
    mode with NORMAL sync a commit is a write to the WAL file: it survives a crash of the
    process (the case the controller recovers from), only an OS crash or power cut may lose
    the last commits. WAL mode is a property of the database file and persists; readers
    such as ``mlflow ui`` keep working. Skipped (debug log) if the file cannot switch, e.g.
    on a network file system or while another process holds a lock.
    """
    if engine.dialect.name != "sqlite":
        return
    from sqlalchemy import event

    def normal_sync(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    try:
        with engine.connect() as connection:
            mode = connection.exec_driver_sql("PRAGMA journal_mode=WAL").scalar()
        if str(mode).lower() != "wal":
            logger.debug("tracking: SQLite store stays in %s journal mode", mode)
            return
        event.listen(engine, "connect", normal_sync)
        # Pooled connections predate the listener; new ones get NORMAL sync.
        engine.dispose()
    except Exception as error:
        logger.debug("tracking: SQLite store not switched to WAL: %s", error)


@dataclass
class _Run:
    """One MLflow run and what is waiting to be written to it."""

    run_name: str
    trial_name: str | None  # None: the experiment's parent run
    start_ms: int
    run_id: str | None = None
    artifact_uri: str | None = None  # known from create/search: no get_run per artifact
    bulk_id: str | None = None  # run id reserved for a bulk insert (kept across retries)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)
    # artifact file name -> text (the spec YAML)
    texts: dict[str, str] = field(default_factory=dict)
    trial_dir: Path | None = None
    terminal: tuple[str, int] | None = None  # (MLflow status, end time ms)
    steps: dict[str, int] = field(default_factory=dict)  # a step-less value's step, by metric
    best_trial: str | None = None  # parent only: whose run id to tag at the end

    rejected: bool = False  # MLflow refused to create/find it: its data is dropped

    def drop(self) -> None:
        self.params.clear()
        self.tags.clear()
        self.metrics = []
        self.texts.clear()
        self.trial_dir = None
        self.terminal = None

    def step_of(self, metric: str, step: int | None) -> int:
        """``step``, or for a value without one (a function's returned result) the step
        after every step the metric has had, so that it is MLflow's latest value as it is
        hyperflow's (it was logged at step 0, before the reported steps)."""
        if step is None:
            step = self.steps.get(metric, 0)
        self.steps[metric] = max(self.steps.get(metric, 0), step + 1)
        return step


@dataclass(frozen=True, slots=True)
class _Existing:
    run_id: str
    status: str
    artifact_uri: str
    params: dict[str, str] = field(default_factory=dict)


class MlflowWriter:
    """Buffers events per run and writes them to one MLflow tracking store. Not thread-safe:
    owned by the tracker's background thread; ``describe``/``run_id`` only read strings."""

    def __init__(
        self,
        tracking_uri: str,
        artifact_root: Path | None = None,
        *,
        sqlite_wal: bool = True,
        store: SqlRunStore | None = None,
    ) -> None:
        """``store``: the SQL store to write, opened already (by default opened on the
        first sync)."""
        self.tracking_uri = tracking_uri
        self._sqlite_wal = sqlite_wal
        # A tracking server decides (and serves) artifact locations itself; a local
        # directory named by this client would be unreachable for the server's UI.
        remote = tracking_uri.startswith(("http://", "https://", "databricks"))
        self._artifact_root = (
            None if remote else artifact_root or default_artifact_root(tracking_uri)
        )
        # Created on first sync: creating it opens the store (and may fail while a server
        # or disk is unavailable, which must be retried like any other write).
        self._store_instance: RunStore | None = store
        self._bulk: SqlRunStore | None = store  # whole runs in one transaction (SQL stores)
        self._experiment: ExperimentInfo | None = None
        self._user = layout.current_user()
        self._artifact_location: str | None = None  # the MLflow experiment's
        self._start: ExperimentStarted | None = None
        self._layout: layout.RunsLayout | None = None
        self.experiment_name: str | None = None
        self.experiment_id: str | None = None
        self._parent: _Run | None = None
        self._trials: dict[str, _Run] = {}
        # Runs found in the store for this uid (resume), by trial name; None: the parent.
        self._existing: dict[str | None, _Existing] | None = None
        # Set when MLflow refuses the experiment itself: nothing can be written any more.
        self.disabled = False

    @property
    def _store(self) -> RunStore:
        if self._store_instance is None:
            store: RunStore | None = None
            if self.tracking_uri.startswith(_SQL_SCHEMES):
                sql = SqlRunStore.open(
                    self.tracking_uri, user=self._user, sqlite_wal=self._sqlite_wal
                )
                if sql is not None:
                    store, self._bulk = sql, sql
            if store is None:
                store = self._api_store()
            self._store_instance = store
        return self._store_instance

    def _api_store(self) -> RunStore:
        from tuner.tracking.mlflow_api import ApiRunStore

        return ApiRunStore(self.tracking_uri, sqlite_wal=self._sqlite_wal)

    def _use_api(self) -> None:
        """From now on, every write through MLflow's API."""
        if self._store_instance is not None:
            self._store_instance.close()
        self._bulk = None
        self._store_instance = self._api_store()

    def close(self) -> None:
        if self._store_instance is not None:
            self._store_instance.close()

    # -- phase 1: fold events into buffers -------------------------------------------------

    def apply(self, event: Event) -> None:
        if self.disabled:
            return
        if isinstance(event, ExperimentStarted):
            self._apply_start(event)
            return
        if self._start is None or self._parent is None:
            logger.error("tracking: %s before start_experiment; dropped", type(event).__name__)
            return
        trial_name = getattr(event, "trial_name", None)
        if trial_name is not None and self._trial(trial_name, event.time_ms).rejected:
            return
        if isinstance(event, TrialStarted):
            run = self._trial(event.trial_name, event.time_ms)
            run.params.update(
                {layout.key(k): layout.param_value(v) for k, v in event.assignments.items()}
            )
            run.tags.update(event.tags)
            run.tags[layout.TAG_STATUS] = "Running"
        elif isinstance(event, ObservationsLogged):
            run = self._trial(event.trial_name, event.time_ms)
            for obs in event.observations:
                metric = layout.key(obs.name)
                step = run.step_of(metric, obs.step)
                stamp = int(obs.timestamp * 1000) if obs.timestamp > 0 else event.time_ms
                run.metrics.append(Metric(metric, float(obs.value), stamp, step))
        elif isinstance(event, TrialEnded):
            run = self._trial(event.trial_name, event.time_ms)
            for name, value in event.metrics.items():
                metric = layout.FINAL_METRIC_PREFIX + layout.key(name)
                run.metrics.append(Metric(metric, float(value), event.time_ms, 0))
            run.tags[layout.TAG_STATUS] = event.phase.value
            run.texts.update(event.texts)
            run.trial_dir = event.trial_dir
            run.terminal = (layout.trial_status(event.phase), event.time_ms)
        elif isinstance(event, ExperimentEnded):
            parent = self._parent
            for name, value in event.best_metrics.items():
                metric = layout.BEST_METRIC_PREFIX + layout.key(name)
                parent.metrics.append(Metric(metric, float(value), event.time_ms, 0))
            parent.tags[layout.TAG_STATUS] = event.phase.value
            parent.tags[layout.TAG_REASON] = layout.tag_value(event.reason)
            if event.best_trial_name is not None:
                parent.tags[layout.TAG_BEST_TRIAL] = layout.tag_value(event.best_trial_name)
                parent.best_trial = event.best_trial_name
            parent.terminal = (layout.experiment_status(event.phase, event.reason), event.time_ms)

    def _apply_start(self, event: ExperimentStarted) -> None:
        if self._start is not None and self._start.uid != event.uid:
            logger.error(
                "tracking: one tracker records one experiment; ignoring start of uid %s",
                event.uid,
            )
            return
        self._start = event
        self._layout = subject = layout.as_layout(event.experiment)
        if self._parent is None:
            self._parent = _Run(
                run_name=subject.parent_run_name(), trial_name=None, start_ms=event.time_ms
            )
        self._parent.params.update(subject.parent_params())
        self._parent.tags[layout.TAG_STATUS] = "Running"
        spec_name, spec_text = subject.spec_artifact()
        self._parent.texts[spec_name] = spec_text

    def _trial(self, trial_name: str, time_ms: int) -> _Run:
        # A trial seen first through its metrics (e.g. after a resume that skipped
        # start_trial) still gets its run, found or created by name.
        run = self._trials.get(trial_name)
        if run is None:
            run = _Run(run_name=trial_name, trial_name=trial_name, start_ms=time_ms)
            self._trials[trial_name] = run
        return run

    @property
    def _subject(self) -> layout.RunsLayout:
        assert self._layout is not None
        return self._layout

    # -- phase 2: write buffers --------------------------------------------------------------

    def sync(self) -> None:
        """Write everything buffered; raises (keeping the rest buffered) on transient errors."""
        if self.disabled or self._start is None or self._parent is None:
            return
        try:
            self._ensure_experiment(self._start)
            if self._parent.run_id is None:
                self._ensure_run(self._parent, self._start)
        except Exception as error:
            if not is_permanent(error):
                raise
            logger.error(
                "tracking: MLflow at %s refused the experiment; tracking off: %s",
                self.tracking_uri,
                error,
            )
            self.disabled = True
            for run in [self._parent, *self._trials.values()]:
                run.drop()
            return
        self._insert_finished(self._start)
        for run in self._trials.values():
            if run.run_id is None and not run.rejected:
                try:
                    self._ensure_run(run, self._start)
                except Exception as error:
                    if not is_permanent(error):
                        raise
                    logger.error("tracking: no MLflow run for %s: %s", run.run_name, error)
                    run.rejected = True
                    run.drop()
        self._resolve_best_run(self._parent)
        runs = [run for run in [self._parent, *self._trials.values()] if not run.rejected]
        for run in runs:
            if run.params or run.tags or run.metrics:
                self._write_data(run)
        for run in runs:
            if run.texts or run.trial_dir is not None:
                self._write_artifacts(run)
            if run.terminal is not None:
                self._write_terminal(run)

    def _ensure_experiment(self, start: ExperimentStarted) -> None:
        if self.experiment_id is not None:
            return
        store = self._store
        subject = self._subject
        name = subject.experiment_name()
        found = store.experiment_by_name(name)
        if found is not None and found.lifecycle_stage != "active":
            name = subject.fallback_experiment_name(start.uid)
            found = store.experiment_by_name(name)
        if found is None:
            location: str | None = None
            if self._artifact_root is not None:
                location = experiment_folder(self._artifact_root, name).as_uri()
            try:
                experiment_id = store.create_experiment(
                    name,
                    location,  # type: ignore[arg-type]  # None: the server's own choice
                    subject.experiment_tags(),
                )
            except Exception as error:
                # Another process created it between our lookup and create.
                if getattr(error, "error_code", None) != "RESOURCE_ALREADY_EXISTS":
                    raise
                found = store.experiment_by_name(name)
                if found is None:
                    raise
            if found is None:
                found = ExperimentInfo(
                    experiment_id, "active", store.experiment_location(experiment_id)
                )
        self._experiment = found
        self._artifact_location = found.artifact_location
        self._existing = self._find_runs(found.experiment_id, start.uid)
        self.experiment_name = name
        self.experiment_id = found.experiment_id

    def _find_runs(self, experiment_id: str, uid: str) -> dict[str | None, _Existing]:
        """This uid's runs already in the store (non-empty only when resuming)."""
        found: dict[str | None, _Existing] = {}
        for run in self._store.find_runs(experiment_id, layout.TAG_UID, uid):
            if run.tags.get(layout.TAG_RUN_TYPE) in layout.PARENT_RUN_TYPES:
                trial: str | None = None
            else:
                trial = run.tags.get(layout.TAG_TRIAL)
                if trial is None:
                    continue
            # Newest first: the oldest wins if a crash ever left two runs for one key.
            found[trial] = _Existing(run.run_id, run.status, run.artifact_uri, run.params)
        return found

    def _ensure_run(self, run: _Run, start: ExperimentStarted) -> None:
        assert self._experiment is not None
        existing = (self._existing or {}).get(run.trial_name)
        if existing is not None:
            run.run_id = existing.run_id
            run.artifact_uri = existing.artifact_uri
            changed = {k: v for k, v in run.params.items() if existing.params.get(k, v) != v}
            if changed:
                # MLflow params never change (an edited maxTrialCount, say): the run keeps
                # its first values; the new ones are not an error of the data.
                logger.warning(
                    "tracking: MLflow params cannot change; run %s keeps %s",
                    run.run_name,
                    ", ".join(f"{k}={existing.params[k]} (now {v})" for k, v in changed.items()),
                )
                for k in changed:
                    del run.params[k]
            if run.terminal is not None:
                if existing.status == run.terminal[0]:
                    # Complete already: a run's status is the last thing written to it,
                    # so a re-sent (reconciled) run with its final status needs nothing.
                    run.drop()
                return
            if existing.status != layout.RUNNING:
                # A resumed (e.g. restarted) experiment or trial is running again.
                self._store.set_status(existing.run_id, layout.RUNNING, None)
            return
        if run.trial_name is None:
            tags = self._subject.parent_tags(start.uid)
        else:
            assert self._parent is not None and self._parent.run_id is not None
            tags = self._subject.child_tags(start.uid, run.trial_name, self._parent.run_id)
        tags[layout.TAG_USER] = self._user
        run.run_id, run.artifact_uri = self._store.create_run(
            self._experiment, run.run_name, run.start_ms, tags
        )

    def _resolve_best_run(self, parent: _Run) -> None:
        # The best trial's run id lets users (and serving: runs:/<id>/model) reach its model.
        if parent.best_trial is None:
            return
        run = self._trials.get(parent.best_trial)
        best_id = run.run_id if run is not None else None
        if best_id is None and self._existing and parent.best_trial in self._existing:
            best_id = self._existing[parent.best_trial].run_id
        if best_id is not None:
            parent.tags[layout.TAG_BEST_RUN_ID] = best_id
        parent.best_trial = None

    def _write_data(self, run: _Run) -> None:
        assert run.run_id is not None
        params = list(run.params.items())
        tags = [(k, layout.tag_value(v)) for k, v in run.tags.items()]
        metrics = run.metrics
        try:
            # Usually a single round trip; chunked only to respect MLflow's batch limits.
            while params or tags or metrics:
                p, params = params[:MAX_PARAMS_TAGS_PER_BATCH], params[MAX_PARAMS_TAGS_PER_BATCH:]
                room = MAX_PARAMS_TAGS_PER_BATCH - len(p)
                t, tags = tags[:room], tags[room:]
                room = min(MAX_METRICS_PER_BATCH, MAX_ENTITIES_PER_BATCH - len(p) - len(t))
                m, metrics = metrics[:room], metrics[room:]
                self._log_batch(run, m, dict(p), dict(t))
                # Forget what was written, so a failure later in the loop retries only the rest.
                for key, _ in p:
                    run.params.pop(key, None)
                for key, _ in t:
                    run.tags.pop(key, None)
                run.metrics = metrics
        except Exception as error:
            if not is_permanent(error):
                raise
            logger.error("tracking: MLflow rejected data of run %s: %s", run.run_name, error)
            run.params.clear()
            run.tags.clear()
            run.metrics = []

    def _log_batch(self, run: _Run, m: list[Metric], p: dict[str, str], t: dict[str, str]) -> None:
        assert run.run_id is not None
        try:
            self._store.log_batch(run.run_id, m, p, t)
        except Exception as error:
            if not (p and getattr(error, "error_code", None) == "INVALID_PARAMETER_VALUE"):
                raise
            # Most likely a param whose value changed on resume (MLflow params are
            # immutable): keep the original params, write the rest.
            logger.error("tracking: params of run %s not updated: %s", run.run_name, error)
            self._store.log_batch(run.run_id, m, {}, t)

    def _write_artifacts(self, run: _Run) -> None:
        assert run.run_id is not None
        try:
            for name, text in list(run.texts.items()):
                self._store.log_text(run.run_id, run.artifact_uri, text, name)
                del run.texts[name]
            if run.trial_dir is not None:
                self._copy_trial_files(run, run.trial_dir)
                run.trial_dir = None
        except Exception as error:
            if not is_permanent(error):
                raise
            logger.error("tracking: artifacts of run %s not stored: %s", run.run_name, error)
            run.texts.clear()
            run.trial_dir = None

    def _copy_trial_files(self, run: _Run, trial_dir: Path) -> None:
        """The trial log and the trial's ``artifacts/`` folder into the run's artifacts."""
        log = trial_dir / layout.TRIAL_LOG
        artifacts = trial_dir / layout.TRIAL_ARTIFACTS_DIR
        has_log = log.is_file()
        has_artifacts = artifacts.is_dir() and any(artifacts.iterdir())
        if not (has_log or has_artifacts):
            return
        assert run.run_id is not None or run.bulk_id is not None
        self._store.log_files(
            run.run_id or run.bulk_id or "",
            run.artifact_uri,
            log if has_log else None,
            artifacts if has_artifacts else None,
        )

    def _insert_finished(self, start: ExperimentStarted) -> None:
        """Trials that started and ended since the last cycle: whole runs, one transaction."""
        bulk = self._bulk
        if bulk is None or self._experiment is None:
            return
        assert self._parent is not None and self._parent.run_id is not None
        existing = self._existing or {}
        batch: dict[str, tuple[_Run, FinishedRun]] = {}
        for run in self._trials.values():
            if (
                run.run_id is not None
                or run.rejected
                or run.terminal is None
                or run.texts
                or run.trial_name is None
                or run.trial_name in existing
            ):
                continue
            tags = self._subject.child_tags(start.uid, run.trial_name, self._parent.run_id)
            tags[layout.TAG_USER] = self._user
            tags.update({k: layout.tag_value(v) for k, v in run.tags.items()})
            status, end_ms = run.terminal
            finished = FinishedRun(
                run_name=run.run_name,
                start_ms=run.start_ms,
                end_ms=end_ms,
                status=status,
                params=dict(run.params),
                tags=tags,
                metrics=list(run.metrics),
            )
            try:
                finished.params, finished.tags = validate(
                    finished.metrics, finished.params, finished.tags
                )
            except TrackingRejected as error:
                # The run-by-run path below reports (and drops) what MLflow refuses.
                logger.debug("tracking: run %s not bulk-inserted: %s", run.run_name, error)
                continue
            if run.bulk_id is None:
                run.bulk_id = new_run_id()
            run.artifact_uri = run_artifact_uri(self._experiment.artifact_location, run.bulk_id)
            batch[run.bulk_id] = (run, finished)
        if not batch:
            return
        # Files first: a crash between the two leaves a folder no run points to, never a
        # run whose log is missing. A retry reuses the run ids, so the same folders.
        for run, _ in batch.values():
            if run.trial_dir is not None:
                try:
                    self._copy_trial_files(run, run.trial_dir)
                except Exception as error:
                    if not is_permanent(error):
                        raise
                    logger.error(
                        "tracking: artifacts of run %s not stored: %s", run.run_name, error
                    )
        try:
            bulk.insert_finished(
                self._experiment, {run_id: finished for run_id, (_, finished) in batch.items()}
            )
        except Exception as error:
            if is_permanent(error):
                # E.g. the experiment was deleted meanwhile: the run-by-run path says so.
                logger.debug("tracking: bulk insert refused: %s", error)
                for run, _ in batch.values():
                    run.artifact_uri = None
                return
            if _is_transient_db_error(error):
                raise
            # Anything else means this MLflow's tables are not what the SQL writer
            # expects: use MLflow's API from now on.
            logger.warning("tracking: bulk insert into MLflow failed, using its API: %s", error)
            self._use_api()
            for run, _ in batch.values():
                run.artifact_uri = None
            return
        for run_id, (run, _) in batch.items():
            run.run_id = run_id
            run.params.clear()
            run.tags.clear()
            run.metrics = []
            run.trial_dir = None
            run.terminal = None

    def _write_terminal(self, run: _Run) -> None:
        assert run.run_id is not None and run.terminal is not None
        status, end_ms = run.terminal
        try:
            self._store.set_status(run.run_id, status, end_ms)
        except Exception as error:
            if not is_permanent(error):
                raise
            logger.error("tracking: status of run %s not set: %s", run.run_name, error)
        run.terminal = None

    # -- read side ---------------------------------------------------------------------------

    def run_id(self, trial_name: str | None) -> str | None:
        run = self._parent if trial_name is None else self._trials.get(trial_name)
        return run.run_id if run is not None else None

    def run_ids(self) -> dict[str | None, str]:
        """The run id of the parent (key None) and of each trial, where known."""
        runs = [self._parent, *self._trials.values()] if self._parent else []
        return {r.trial_name: r.run_id for r in runs if r.run_id is not None}

    def describe(self) -> str:
        if self.experiment_id is None or self._parent is None:
            return f"MLflow tracking at {self.tracking_uri} (nothing written yet)"
        return (
            f"MLflow experiment '{self.experiment_name}' (id {self.experiment_id}), "
            f"parent run {self._parent.run_id} (tracking: {self.tracking_uri})"
        )
