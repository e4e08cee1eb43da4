"""Experiment handlers: create/list/get/patch/delete, trials, best, logs, pushed metrics.

Records in, records out (Katib-shaped dicts), no HTTP: the API routes, the CLI (through
the API) and the UI call these. Every method takes the :class:`Caller` first and checks
the namespace before it reads anything; nothing else reads the store for them.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
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
    Unauthorized,
    Unavailable,
)
from hyperflow.handlers.events import DELETED, MODIFIED, EventBus
from hyperflow.handlers.folders import BASE_DIR_ANNOTATION, base_dir_of
from hyperflow.handlers.names import check_dns_label, shown
from hyperflow.manager import OWNER, ExperimentManager
from tuner.pids import pid_alive
from tuner.settings import TunerSettings
from tuner.spec import SpecError, parse_experiment
from tuner.spec.models import Experiment, ObjectiveType, ResumePolicy
from tuner.status import object_of, optimal_trial_object, rfc3339, status_of, trial_object
from tuner.store import ExperimentExists, ExperimentRecord, Store, TrialRecord
from tuner.store.queries import best_trial, page_experiments, page_trials, trial_phases
from tuner.types import ExperimentPhase, ExperimentReason, TrialPhase

log = logging.getLogger(__name__)

EDITABLE = ("maxTrialCount", "parallelTrialCount", "maxFailedTrialCount")
_PHASES = {p.value for p in ExperimentPhase}
_TRIAL_PHASES = {p.value for p in TrialPhase}

RunIdLookup = Callable[[Experiment, str, str], "str | None"]


@dataclass(frozen=True, slots=True)
class TrialLog:
    """A trial's combined stdout/stderr: read whole, or followed while the trial runs."""

    path: Path
    running: Callable[[], bool]

    def read(self) -> bytes:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return b""

    async def follow(self, poll: float = 0.2) -> AsyncIterator[bytes]:
        """What is in the log, then what is appended, until the trial has ended."""
        offset = 0
        while True:
            running = self.running()  # before reading: nothing written after is missed
            chunk = await asyncio.to_thread(self._read_from, offset)
            if chunk:
                offset += len(chunk)
                yield chunk
                continue
            if not running:
                return
            await asyncio.sleep(poll)

    def _read_from(self, offset: int) -> bytes:
        try:
            with open(self.path, "rb") as f:
                f.seek(offset)
                return f.read(1 << 20)
        except FileNotFoundError:
            return b""


@dataclass(frozen=True, slots=True)
class BestSaved:
    """An experiment's best trial (None while none succeeded), its MLflow run id (None
    without tracking) and the entries it saved in ``folder`` (``$HYPERFLOW_ARTIFACTS_DIR``
    of the trial, logged to its run)."""

    experiment: ExperimentRecord
    trial: TrialRecord | None
    run_id: str | None
    folder: Path | None
    entries: list[str]

    @property
    def preferred(self) -> str | None:
        """The entry to serve: ``model`` if saved, else the first one."""
        if "model" in self.entries:
            return "model"
        return self.entries[0] if self.entries else None


def storage_uris(saved: BestSaved) -> dict[str, Any]:
    """The trial's MLflow run and the ``runs:/`` storage URIs of what it saved."""
    run_id, preferred = saved.run_id, saved.preferred
    return {
        "mlflowRunId": run_id,
        "storageUris": [f"runs:/{run_id}/{e}" for e in saved.entries] if run_id else [],
        "storageUri": f"runs:/{run_id}/{preferred}" if run_id and preferred else None,
    }


