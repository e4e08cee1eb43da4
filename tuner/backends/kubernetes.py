"""``KubernetesBackend``: each trial a Kubernetes object made from the trialSpec, as Katib.

What a trial is on the cluster:

* the experiment's ``trialTemplate.trialSpec`` (a batch/v1 Job, or any kind: a Kubeflow
  training job, an Argo Workflow...) with ``${trialParameters.X}`` and ``${trialSpec.Name}``
  & co. substituted, named after the trial, in the backend's namespace (the service
  account's when the server runs in a cluster);
* labelled as Katib labels trial jobs: ``katib.kubeflow.org/experiment`` and
  ``katib.kubeflow.org/trial`` on the object and on every pod template in it (so its pods
  carry them too), plus ``app.kubernetes.io/managed-by: hyperflow``; annotated with its
  owner (``hyperflow.io/owner: <namespace>/<experiment>/<trial>``: there is no Trial
  custom resource to be an ownerReference);
* the primary container (``primaryContainerName``, or the only one) runs the trial's
  argv (``run.command``: the controller's rendering of its command + args) and gets the
  trial's environment (``KATIB_TRIAL_NAME``, ``HYPERFLOW_TRIAL_NAME``, the push URL and
  token).

Chosen by name (``--backend kubernetes``, ``HYPERFLOW_BACKEND``): :func:`create` finds the
cluster as kubectl does (:class:`serving.kube.client.KubeClient`) and puts the trials in
``settings.kube_namespace`` or the client's namespace. Function trials are refused.

Status: one list+watch per backend on the trial kind and one on pods, both selected by
the experiment's label (an informer, as a Kubernetes controller has), so ``poll`` reads
memory. A trial has ended when ``failureCondition`` (checked first, as Katib) or
``successCondition`` holds (GJSON, :mod:`tuner.backends._conditions`; Katib's defaults
for a Job: its ``Failed``/``Complete`` condition is ``True``). The exit code and message
come from the primary pod's primary container (``exit code 3: <last log line>``,
``ContainerCannotRun: exec: "foo": executable file not found``), else the condition's.

Logs: the primary container's log (of each pod the trial's primary pods ran in turn) is
followed from the API and appended to the trial's local ``trial.log``, which the StdOut
collector reads as for a local process: no shared disk. Push metrics need the control
plane's URL (``hyperflow server``); File and TensorFlowEvent collectors read files inside
the pod and are refused at launch with a message saying so.

``kill`` deletes the object with ``propagationPolicy: Background`` (its pods go with it);
``adopt`` (a restarted controller) finds the trial's object by its labels and re-reads
its log from the start, skipping the observations already stored; ``release`` deletes a
finished trial's object unless ``trialTemplate.retain`` is true, as Katib.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from serving.kube.client import (
    AlreadyExists,
    Gone,
    KubeClient,
    KubeError,
    LogStream,
    Unavailable,
    Watch,
)
from tuner.backends._conditions import compile_condition, evaluate
from tuner.backends.base import KILLED, TrialBackend, TrialExit, TrialRun
from tuner.backends.local import _last_line
from tuner.metrics import Collector, NullCollector, make_collector
from tuner.spec.defaults import JOB_FAILURE_CONDITION, JOB_SUCCESS_CONDITION
from tuner.spec.models import Experiment, MetricsCollectorKind
from tuner.trial_template import TemplateError, primary_container, render_trial_spec
from tuner.types import Observation

if TYPE_CHECKING:
    from tuner.settings import TunerSettings

EXPERIMENT_LABEL = "katib.kubeflow.org/experiment"
TRIAL_LABEL = "katib.kubeflow.org/trial"
MANAGED_BY = ("app.kubernetes.io/managed-by", "hyperflow")
OWNER_ANNOTATION = "hyperflow.io/owner"
LOG_NAME = "trial.log"
# Local paths mean nothing inside a pod.
_LOCAL_ONLY_ENV = {"HYPERFLOW_PUSH_URL_FILE", "HYPERFLOW_TRIAL_DIR", "HYPERFLOW_ARTIFACTS_DIR"}


@dataclass(eq=False)
class _Trial:
    run: TrialRun
    collector: Collector
    log_path: Path
    exit: TrialExit | None = None
    finished_at: float | None = None  # the object's condition seen (monotonic)
    killed: bool = False
    owned: bool = False  # its object on the cluster is this trial's (created or adopted)
    followed: dict[str, _Follower] = field(default_factory=dict)  # pod name -> follower


@dataclass(eq=False)
class _Follower:
    """Appends one pod's primary container log to the trial's log file."""

    pod: str
    thread: threading.Thread | None = None
    stream: LogStream | None = None
    done: threading.Event = field(default_factory=threading.Event)
    closed: bool = False

    def close(self) -> None:
        self.closed = True
        if self.stream is not None:
            self.stream.close()


class _Informer:
    """A list+watch of one kind by label selector, kept in memory (objects by name)."""

    def __init__(
        self,
        client: KubeClient,
        api_version: str,
        kind: str,
        namespace: str,
        selector: str,
        changed: Callable[[], None],
    ) -> None:
        self.client, self.api_version, self.kind = client, api_version, kind
        self.namespace, self.selector, self.changed = namespace, selector, changed
        self.objects: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.synced = threading.Event()
        self.error: str | None = None
        # The API refuses this watch for good (401/403: credentials or RBAC; 404: the kind
        # is not served): trials cannot be followed, and poll says so.
        self.fatal: str | None = None
        self._stop = False
        self._watch: Watch | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"kube-informer-{kind.lower()}", daemon=True
        )
        self._thread.start()

    def put(self, obj: dict[str, Any]) -> None:
        """An object this process just wrote (the watch confirms it later)."""
        with self.lock:
            name = obj["metadata"]["name"]
            known = self.objects.get(name)
            if known is None or _rv(known) <= _rv(obj):
                self.objects[name] = obj

    def get(self, name: str) -> dict[str, Any] | None:
        with self.lock:
            return self.objects.get(name)

    def where(self, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        with self.lock:
            return [o for o in self.objects.values() if predicate(o)]

    def _run(self) -> None:
        delay = 0.1
        while not self._stop:
            try:
                listed = self.client.list(
                    self.api_version, self.kind, self.namespace, label_selector=self.selector
                )
                fresh = {o["metadata"]["name"]: o for o in listed.items}
                with self.lock:
                    # Keep what this process wrote after the list was taken.
                    listed_at = int(listed.resource_version or 0)
                    for name, obj in self.objects.items():
                        if name not in fresh and _rv(obj) > listed_at:
                            fresh[name] = obj
                    self.objects = fresh
                self.error = self.fatal = None
                self.synced.set()
                self.changed()
                version = listed.resource_version
                while not self._stop:
                    self._watch = self.client.watch(
                        self.api_version,
                        self.kind,
                        self.namespace,
                        label_selector=self.selector,
                        resource_version=version,
                        timeout_seconds=300,
                    )
                    if self._stop:
                        self._watch.close()
                        return
                    for event in self._watch:
                        version = _rv_text(event.object) or version
                        if event.type == "BOOKMARK":
                            continue
                        name = event.object.get("metadata", {}).get("name")
                        with self.lock:
                            if event.type == "DELETED":
                                self.objects.pop(name, None)
                            else:
                                self.objects[name] = event.object
                        self.changed()
                delay = 0.1
            except Gone:
                continue  # list again
            except Exception as exc:  # the thread must outlive any answer
                if self._stop:
                    return
                self.error = f"{type(exc).__name__}: {exc}"
                if isinstance(exc, KubeError) and exc.status in (401, 403, 404):
                    self.fatal = f"cannot list and watch {self.kind}s: {exc}"
                    self.changed()
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def stop(self) -> None:
        self._stop = True
        if self._watch is not None:
            self._watch.close()
        self._thread.join(10)


def _rv(obj: dict[str, Any]) -> int:
    try:
        return int(obj.get("metadata", {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _rv_text(obj: dict[str, Any]) -> str | None:
    value = obj.get("metadata", {}).get("resourceVersion")
    return str(value) if value else None


def _pod_templates(node: Any) -> list[dict[str, Any]]:
    """Every pod template in an object (``...template: {metadata, spec: {containers}}``)."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        template = node.get("template")
        if isinstance(template, dict) and isinstance(
            (template.get("spec") or {}).get("containers"), list
        ):
            found.append(template)
        for key, value in node.items():
            if key != "template":
                found.extend(_pod_templates(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_pod_templates(item))
    return found


class KubernetesBackend(TrialBackend):
    """Runs an experiment's trials as Kubernetes objects (see the module docstring).

    ``client``: a :class:`serving.kube.client.KubeClient` (default: kubectl's way of
    finding the cluster: in-cluster service account, else the kubeconfig); ``namespace``:
    where trials run (default: the client's). One backend per experiment run.
    """

    kind = "kubernetes"
    runs_images = True

    def __init__(
        self,
        experiment: Experiment,
        *,
        client: KubeClient | None = None,
        namespace: str | None = None,
        finish_grace: float = 30.0,
    ) -> None:
        template = experiment.spec.trial_template
        if template is None or template.trial_spec is None:
            raise ValueError(
                "spec.trialTemplate.trialSpec: the kubernetes backend runs a trialSpec "
                "(a batch/v1 Job or another kind); trialTemplate.command runs only locally"
            )
        spec = template.trial_spec
        self.api_version = str(spec.get("apiVersion") or "")
        self.object_kind = str(spec.get("kind") or "")
        if not self.api_version or not self.object_kind:
            raise ValueError("spec.trialTemplate.trialSpec: apiVersion and kind are required")
        is_job = (self.api_version, self.object_kind) == ("batch/v1", "Job")
        success = template.success_condition or (JOB_SUCCESS_CONDITION if is_job else None)
        failure = template.failure_condition or (JOB_FAILURE_CONDITION if is_job else None)
        if success is None or failure is None:
            raise ValueError(
                "spec.trialTemplate.successCondition and failureCondition: required for a "
                f"trialSpec of kind {self.object_kind} (Katib's defaults cover a batch/v1 Job and the Kubeflow training jobs)"
            )
        try:
            self._success = compile_condition(success)
            self._failure = compile_condition(failure)
        except ValueError as exc:
            raise ValueError(f"spec.trialTemplate: {exc}") from None
        self.experiment = experiment
        self.retain = template.retain
        self.primary_labels = dict(template.primary_pod_labels or {})
        self.primary_container = template.primary_container_name
        self._own_client = client is None
        self.client = client if client is not None else KubeClient(namespace=namespace)
        self.namespace = namespace or self.client.namespace
        self.finish_grace = finish_grace
        self._trials: dict[str, _Trial] = {}
        self._changed = threading.Event()
        selector = f"{EXPERIMENT_LABEL}={experiment.metadata.name}"
        self._objects = _Informer(
            self.client, self.api_version, self.object_kind, self.namespace, selector, self._wake
        )
        self._pods = _Informer(self.client, "v1", "Pod", self.namespace, selector, self._wake)

    def prestart(self, count: int | None = None) -> None:
        # The API server must answer before any trial is created: one that does not is
        # said at once, not as every trial "refused".
        from tuner.backends import BackendError

        try:
            self.client.version()
        except Unavailable as exc:
            raise BackendError(
                f"backend: kubernetes: no answer from the API server: {exc}"
            ) from None

    def delete_leftovers(self, experiment_uid: str, trial_dirs: list[Path]) -> None:
        # Its trials' objects, by the experiment's label (what Katib's garbage collection
        # of a deleted Experiment's Trials does).
        name = self.experiment.metadata.name
        listed = self.client.list(
            self.api_version,
            self.object_kind,
            self.namespace,
            label_selector=f"{EXPERIMENT_LABEL}={name}",
        )
        for obj in listed.items:
            self.client.delete(
                self.api_version, self.object_kind, obj["metadata"]["name"], self.namespace
            )

    def problems(self, experiment: Experiment) -> list[str]:
        return problems(experiment)

    def _wake(self) -> None:
        self._changed.set()

    # -- rendering ---------------------------------------------------------------------------

    def render(self, run: TrialRun) -> dict[str, Any]:
        """The object a trial is on the cluster (module docstring)."""
        obj = render_trial_spec(self.experiment, run.trial_name, run.assignments)
        labels = {
            EXPERIMENT_LABEL: run.experiment_name,
            TRIAL_LABEL: run.trial_name,
            MANAGED_BY[0]: MANAGED_BY[1],
        }
        meta = obj.setdefault("metadata", {})
        meta["name"] = run.trial_name
        meta["namespace"] = self.namespace
        meta.pop("generateName", None)
        meta["labels"] = {**(meta.get("labels") or {}), **labels}
        meta["annotations"] = {
            **(meta.get("annotations") or {}),
            OWNER_ANNOTATION: f"{self.experiment.metadata.namespace}/"
            f"{run.experiment_name}/{run.trial_name}",
        }
        for template in _pod_templates(obj):
            pod_meta = template.setdefault("metadata", {})
            pod_meta["labels"] = {**(pod_meta.get("labels") or {}), **labels}
        container = primary_container(obj, self.primary_container)
        if run.command is not None and not run.entrypoint and container.get("command"):
            # The controller's rendering of this container's command + args (the same
            # substitution): the pod runs exactly the trial's argv. A container without
            # ``command`` stays as written (its args substituted above): the image's
            # entrypoint runs.
            container["command"] = list(run.command)
            container.pop("args", None)
        env = [e for e in container.get("env") or [] if isinstance(e, dict)]
        present = {e.get("name") for e in env}
        trial_env = {
            "HYPERFLOW_TRIAL_NAME": run.trial_name,
            "HYPERFLOW_EXPERIMENT_NAME": run.experiment_name,
            **run.env,
        }
        for key, value in trial_env.items():
            if key not in present and key not in _LOCAL_ONLY_ENV:
                env.append({"name": key, "value": value})
        container["env"] = env
        return obj

    # -- TrialBackend ------------------------------------------------------------------------

    def launch(self, run: TrialRun) -> None:
        if run.trial_name in self._trials:
            raise ValueError(f"trial {run.trial_name} is already known to this backend")
        trial = self._new_trial(run)
        if trial.exit is not None:
            return
        trial.log_path.write_bytes(b"")
        try:
            obj = self.render(run)
        except TemplateError as exc:
            self._fail(trial, str(exc))
            return
        try:
            created = self._create(obj)
        except AlreadyExists:
            # A controller that died between creating it and recording the launch.
            existing = self.client.find(
                self.api_version, self.object_kind, run.trial_name, self.namespace
            )
            if (
                existing is None
                or (existing["metadata"].get("labels") or {}).get(TRIAL_LABEL) != run.trial_name
            ):
                self._fail(
                    trial,
                    f"a {self.object_kind} named {run.trial_name} already exists in namespace "
                    f"{self.namespace} and is not this trial's",
                )
                return
            created = existing
        except Unavailable as exc:
            self._fail(
                trial, f"no answer from the API server for the trial's {self.object_kind}: {exc}"
            )
            return
        except KubeError as exc:
            self._fail(trial, f"the API server refused the trial's {self.object_kind}: {exc}")
            return
        trial.owned = True
        self._objects.put(created)

    LAUNCH_RETRIES = (0.5, 1.0, 2.0)  # seconds between tries while the API server is silent

    def _create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create ``obj``, trying again a few times when no answer came (a moment's outage
        is no reason to fail a trial; a refusal is)."""
        for delay in self.LAUNCH_RETRIES:
            try:
                return self.client.create(obj, self.namespace)
            except Unavailable:  # a refusal (AlreadyExists included) is not retried
                time.sleep(delay)
        return self.client.create(obj, self.namespace)

    def poll(self, trial_name: str) -> TrialExit | None:
        trial = self._trials[trial_name]
        if trial.exit is None:
            trial.exit = self._poll(trial)
        return trial.exit

    def collect(self, trial_name: str) -> list[Observation]:
        trial = self._trials[trial_name]
        if trial.exit is None:
            self._follow_logs(trial)
        return trial.collector.collect(final=trial.exit is not None)

    def kill(self, trial_name: str) -> None:
        trial = self._trials.get(trial_name)
        if trial is None or trial.exit is not None or trial.killed:
            return
        trial.killed = True
        if not trial.owned:
            return
        with contextlib.suppress(KubeError):  # already gone, or the API is away: poll says
            self.client.delete(
                self.api_version,
                self.object_kind,
                trial_name,
                self.namespace,
                propagation="Background",
            )
        self._changed.set()

    def adopt(self, run: TrialRun, skip_observations: int) -> None:
        if run.trial_name in self._trials:
            raise ValueError(f"trial {run.trial_name} is already known to this backend")
        trial = self._new_trial(run)
        if trial.exit is not None:
            return
        trial.collector.skip(skip_observations)
        # Read again from the pod, from its start, into a new file: a previous controller
        # that is not quite gone writes on into the old one, not into this.
        fresh = trial.log_path.with_name(trial.log_path.name + ".new")
        fresh.write_bytes(b"")
        os.replace(fresh, trial.log_path)
        try:
            found = self.client.list(
                self.api_version,
                self.object_kind,
                self.namespace,
                label_selector=f"{EXPERIMENT_LABEL}={run.experiment_name},"
                f"{TRIAL_LABEL}={run.trial_name}",
            ).items
        except KubeError as exc:
            self._fail(trial, f"lost: cannot look the trial up on the cluster: {exc}")
            return
        if not found:
            self._fail(trial, f"lost: the trial's {self.object_kind} is gone from the cluster")
            return
        trial.owned = True
        self._objects.put(found[0])

    def log_path(self, trial_name: str) -> Path:
        return self._trials[trial_name].log_path

    def release(self, trial_name: str) -> None:
        trial = self._trials.pop(trial_name, None)
        if trial is None:
            return
        for follower in trial.followed.values():
            follower.close()
        if not trial.owned:
            return
        if trial.exit is None:
            self.kill_now(trial_name)
        elif not self.retain and not trial.killed:
            with contextlib.suppress(KubeError):
                self.client.delete(
                    self.api_version,
                    self.object_kind,
                    trial_name,
                    self.namespace,
                    propagation="Background",
                )

    def kill_now(self, trial_name: str) -> None:
        with contextlib.suppress(KubeError):
            self.client.delete(
                self.api_version,
                self.object_kind,
                trial_name,
                self.namespace,
                propagation="Background",
            )

    def close(self) -> None:
        for name in list(self._trials):
            self.kill(name)
        self.detach()

    def detach(self) -> None:
        """Stop following every trial without touching them on the cluster (a controller
        that hands its experiment over: the next one ``adopt``\\ s them)."""
        for trial in self._trials.values():
            for follower in trial.followed.values():
                follower.close()
        self._trials.clear()
        self._objects.stop()
        self._pods.stop()
        if self._own_client:
            self.client.close()

    # -- optional ----------------------------------------------------------------------------

    def wait(self, timeout: float) -> None:
        """Return when the cluster reported a change (or after ``timeout`` seconds)."""
        self._changed.wait(timeout)
        self._changed.clear()

    def trial_names(self) -> list[str]:
        """Names of this experiment's trials on the cluster (by label)."""
        return sorted(
            (o["metadata"].get("labels") or {}).get(TRIAL_LABEL, "")
            for o in self._objects.where(lambda o: True)
        )

    # -- internals ---------------------------------------------------------------------------

    def _new_trial(self, run: TrialRun) -> _Trial:
        trial_dir = Path(os.path.abspath(run.trial_dir))
        trial_dir.mkdir(parents=True, exist_ok=True)
        log_path = trial_dir / LOG_NAME
        trial = _Trial(run=run, collector=NullCollector(), log_path=log_path)
        self._trials[run.trial_name] = trial
        kind = run.collector.collector.kind
        if kind not in (
            MetricsCollectorKind.STDOUT,
            MetricsCollectorKind.PUSH,
            MetricsCollectorKind.NONE,
        ):
            self._fail(
                trial,
                f"metrics collector kind {kind.value} reads files inside the trial's pod, "
                "which the kubernetes backend does not do; use StdOut or Push",
            )
            return trial
        if kind is MetricsCollectorKind.PUSH and "HYPERFLOW_PUSH_URL" not in run.env:
            self._fail(
                trial,
                "Push metrics from a pod need the control plane's URL: run the experiment "
                "through `hyperflow server` (a local push receiver is not reachable from a "
                "cluster)",
            )
            return trial
        try:
            trial.collector = make_collector(
                run.collector,
                log_path=log_path,
                trial_dir=trial_dir,
                metric_names=run.metric_names,
                env={**os.environ, **run.env},
            )
        except ValueError as exc:
            self._fail(trial, str(exc))
        return trial

    def _fail(self, trial: _Trial, message: str) -> None:
        with open(trial.log_path, "a", encoding="utf-8") as log:
            log.write(message + "\n")
        trial.exit = TrialExit(False, None, message)

    def _primary_pods(self, trial_name: str) -> list[dict[str, Any]]:
        def primary(pod: dict[str, Any]) -> bool:
            labels = pod["metadata"].get("labels") or {}
            return labels.get(TRIAL_LABEL) == trial_name and all(
                labels.get(k) == v for k, v in self.primary_labels.items()
            )

        pods = self._pods.where(primary)
        return sorted(pods, key=lambda p: (p["metadata"].get("creationTimestamp", ""), _rv(p)))

    def _container_status(self, pod: dict[str, Any]) -> dict[str, Any]:
        name = self._container_name(pod)
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if status.get("name") == name:
                return dict(status.get("state") or {})
        return {}

    def _container_name(self, pod: dict[str, Any]) -> str | None:
        containers = (pod.get("spec") or {}).get("containers") or []
        if self.primary_container:
            return self.primary_container
        return containers[0].get("name") if len(containers) == 1 else None

    def _follow_logs(self, trial: _Trial) -> None:
        for pod in self._primary_pods(trial.run.trial_name):
            name = pod["metadata"]["name"]
            if name in trial.followed:
                continue
            state = self._container_status(pod)
            if "running" not in state and "terminated" not in state:
                continue  # waiting to start: no log yet
            follower = _Follower(name)
            trial.followed[name] = follower
            follower.thread = threading.Thread(
                target=self._copy_log,
                args=(trial, follower, self._container_name(pod)),
                name=f"kube-log-{name}",
                daemon=True,
            )
            follower.thread.start()

    def _copy_log(self, trial: _Trial, follower: _Follower, container: str | None) -> None:
        try:
            follower.stream = self.client.pod_log(
                follower.pod, self.namespace, container=container, follow=True
            )
            if follower.closed:
                follower.stream.close()
                return
            with open(trial.log_path, "ab") as log:
                for chunk in follower.stream:
                    log.write(chunk)
                    log.flush()
                    self._changed.set()
        except KubeError as exc:
            if not follower.closed:
                with open(trial.log_path, "a", encoding="utf-8") as log:
                    log.write(f"[hyperflow] the log of pod {follower.pod} broke off: {exc}\n")
        finally:
            follower.done.set()
            self._changed.set()

    def _poll(self, trial: _Trial) -> TrialExit | None:
        name = trial.run.trial_name
        for informer in (self._objects, self._pods):
            if informer.fatal is not None and not trial.killed:
                return TrialExit(False, None, informer.fatal)
        if not self._objects.synced.is_set() and not trial.killed:
            return None
        self._follow_logs(trial)
        if trial.killed:  # the API server accepted the deletion: its pods go with it
            for follower in trial.followed.values():
                follower.close()
            return TrialExit(False, None, KILLED)
        obj = self._objects.get(name)
        if obj is None:
            return TrialExit(
                False,
                None,
                f"the trial's {self.object_kind} was deleted from the cluster by someone else",
            )
        failed = evaluate(self._failure, obj)
        if not failed and not evaluate(self._success, obj):
            return None
        if trial.finished_at is None:
            trial.finished_at = time.monotonic()
        # The last lines may still be on their way: wait for the followed logs to end. The
        # pod's final status comes on another watch than the object's: wait for it too,
        # so the exit code is the container's.
        pending = [f for f in trial.followed.values() if not f.done.is_set()]
        pods = self._primary_pods(name)
        unsettled = bool(pods) and "terminated" not in self._container_status(pods[-1])
        if self.object_kind == "Job" and self.api_version == "batch/v1":
            status = obj.get("status") or {}
            ran = int(status.get("succeeded") or 0) + int(status.get("failed") or 0)
            unsettled = unsettled or len(pods) < ran  # its pods' watch is behind
        if (pending or unsettled) and time.monotonic() - trial.finished_at < self.finish_grace:
            return None
        for follower in pending:
            follower.close()
        return self._exit(trial, obj, succeeded=not failed)

    def _exit(self, trial: _Trial, obj: dict[str, Any], succeeded: bool) -> TrialExit:
        code, detail = None, ""
        pods = self._primary_pods(trial.run.trial_name)
        if pods:
            terminated = self._container_status(pods[-1]).get("terminated") or {}
            if "exitCode" in terminated:
                code = int(terminated["exitCode"])
            if terminated.get("reason") not in (None, "Completed", "Error"):
                detail = f"{terminated['reason']}: {terminated.get('message', '')}".strip(": ")
        if succeeded:
            return TrialExit(True, 0 if code is None else code, f"exit code {code or 0}")
        if not detail:
            detail = _last_line(trial.log_path)
        if not detail:
            conditions = (obj.get("status") or {}).get("conditions") or []
            last: dict[str, Any] = next(
                (c for c in reversed(conditions) if c.get("status") == "True"),
                {},
            )
            detail = ": ".join(x for x in (last.get("reason"), last.get("message")) if x)
        head = f"exit code {code}" if code is not None else f"{self.object_kind} failed"
        return TrialExit(False, code, f"{head}: {detail}" if detail else head)


# A trial's object is named ``<experiment>-<8 characters>`` and that name is a label
# value (ours, and the Job's own ``job-name`` on its pods): at most 63 characters.
_LABEL_VALUE_MAX = 63
_TRIAL_SUFFIX = 9  # "-" and the suggestion's 8 characters


def problems(experiment: Experiment, settings: TunerSettings | None = None) -> list[str]:
    """Why ``experiment`` cannot run on ``kubernetes`` (``TrialBackend.problems``; also
    ``experiment validate --backend kubernetes``, which builds no backend)."""
    from tuner.runnable import local_problems

    # The command runs in the trial's image, not here; or the image's entrypoint does.
    found = local_problems(experiment, check_command_here=False, entrypoints=True)
    name = experiment.metadata.name
    longest = _LABEL_VALUE_MAX - _TRIAL_SUFFIX
    if len(name) > longest:
        found.append(
            f"metadata.name: at most {longest} characters on kubernetes (got {len(name)}): "
            f"a trial's Job is named <name>-<8 characters>, and a Job's name is a label "
            f"value of its pods (at most {_LABEL_VALUE_MAX})"
        )
    return found


def create(
    settings: TunerSettings,
    *,
    function: Callable[..., Any] | None = None,
    workers: int = 1,
    experiment: Experiment | None = None,
) -> TrialBackend:
    """The ``kubernetes`` backend of the registry: the cluster as kubectl finds it (in
    cluster: the pod's service account; else ``$KUBECONFIG`` or ``~/.kube/config``), trials
    in ``settings.kube_namespace`` (``HYPERFLOW_KUBE_NAMESPACE``), else the client's."""
    from tuner.backends import BackendError

    if function is not None:
        raise BackendError(
            "backend: kubernetes runs trials as Kubernetes objects made from the "
            "experiment's trialTemplate.trialSpec; function trials (tune()) run on the "
            "local or ray backend"
        )
    if experiment is None:
        raise BackendError("backend: kubernetes needs the experiment (its trialSpec)")
    try:
        return KubernetesBackend(experiment, namespace=settings.kube_namespace)
    except KubeError as exc:
        raise BackendError(f"backend: kubernetes: no cluster to run trials on: {exc}") from None
    except ValueError as exc:
        raise BackendError(str(exc)) from None


__all__ = [
    "EXPERIMENT_LABEL",
    "OWNER_ANNOTATION",
    "TRIAL_LABEL",
    "KubernetesBackend",
    "create",
]
