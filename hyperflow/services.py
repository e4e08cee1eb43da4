"""The inference services the control plane runs, behind its one serving router.

One thread runs one event loop (uvloop) with the router's server on ``--serving-port`` and,
per service, its revisions (:class:`serving.local.Revision`: pool, autoscaler, replica
processes). Handlers call in from their threads (:meth:`ServiceManager.apply`,
:meth:`remove`, :meth:`state`); each call runs on the loop.

Revisions and traffic, as KServe's canary rollout: each service runs its latest revision
and, while the latest has not taken all the traffic, the last revision rolled out
(``previous``). With ``canaryTrafficPercent: P`` the latest gets P% (once it is Ready, as
Knative routes only to Ready revisions) and the previous one the rest; without it (or at
100) the latest takes everything as soon as it is Ready, is recorded as rolled out, and
the previous one is drained and stopped. A latest revision that fails leaves the traffic
on the previous one.

Replica processes run in their own process groups; each one's pid and start time are
recorded in the store when it starts and dropped when it stops. A server that starts finds
the replicas a killed predecessor left (if any outlived it: the kernel SIGTERMs them when
it dies, on Linux), checks each is really such a replica (same start time, a
``serving.replica`` command line) and stops it, then starts every service again from the
store, on the same URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from hyperflow.handlers.events import MODIFIED, EventBus
from hyperflow.settings import ServerSettings
from hyperflow.store.services import ReplicaRecord, ServiceRecord, ServiceStore
from serving.local import DeployEvent, Revision, replica_argv, revision_spec
from serving.local.deployer import FAILED, READY
from serving.local.deployment import ReplicaArgv
from serving.local.revisions import DEFAULT_TICK_INTERVAL
from serving.router import RoutedService, Router, prefixed_url
from serving.spec import SpecError, parse_inference_service

log = logging.getLogger(__name__)

T = TypeVar("T")
KIND = "InferenceService"
DRAIN_TIMEOUT = 30.0


def revision_name(name: str, number: int) -> str:
    """Knative's revision names, as KServe shows them: ``NAME-predictor-00001``."""
    return f"{name}-predictor-{number:05d}"


def canary_percent(obj: dict[str, Any]) -> int | None:
    predictor = (obj.get("spec") or {}).get("predictor") or {}
    value = predictor.get("canaryTrafficPercent")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class RevisionState:
    """One running revision, for status: Knative's Ready condition (``state`` Starting /
    Ready / Failed, ``reason``), its share of requests now and as configured, replicas."""

    name: str
    number: int
    latest: bool
    state: str
    reason: str | None
    traffic: int
    configured_traffic: int
    ready: int
    starting: int
    failed: int
    desired: int
    in_flight: int
    pids: tuple[int, ...]
    scaling: str


@dataclass(frozen=True, slots=True)
class ServiceState:
    """A running service: its revisions (previous first), its Ready condition and when
    that last changed, and the latest revision that has been Ready."""

    revisions: list[RevisionState]
    ready: bool
    reason: str
    message: str
    transition: float
    latest_ready: str | None
    rolled_out: str | None


class _Service:
    """A service on the loop: its revisions and routing."""

    def __init__(self, namespace: str, name: str, uid: str) -> None:
        self.namespace = namespace
        self.name = name
        self.uid = uid
        self.version = 0
        self.latest = 0
        self.previous: int | None = None
        self.rolled_out: int | None = None
        self.percent: int | None = None
        self.revisions: dict[int, Revision] = {}
        self.routed: RoutedService | None = None
        self.problem: str | None = None  # a revision that could not be built
        self.condition: tuple[bool, str, str] | None = None
        self.transition = time.time()
        self.latest_ready: int | None = None
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