class ExperimentHandlers:
    def __init__(
        self,
        store: Store,
        manager: ExperimentManager,
        events: EventBus,
        settings: TunerSettings,
        run_id_lookup: RunIdLookup | None = None,
    ) -> None:
        self.store = store
        self.manager = manager
        self.events = events
        self.settings = settings
        self.run_id_lookup = run_id_lookup
        self._run_ids: dict[tuple[str, str], str] = {}

    # -- experiments -----------------------------------------------------------------

    def create(
        self, caller: Caller, namespace: str, body: Any, *, dry_run: bool = False
    ) -> dict[str, Any]:
        """Store and start an Experiment (Katib object as a mapping); 409 if the name is
        taken, 422 with every field error. ``dry_run`` (Kubernetes' ``dryRun=All``):
        every check, nothing stored; the answer is the Experiment with its defaults."""
        experiment, base_dir = self._parse(caller, namespace, body)
        md = experiment.metadata
        if dry_run:
            if self.store.get_experiment(namespace, md.name) is not None:
                raise Conflict(f'experiments "{md.name}" already exists in namespace {namespace}')
            return experiment.to_dict()
        try:
            record = self.store.create_experiment(
                namespace,
                md.name,
                experiment.to_dict(),
                str(base_dir) if base_dir else None,
                self.settings.backend,
                owner=OWNER,
            )
        except ExperimentExists:
            raise Conflict(
                f'experiments "{md.name}" already exists in namespace {namespace}'
            ) from None
        self.manager.start(record)
        return self._object(record)

    def replace(self, caller: Caller, namespace: str, name: str, body: Any) -> dict[str, Any]:
        """The whole Experiment again (``PUT``, what ``kubectl apply`` sends): validated as
        a new one, then compared with the stored spec (defaults filled in on both sides).
        Only Katib's editable budget may differ, and is then applied as :meth:`patch`
        applies it; any other changed field is a 422 naming it, never silently dropped."""
        record = self._record(caller, namespace, name)
        stored_dir = Path(record.base_dir) if record.base_dir else None
        experiment, _ = self._parse(caller, namespace, body, fallback_base_dir=stored_dir)
        if experiment.metadata.name != name:
            raise Invalid(
                "the Experiment is invalid",
                [
                    FieldProblem(
                        "metadata.name",
                        f"{experiment.metadata.name!r} does not match the name in the URL "
                        f"({name!r})",
                    )
                ],
            )
        given = experiment.to_dict()
        old, new = record.spec.get("spec") or {}, given.get("spec") or {}
        changed = sorted(k for k in {*old, *new} if old.get(k) != new.get(k))
        fixed = [f"spec.{k}" for k in changed if k not in EDITABLE]
        # Labels and annotations are the stored ones too (the base-dir annotation aside:
        # a client sends it where it read the file); a change is said, not dropped.
        for key in ("labels", "annotations"):
            had = _metadata_map(record.spec, key)
            if had != _metadata_map(given, key):
                fixed.append(f"metadata.{key}")
        if fixed:
            editable = ", ".join(f"spec.{k}" for k in EDITABLE)
            raise Invalid(
                f"experiment {namespace}/{name}: fields that cannot change were changed",
                [
                    FieldProblem(
                        path,
                        f"may not change (only {editable} may); delete the experiment and "
                        "create it again to change it",
                    )
                    for path in fixed
                ],
            )
        if not changed:
            return self._object(record)
        return self.patch(caller, namespace, name, {"spec": {k: new.get(k) for k in changed}})

    def _parse(
        self,
        caller: Caller,
        namespace: str,
        body: Any,
        fallback_base_dir: Path | None = None,
    ) -> tuple[Experiment, Path | None]:
        """An Experiment request body checked as :meth:`create` takes it (422 with every
        field error), with the folder its relative paths resolve against (its annotation,
        else ``fallback_base_dir``: a stored experiment's, for a replace)."""
        caller.authorize(namespace)
        if not isinstance(body, dict):
            raise Invalid("an Experiment must be a mapping (a YAML or JSON object)")
        problems: list[FieldProblem] = []
        metadata = body.get("metadata")
        if isinstance(metadata, dict):
            given = metadata.get("namespace")
            if given is not None and given != namespace:
                problems.append(
                    FieldProblem(
                        "metadata.namespace",
                        f"{shown(given)} does not match the namespace of the request ({namespace!r})",
                    )
                )
            problems += check_dns_label(metadata.get("name"), "metadata.name")
            body = {**body, "metadata": {**metadata, "namespace": namespace}}
        base_dir = base_dir_of(body, problems) or fallback_base_dir
        try:
            experiment = parse_experiment(body, base_dir=base_dir)
        except SpecError as exc:
            paths = {p.path for p in problems}
            problems += [FieldProblem(e.path, e.message) for e in exc.errors if e.path not in paths]
        if not problems and base_dir is None:
            problems += self._relative_command(experiment)
        if problems:
            raise Invalid("the Experiment is invalid", problems)
        return experiment, base_dir

    def _relative_command(self, experiment: Experiment) -> list[FieldProblem]:
        """A trial command that is not found from the server's own folder, sent without the
        folder it is relative to (a client that read a file sends it): refused now rather
        than failing at start, saying what to send."""
        from tuner.backends import backend_problems

        found = backend_problems(self.settings.backend, experiment, self.settings)
        return [
            FieldProblem(
                f"metadata.annotations[{BASE_DIR_ANNOTATION}]",
                f"required here: {problem.removeprefix('trial command: ')} (the server's "
                "folder); send the folder the command is relative to (hyperflow create -f "
                "and Client.create_experiment(Path(...)) do), or use absolute paths",
            )
            for problem in found
            if problem.startswith("trial command: ")
        ]

    def list(
        self,
        caller: Caller,
        namespace: str | None,
        *,
        phase: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
    ) -> paging.Page:
        """Experiments of ``namespace`` (None: every namespace the caller may see)."""
        if namespace is not None:
            caller.authorize(namespace)
            namespaces: frozenset[str] | None = frozenset({namespace})
        else:
            namespaces = caller.visible()
        if phase is not None and phase not in _PHASES:
            raise BadRequest(f"phase must be one of {', '.join(sorted(_PHASES))}; got {phase!r}")
        version = self.events.resource_version()
        query = ("experiments", namespace, phase)
        offset, limit = paging.start(limit, continue_, query)
        records, more = page_experiments(
            self.store, sorted(namespaces) if namespaces is not None else None, phase, offset, limit
        )
        items = [self._object(r) for r in records]
        return paging.Page(items, paging.next_token(offset, len(items), more, query), version)

    def get(self, caller: Caller, namespace: str, name: str) -> dict[str, Any]:
        return self._object(self._record(caller, namespace, name))

    def patch(self, caller: Caller, namespace: str, name: str, patch: Any) -> dict[str, Any]:
        """JSON merge patch of Katib's editable budget: ``spec.maxTrialCount``,
        ``spec.parallelTrialCount``, ``spec.maxFailedTrialCount`` (null removes a limit).
        Raising ``maxTrialCount`` of an experiment that Succeeded because it reached it
        restarts it, if its ``resumePolicy`` is LongRunning or FromVolume (Katib's rule)."""
        record = self._record(caller, namespace, name)
        changes = _budget_patch(patch)
        new_spec = {**record.spec, "spec": {**record.spec["spec"]}}
        for key, value in changes.items():
            if value is None:
                new_spec["spec"].pop(key, None)
            else:
                new_spec["spec"][key] = value
        try:
            experiment = parse_experiment(new_spec)
        except SpecError as exc:
            raise Invalid(
                "the patched Experiment is invalid",
                [FieldProblem(e.path, e.message) for e in exc.errors],
            ) from None
        spec = experiment.spec
        if new_spec["spec"] == record.spec["spec"]:
            return self._object(record)
        restart = False
        if record.phase.finished:
            if not (
                record.reason == ExperimentReason.MAX_TRIALS_REACHED.value
                and spec.resume_policy in (ResumePolicy.LONG_RUNNING, ResumePolicy.FROM_VOLUME)
            ):
                raise Invalid(
                    "the experiment has finished",
                    [
                        FieldProblem(
                            "spec.resumePolicy",
                            "an experiment can be restarted only if it succeeded by reaching "
                            "maxTrialCount and spec.resumePolicy is LongRunning or FromVolume",
                        )
                    ],
                )
            restart = True
            if record.owner != OWNER:
                raise Conflict(
                    f"experiment {namespace}/{name} was run by `hyperflow experiment run`; "
                    "run it there again to resume it"
                )
            trials = len(trial_phases(self.store, record.uid))
            if spec.max_trial_count is not None and spec.max_trial_count <= trials:
                raise Invalid(
                    "maxTrialCount too low to restart",
                    [
                        FieldProblem(
                            "spec.maxTrialCount", f"must be greater than status.trials ({trials})"
                        )
                    ],
                )
        self.store.set_spec(record.uid, experiment.to_dict())
        controller = self.manager.controller(namespace, name)
        if controller is not None:
            controller.set_trial_counts(
                max_trial_count=spec.max_trial_count,
                parallel_trial_count=spec.parallel_trial_count,
                max_failed_trial_count=spec.max_failed_trial_count,
            )
        if restart:
            self.store.set_experiment_phase(
                record.uid,
                ExperimentPhase.RESTARTING,
                "ExperimentRestarting",
                "Experiment is restarting",
            )
            self.manager.start(self.store.get_experiment_by_uid(record.uid))
        updated = self.store.get_experiment_by_uid(record.uid)
        self.events.publish(
            MODIFIED,
            "Experiment",
            namespace,
            name,
            reason="ExperimentBudgetChanged",
            message=", ".join(f"{k}={v}" for k, v in changes.items()),
            status={"phase": updated.phase.value},
        )
        return self._object(updated)

    def delete(self, caller: Caller, namespace: str, name: str) -> dict[str, Any]:
        """Stop the controller (running trials are killed) and delete the experiment, its
        trials and their folders. MLflow runs are kept."""
        record = self._record(caller, namespace, name)
        obj = self._object(record)
        if self.manager.is_running(namespace, name):
            if not self.manager.stop(namespace, name):
                raise Unavailable(f"experiment {namespace}/{name} is still stopping; try again")
        elif (
            record.controller_pid and not record.phase.finished and pid_alive(record.controller_pid)
        ):
            raise Conflict(
                f"experiment {namespace}/{name} is being run by process {record.controller_pid} "
                "(hyperflow experiment run); stop it first"
            )
        elif not record.phase.finished:
            # No controller runs it (its process was killed): what its trials still run is
            # stopped, as `hyperflow experiment delete` does.
            from tuner.backends import stop_leftovers

            dirs = [Path(t.trial_dir) for t in self.store.trials(record.uid)]
            experiment = Experiment.model_validate(record.spec)
            problem = stop_leftovers(record.backend, self.settings, experiment, record.uid, dirs)
            if problem is not None:
                log.warning("deleting experiment %s/%s: %s", namespace, name, problem)
        self.store.delete_experiment(record.uid)
        shutil.rmtree(self.settings.home / "experiments" / namespace / name, ignore_errors=True)
        self.events.publish(DELETED, "Experiment", namespace, name, reason="ExperimentDeleted")
        return obj

    def best(self, caller: Caller, namespace: str, name: str) -> dict[str, Any]:
        """Katib's currentOptimalTrial, its MLflow run and the storage URIs of what the
        trial saved (``runs:/<run id>/<entry>``), as ``experiment best`` prints them."""
        saved = self.best_saved(caller, namespace, name)
        out: dict[str, Any] = {"currentOptimalTrial": optimal_trial_object(saved.trial)}
        out.update(storage_uris(saved))
        return out

    def best_saved(self, caller: Caller, namespace: str, name: str) -> BestSaved:
        """The best trial, its MLflow run and what it saved under its artifacts folder."""
        record = self._record(caller, namespace, name)
        return self._saved(record, self._best(record))

    def trial_saved(self, caller: Caller, namespace: str, name: str, trial: str) -> BestSaved:
        """One trial, its MLflow run and what it saved, as for the best."""
        record = self._record(caller, namespace, name)
        return self._saved(record, self._trial(record, trial))

    def _saved(self, record: ExperimentRecord, trial: TrialRecord | None) -> BestSaved:
        run_id = None if trial is None else self._run_id(record, trial)
        folder = Path(trial.trial_dir, "artifacts") if trial is not None else None
        entries = sorted(p.name for p in folder.iterdir()) if folder and folder.is_dir() else []
        return BestSaved(record, trial, run_id, folder, entries)

    # -- trials ----------------------------------------------------------------------

    def list_trials(
        self,
        caller: Caller,
        namespace: str,
        name: str,
        *,
        phase: str | None = None,
        sort: str | None = None,
        order: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
    ) -> paging.Page:
        """Trials in creation order, or ``sort="objective"`` (best first by default;
        ``order`` asc/desc), optionally of one ``phase``; paged."""
        record = self._record(caller, namespace, name)
        if phase is not None and phase not in _TRIAL_PHASES:
            raise BadRequest(
                f"phase must be one of {', '.join(sorted(_TRIAL_PHASES))}; got {phase!r}"
            )
        if sort not in (None, "objective", "creation"):
            raise BadRequest(f"sort must be objective or creation; got {sort!r}")
        if order not in (None, "asc", "desc"):
            raise BadRequest(f"order must be asc or desc; got {order!r}")
        by_objective = sort == "objective"
        if order is None:
            maximize = _objective_type(record) is ObjectiveType.MAXIMIZE
            descending = by_objective and maximize
        else:
            descending = order == "desc"
        version = self.events.resource_version()
        query = ("trials", namespace, name, phase, sort, order)
        offset, limit = paging.start(limit, continue_, query)
        trials, more = page_trials(
            self.store,
            record.uid,
            phase=phase,
            by_objective=by_objective,
            descending=descending,
            offset=offset,
            limit=limit,
        )
        items = [trial_object(record, t) for t in trials]
        return paging.Page(items, paging.next_token(offset, len(items), more, query), version)

    def get_trial(self, caller: Caller, namespace: str, name: str, trial: str) -> dict[str, Any]:
        """The Trial with its observation log (every value with its step and time), the
        reason of its phase and its MLflow run id."""
        record = self._record(caller, namespace, name)
        t = self._trial(record, trial)
        obj = trial_object(record, t)
        obj["status"]["observationLog"] = {
            "metricLogs": [
                {
                    "timeStamp": rfc3339(o.timestamp),
                    "metric": {"name": o.name, "value": repr(o.value)},
                    "step": o.step,
                }
                for o in self.store.observations(t.id)
            ]
        }
        obj["status"]["exitCode"] = t.exit_code
        obj["status"]["mlflowRunId"] = self._run_id(record, t)
        return obj

    def trial_log(self, caller: Caller, namespace: str, name: str, trial: str) -> TrialLog:
        record = self._record(caller, namespace, name)
        t = self._trial(record, trial)

        def running() -> bool:
            current = self.store.get_trial(record.uid, trial)
            return current is not None and not current.phase.finished

        return TrialLog(Path(t.trial_dir) / "trial.log", running)

    def push_trial(self, namespace: str, name: str, trial: str, token: str | None) -> TrialRecord:
        """The trial a push is for, after checking its push token (401 otherwise): the
        API asks this before it reads the body; without the trial's own token nothing
        (not even whether the experiment exists) is told."""
        if token is None:
            raise Unauthorized("the trial's push token is required as the bearer token")
        record = self.store.get_experiment(namespace, name)
        t = self.store.get_trial(record.uid, trial) if record is not None else None
        if t is None or not hmac.compare_digest(t.push_token.encode(), token.encode()):
            raise Unauthorized("bad push token for this trial")
        return t

    def push(
        self, namespace: str, name: str, t: TrialRecord, payload: Any, key: str | None
    ) -> dict[str, Any]:
        """A trial's ``report()`` for ``t``, the trial :meth:`push_trial` checked the push
        token of (before the body was read; the controller checks it again as it stores):
        committed before the answer, stored once per ``Idempotency-Key`` (a retry answers
        ``{"accepted": 0, "duplicate": true}``). 503 while the experiment's controller is
        not running here (a restart is under way): ``report()`` retries."""
        from tuner.metrics.push import parse_observations

        trial = t.name
        if t.phase.finished:
            raise NotFound(f"trial {trial!r} has finished")
        controller = self.manager.controller(namespace, name)
        if controller is None:
            raise Unavailable(f"experiment {namespace}/{name} is not running yet; retry")
        try:
            observations = parse_observations(payload, _now())
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        try:
            stored = controller.push(trial, t.push_token, observations, key)
        except KeyError:
            # Stored as not finished, yet not running in this controller: one that has just
            # started and is adopting its trials (a server restart), or a trial whose launch
            # is being recorded. A 404 failed the trial; report() retries a 503.
            raise Unavailable(
                f"trial {trial!r} of experiment {namespace}/{name} is not adopted yet; retry"
            ) from None
        except PermissionError:
            raise Unauthorized("bad push token for this trial") from None
        except Exception as exc:  # the store could not commit: not stored, retry
            log.warning("push for %s/%s/%s not stored: %s", namespace, name, trial, exc)
            raise Unavailable(f"observations not stored: {exc}") from None
        if not stored:
            return {"accepted": 0, "duplicate": True}
        return {"accepted": len(observations)}

    # -- helpers ---------------------------------------------------------------------

    def record(self, caller: Caller, namespace: str, name: str) -> ExperimentRecord:
        """The stored experiment, after the caller's namespace check (404 if none)."""
        return self._record(caller, namespace, name)

    def _record(self, caller: Caller, namespace: str, name: str) -> ExperimentRecord:
        caller.authorize(namespace)
        record = self.store.get_experiment(namespace, name)
        if record is None:
            raise NotFound(f'experiments "{name}" not found in namespace {namespace}')
        return record

    def _trial(self, record: ExperimentRecord, trial: str) -> TrialRecord:
        t = self.store.get_trial(record.uid, trial)
        if t is None:
            raise NotFound(
                f'trials "{trial}" not found in experiment {record.namespace}/{record.name}'
            )
        return t

    def _best(self, record: ExperimentRecord) -> TrialRecord | None:
        maximize = _objective_type(record) is ObjectiveType.MAXIMIZE
        return best_trial(self.store, record.uid, maximize)

    def _object(self, record: ExperimentRecord) -> dict[str, Any]:
        phases = trial_phases(self.store, record.uid)
        status = status_of(record, optimal_trial_object(self._best(record)), phases)
        return object_of(record, status)

    def _run_id(self, record: ExperimentRecord, trial: TrialRecord) -> str | None:
        cache_key = (record.uid, trial.name)
        cached = self._run_ids.get(cache_key)
        if cached is not None:
            return cached
        run_id = None
        controller = self.manager.controller(record.namespace, record.name)
        if controller is not None:
            run_id = controller.tracker.run_id(trial.name)
        if run_id is None and self.run_id_lookup is not None:
            try:
                experiment = Experiment.model_validate(record.spec)
                run_id = self.run_id_lookup(experiment, record.uid, trial.name)
            except Exception as exc:  # MLflow unreachable: the rest of the answer stands
                log.warning("MLflow run of %s not found: %s", trial.name, exc)
        if run_id is not None:
            self._run_ids[cache_key] = run_id
        return run_id


def _budget_patch(patch: Any) -> dict[str, int | None]:
    problems: list[FieldProblem] = []
    if not isinstance(patch, dict):
        raise Invalid("a merge patch must be a JSON object")
    for key in patch:
        if key != "spec":
            problems.append(
                FieldProblem(
                    str(key),
                    "only spec.parallelTrialCount, spec.maxTrialCount and spec.maxFailedTrialCount are editable",
                )
            )
    spec = patch.get("spec", {})
    if not isinstance(spec, dict):
        problems.append(FieldProblem("spec", "must be an object"))
        spec = {}
    changes: dict[str, int | None] = {}
    for key, value in spec.items():
        if key not in EDITABLE:
            problems.append(
                FieldProblem(
                    f"spec.{key}",
                    "only spec.parallelTrialCount, spec.maxTrialCount and "
                    "spec.maxFailedTrialCount are editable",
                )
            )
        elif value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            problems.append(
                FieldProblem(f"spec.{key}", f"must be an integer or null; got {shown(value)}")
            )
        elif value is None and key == "parallelTrialCount":
            problems.append(FieldProblem("spec.parallelTrialCount", "cannot be removed"))
        else:
            changes[key] = value
    if problems:
        # The headline names the problem: a field that is not editable, or a bad value.
        editable = all(p.path.startswith("spec.") and p.path[5:] in EDITABLE for p in problems)
        headline = (
            "the patch is invalid"
            if editable
            else "only the trial budget of an experiment can be changed"
        )
        raise Invalid(headline, problems)
    if not changes:
        raise Invalid(
            "nothing to change: patch spec.maxTrialCount, spec.parallelTrialCount or "
            "spec.maxFailedTrialCount"
        )
    return changes


def _objective_type(record: ExperimentRecord) -> ObjectiveType:
    return ObjectiveType(record.spec["spec"]["objective"]["type"])


def _now() -> float:
    import time

    return time.time()


def _metadata_map(obj: dict[str, Any], key: str) -> dict[str, Any]:
    """An object's ``metadata.labels`` / ``metadata.annotations``, without the base-dir
    annotation (where a client read the file, not part of what it asks for)."""
    found = dict((obj.get("metadata") or {}).get(key) or {})
    found.pop(BASE_DIR_ANNOTATION, None)
    return found