class ServiceManager:
    """Runs the stored services; thread-safe entry points, one loop inside."""

    def __init__(
        self,
        store: ServiceStore,
        settings: ServerSettings,
        events: EventBus,
        *,
        gate: Callable[[Any], Any] | None = None,
        authorize: Callable[[str, bytes | None], None] | None = None,
        argv: ReplicaArgv = replica_argv,
        tick_interval: float = DEFAULT_TICK_INTERVAL,
        replica_ports: range | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.events = events
        self.gate = gate
        self.argv = argv
        self.tick_interval = tick_interval
        self.replica_ports = replica_ports
        self.router = Router(authorize=authorize)
        self.stopped_at_start: list[int] = []
        self._services: dict[tuple[str, str], _Service] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._background: set[asyncio.Task[None]] = set()
        self._env = {
            "HYPERFLOW_HOME": str(settings.home),
            "MLFLOW_TRACKING_URI": settings.tracking_uri,
        }

    # -- thread-safe entry points ----------------------------------------------------

    def start(self) -> None:
        """Stop the replicas a previous server left, bind the serving port, start every
        stored service. Raises OSError if the port cannot be bound."""
        import uvloop

        loop = uvloop.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="serving", daemon=True)
        self._thread.start()
        try:
            self._call(self._start(), None)
        except BaseException:
            self._stop_loop()
            raise

    def shutdown(self, timeout: float = 120.0) -> None:
        """Stop every replica (by pid) and the router; the services stay in the store and
        the next start runs them again."""
        if self._loop is None:
            return
        try:
            self._call(self._shutdown(), timeout)
        finally:
            self._stop_loop()

    def running(self) -> bool:
        return self._loop is not None

    def apply(self, record: ServiceRecord) -> None:
        """Run ``record``'s revisions and route its traffic (a stale record is ignored)."""
        self._call(self._apply(record), 60)

    def remove(self, namespace: str, name: str) -> None:
        """Stop routing to the service and stop its replicas."""
        self._call(self._remove(namespace, name), DRAIN_TIMEOUT + 60)

    def state(self, namespace: str, name: str) -> ServiceState | None:
        return self.states([(namespace, name)]).get((namespace, name))

    def states(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], ServiceState]:
        if self._loop is None:
            return {}
        return self._call(self._states(list(keys)), 30)

    def public_url(self, namespace: str, name: str) -> str:
        """:meth:`base_url` as clients elsewhere reach it (``status.url``)."""
        return prefixed_url(self.settings.public_serving_url(), namespace, name)

    def base_url(self, namespace: str, name: str) -> str:
        """Where ``/v1/models/NAME...`` and ``/v2/models/NAME/...`` of the service are, from
        this machine (``status.address.url``)."""
        host = self.settings.host
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return prefixed_url(f"http://{host}:{self.settings.serving_port}", namespace, name)

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("the serving loop is not running")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(30)
        if loop is not None and not loop.is_running():
            loop.close()

    # -- on the loop -----------------------------------------------------------------

    async def _start(self) -> None:
        self.stopped_at_start = await asyncio.to_thread(stop_recorded_replicas, self.store)
        if self.stopped_at_start:
            log.info(
                "stopped %d replicas a previous server left: pids %s",
                len(self.stopped_at_start),
                ", ".join(map(str, self.stopped_at_start)),
            )
        await self._bind()
        for record in await asyncio.to_thread(self.store.all):
            await self._apply(record)

    async def _bind(self) -> None:
        host, port = self.settings.host, self.settings.serving_port
        if self.gate is None:
            from serving.router.server import router_server

            self._server = router_server(self.router, host, port)
            await self._server.start()
            return
        import socket

        import uvicorn

        from serving.server.http import uvicorn_config

        # Bound here: uvicorn would exit the process on a bind error.
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        config = uvicorn_config(
            self.gate(self.router),
            host,
            port,
            lifespan="off",
            access_log=False,
            log_level="warning",
        )
        server = uvicorn.Server(config)
        # uvicorn's public entry point (its signal handlers stay off: not the main thread).
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if serving.done():
                serving.result()  # its error, if it failed
                raise RuntimeError(f"the serving router on {host}:{port} did not start")
            await asyncio.sleep(0.01)
        self._server = (server, serving)

    async def _shutdown(self) -> None:
        services = list(self._services.values())
        self._services.clear()
        await asyncio.gather(*(self._stop_service(s, drain=False) for s in services))
        if self._server is not None:
            if self.gate is None:
                await self._server.close()
            else:
                server, serving = self._server
                server.should_exit = True
                await serving
            self._server = None
        # What is left (retirements, requests still held): cancelled, not abandoned.
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _apply(self, record: ServiceRecord) -> None:
        key = (record.namespace, record.name)
        svc = self._services.get(key)
        if svc is not None and svc.uid != record.uid:  # the name was deleted and reused
            await self._remove(record.namespace, record.name)
            svc = None
        if svc is None:
            svc = _Service(record.namespace, record.name, record.uid)
            self._services[key] = svc
            svc.task = asyncio.create_task(self._watch(svc))
        elif record.version <= svc.version:
            return  # older than what runs
        svc.version = record.version
        wanted = [n for n in (record.previous, record.latest) if n is not None]
        svc.problem = None
        for number in wanted:
            if number not in svc.revisions:
                revision = self._revision(svc, record, number)
                if revision is not None:
                    svc.revisions[number] = revision
                    revision.start()
        svc.latest, svc.previous, svc.rolled_out = record.latest, record.previous, record.rolled_out
        svc.percent = canary_percent(record.obj)
        if svc.latest_ready not in wanted:
            # Knative never unsets latestReadyRevision: the one serving now takes its place.
            svc.latest_ready = self._ready_previous(svc)
        self._route(svc)
        for number in [n for n in svc.revisions if n not in wanted]:
            self._spawn(self._retire(svc, svc.revisions.pop(number)))
        svc.wake.set()

    def _revision(self, svc: _Service, record: ServiceRecord, number: int) -> Revision | None:
        obj = record.revisions.get(number)
        name = revision_name(svc.name, number)
        try:
            if obj is None:
                raise SpecError([])
            isvc = parse_inference_service(
                obj, base_dir=Path(record.base_dir or self.settings.home)
            )
        except SpecError as exc:
            svc.problem = f"{name}: the stored spec is not valid any more: {exc}"
            self._publish(svc, "RevisionFailed", svc.problem)
            return None
        spec = revision_spec(isvc, name, tick_interval=self.tick_interval)

        def changed(event: DeployEvent) -> None:
            self._deploy_event(svc, number, event)

        return Revision(
            spec,
            name=name,
            namespace=svc.namespace,
            argv=self.argv,
            log_dir=self.settings.home / "serving-logs" / svc.namespace,
            env=self._env,
            on_change=changed,
            replica_ports=self.replica_ports,
        )

    def _route(self, svc: _Service) -> None:
        latest = svc.revisions.get(svc.latest)
        previous = svc.revisions.get(svc.previous) if svc.previous is not None else None
        if latest is None and previous is None:
            self.router.remove(svc.name, svc.namespace)
            svc.routed = None
            return
        if latest is None or previous is None:
            only = latest or previous
            assert only is not None
            routed = RoutedService(svc.name, only.pool)
        else:
            percent = 100 if svc.percent is None else svc.percent
            routed = RoutedService(svc.name, previous.pool, latest.pool, percent)
        svc.routed = routed
        self.router.add(routed, svc.namespace)

    async def _watch(self, svc: _Service) -> None:
        """Promote a Ready latest revision that takes all the traffic; keep the Ready
        condition (and its events) current."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(svc.wake.wait(), 0.5)
            svc.wake.clear()
            try:
                await self._reconcile(svc)
            except Exception:
                log.exception("reconciling inference service %s/%s", svc.namespace, svc.name)

    @staticmethod
    def _ready_previous(svc: _Service) -> int | None:
        previous = svc.revisions.get(svc.previous) if svc.previous is not None else None
        return svc.previous if previous is not None and previous.deployer.state == READY else None

    async def _reconcile(self, svc: _Service) -> None:
        latest = svc.revisions.get(svc.latest)
        if svc.latest_ready is None:
            svc.latest_ready = self._ready_previous(svc)
        if latest is not None and latest.deployer.state == READY:
            svc.latest_ready = svc.latest
            full = svc.previous is None or svc.percent in (None, 100)
            if full and svc.rolled_out != svc.latest:
                record = await asyncio.to_thread(self.store.roll_out, svc.uid, svc.latest)
                if record is not None:
                    self._publish(
                        svc,
                        "RevisionRolledOut",
                        f"{latest.name} takes all the traffic"
                        + (
                            f"; {revision_name(svc.name, svc.previous)} stops"
                            if svc.previous is not None
                            else ""
                        ),
                    )
                    await self._apply(record)
        condition = self._condition(svc)
        if condition != svc.condition:
            svc.condition = condition
            svc.transition = time.time()
            ready, reason, message = condition
            self._publish(
                svc,
                reason or "InferenceServiceReady",
                message or "the inference service is Ready",
                ready="True" if ready else "False",
            )

    def _condition(self, svc: _Service) -> tuple[bool, str, str]:
        latest = svc.revisions.get(svc.latest)
        previous = svc.revisions.get(svc.previous) if svc.previous is not None else None
        keeps = f"; {previous.name} keeps the traffic" if previous is not None else ""
        if latest is None:
            return False, "RevisionFailed", (svc.problem or "no revision runs") + keeps
        deployer = latest.deployer
        if deployer.state == READY:
            return True, "", ""
        if deployer.state == FAILED:
            return False, "RevisionFailed", f"{latest.name}: {deployer.failure}{keeps}"
        ready = len(deployer.ready_replicas())
        detail = f" ({deployer.failure})" if deployer.failure else ""
        return (
            False,
            "RevisionNotReady",
            f"{latest.name}: {ready} of {max(deployer.initial, 1)} replicas ready{detail}{keeps}",
        )

    async def _retire(self, svc: _Service, revision: Revision) -> None:
        """Out of the routing already: let its requests finish, then stop its replicas."""
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while revision.pool.concurrency and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await self._stop_revision(svc, revision)
        self._publish(svc, "RevisionStopped", f"{revision.name}: stopped (no traffic)")

    async def _stop_revision(self, svc: _Service, revision: Revision) -> None:
        await revision.stop()
        pids = list(revision.deployer.started_pids)
        await asyncio.to_thread(self.store.remove_replicas, pids)
        self.router.metrics.forget(svc.namespace, svc.name, revision.name)

    async def _stop_service(self, svc: _Service, *, drain: bool) -> None:
        if svc.task is not None:
            svc.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await svc.task
        self.router.remove(svc.name, svc.namespace)
        revisions = list(svc.revisions.values())
        svc.revisions.clear()
        if drain:
            deadline = time.monotonic() + DRAIN_TIMEOUT
            while any(r.pool.concurrency for r in revisions) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        await asyncio.gather(*(self._stop_revision(svc, r) for r in revisions))

    async def _remove(self, namespace: str, name: str) -> None:
        svc = self._services.pop((namespace, name), None)
        if svc is not None:
            await self._stop_service(svc, drain=True)

    async def _states(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], ServiceState]:
        out = {}
        for key in keys:
            svc = self._services.get(key)
            if svc is not None:
                out[key] = self._state(svc)
        return out

    def _state(self, svc: _Service) -> ServiceState:
        now = svc.routed.traffic() if svc.routed is not None else (0, 0)
        split = svc.routed is not None and svc.routed.canary is not None
        percent = 100 if svc.percent is None else svc.percent
        revisions = []
        for number in sorted(svc.revisions):
            rev = svc.revisions[number]
            latest = number == svc.latest
            if not split:
                traffic, configured = (now[0], 100) if svc.routed is not None else (0, 0)
            elif latest:
                traffic, configured = now[1], percent
            else:
                traffic, configured = now[0], 100 - percent
            counts = rev.deployer.counts()
            revisions.append(
                RevisionState(
                    name=rev.name,
                    number=number,
                    latest=latest,
                    state=rev.deployer.state,
                    reason=rev.deployer.failure,
                    traffic=traffic,
                    configured_traffic=configured,
                    ready=counts["ready"],
                    starting=counts["starting"],
                    failed=counts["failed"],
                    desired=rev.deployer.desired,
                    in_flight=rev.pool.concurrency,
                    pids=rev.deployer.pids,
                    scaling=rev.hpa.config.describe() if rev.hpa is not None else "",
                )
            )
        ready, reason, message = svc.condition or self._condition(svc)
        return ServiceState(
            revisions=revisions,
            ready=ready,
            reason=reason,
            message=message,
            transition=svc.transition,
            latest_ready=revision_name(svc.name, svc.latest_ready)
            if svc.latest_ready is not None
            else None,
            rolled_out=revision_name(svc.name, svc.rolled_out)
            if svc.rolled_out is not None
            else None,
        )

    # -- events and replica records --------------------------------------------------

    def _deploy_event(self, svc: _Service, number: int, event: DeployEvent) -> None:
        if event.reason == "ReplicaStarted" and event.pid is not None:
            try:
                self.store.add_replica(
                    ReplicaRecord(
                        event.pid,
                        _create_time(event.pid),
                        svc.uid,
                        svc.namespace,
                        svc.name,
                        number,
                        event.port or 0,
                        time.time(),
                    )
                )
            except Exception:  # the store is down: the kernel still stops it with us
                log.exception("recording replica pid %s", event.pid)
        elif event.reason in ("ReplicaExited", "ReplicaStopped") and event.pid is not None:
            try:
                self.store.remove_replicas([event.pid])
            except Exception:
                log.exception("forgetting replica pid %s", event.pid)
        message = event.message.split(": ", 1)[-1]
        self._publish(svc, event.reason, f"{revision_name(svc.name, number)}: {message}")
        if event.reason in ("RevisionReady", "RevisionFailed"):
            svc.wake.set()

    def _publish(self, svc: _Service, reason: str, message: str, **status: str) -> None:
        self.events.publish(
            MODIFIED, KIND, svc.namespace, svc.name, reason=reason, message=message, status=status
        )

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _create_time(pid: int) -> float:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return 0.0


def is_our_replica(record: ReplicaRecord) -> bool:
    """Whether ``record.pid`` is still the replica that was recorded: the same start time
    (a reused pid is another process) and a ``serving.replica`` command line."""
    import psutil

    try:
        process = psutil.Process(record.pid)
        if abs(process.create_time() - record.create_time) > 0.1:
            return False
        return "serving.replica" in process.cmdline()
    except psutil.Error:
        return False


def stop_recorded_replicas(store: ServiceStore, timeout: float = 10.0) -> list[int]:
    """Stop the recorded replicas that are still ours (their process groups: SIGTERM,
    SIGKILL after ``timeout``), forget every record; the pids stopped."""
    import psutil

    records = store.replicas()
    ours = [r for r in records if is_our_replica(r)]
    processes = []
    for r in ours:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            _signal_group(r.pid, signal.SIGTERM)
            processes.append(psutil.Process(r.pid))
    _, alive = psutil.wait_procs(processes, timeout=timeout) if processes else ([], [])
    for p in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            _signal_group(p.pid, signal.SIGKILL)
    if alive:
        psutil.wait_procs(alive, timeout=timeout)
    store.remove_replicas([r.pid for r in records])
    return [r.pid for r in ours]


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """The replica's process group (it leads one), else the process alone."""
    if os.getpgid(pid) == pid:
        os.killpg(pid, sig)
    else:
        os.kill(pid, sig)
