"""A local deployment: the router, and per revision a pool, an autoscaler and a deployer.

One asyncio loop runs it all: the router (its httptools server), each revision's deployer
loop, and the autoscaler tick that turns the router's concurrency samples (KPA) or the
replicas' CPU/memory (HPA, read with psutil) into desired counts. The router pokes the
tick when a request arrives for a revision with no ready replica (Knative's activator ->
autoscaler path), so a cold start begins at once. Until a revision has reached its
initial scale with ready replicas, the desired count does not go below it (Knative).

Usable as a library: build it from :func:`revision_specs`, ``await start()`` (or
``serve()``), read :meth:`status` and the ``on_event`` stream, ``await shutdown()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from serving.autoscaler import Autoscaler, Clock, HorizontalAutoscaler, ScaleDecision
from serving.local.deployer import STARTING, ChangeSink, EventSink, RevisionDeployer
from serving.local.replica import Listener
from serving.local.revisions import RevisionSpec
from serving.local.usage import ProcessUsage, UsageSampler
from serving.router import DEFAULT_NAMESPACE, RevisionPool, RoutedService, Router
from serving.router.server import router_server

ReplicaArgv = Callable[[RevisionSpec, Listener], list[str]]


def replica_argv(spec: RevisionSpec, listener: Listener) -> list[str]:
    """The model server command for one replica (``python -m serving.replica ...``),
    listening on the socket the deployer bound (``--fd``)."""
    return [
        sys.executable,
        "-m",
        "serving.replica",
        "--isvc-json",
        spec.isvc_json,
        "--revision",
        spec.revision,
        "--host",
        listener.host,
        "--port",
        str(listener.port),
        "--fd",
        str(listener.fd),
        "--base-dir",
        str(spec.base_dir),
    ]


class BindError(OSError):
    """The router cannot listen on its address (taken, not this host's, not allowed)."""


class Revision:
    """One revision at run time: its pool (what the router routes to), its autoscaler
    (Knative's KPA, or the HPA for cpu/memory) and its deployer (the replica processes).

    ``name`` is what the router, the metrics and the events call it (default: the spec's
    ``revision``, ``default`` or ``canary``). Runs on one event loop: :meth:`start` its
    loops, :meth:`stop` them and every replica it started.
    """

    def __init__(
        self,
        spec: RevisionSpec,
        *,
        name: str | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        argv: ReplicaArgv = replica_argv,
        log_dir: Path | None = None,
        env: dict[str, str] | None = None,
        on_event: EventSink | None = None,
        on_change: ChangeSink | None = None,
        hold_timeout: float = 60.0,
        clock: Clock = time.monotonic,
        replica_ports: range | None = None,
        sampler: UsageSampler | None = None,
    ) -> None:
        self.spec = spec
        self.pool = RevisionPool(
            spec.service,
            name or spec.revision,
            namespace=namespace,
            hold_timeout=hold_timeout,
            request_timeout=spec.timeout,
            capacity=spec.container_concurrency,
            on_cold=lambda _pool: self.poke(),
            on_unreachable=lambda _pool, address: self.deployer.replica_unreachable(address),
        )
        self.pool.desired = spec.initial_replicas
        self.deployer = RevisionDeployer(
            self.pool,
            lambda listener: argv(spec, listener),
            initial=spec.initial_replicas,
            log_dir=log_dir,
            env=env,
            on_event=on_event,
            on_change=on_change,
            progress_deadline=spec.progress_deadline,
            ports=replica_ports,
        )
        self.scaler = Autoscaler(spec.autoscaling, clock=clock)
        # cpu/memory metrics: the HPA scales instead of the KPA.
        self.hpa = (
            HorizontalAutoscaler(spec.horizontal, clock=clock)
            if spec.horizontal is not None
            else None
        )
        self._sampler: UsageSampler = sampler or ProcessUsage()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def name(self) -> str:
        return self.pool.revision

    def tick(self) -> None:
        """One autoscaler decision from the router's samples (KPA) or the replicas' usage
        (HPA); until the revision has reached its initial scale it is not scaled below it
        (Knative), so a slow or failing load is seen."""
        mean, rps = self.pool.sample()
        if self.hpa is not None:
            ready = [r.pid for r in self.deployer.ready_replicas() if r.pid is not None]
            usage = self._sampler.sample(ready)
            decision = self.hpa.scale(self.deployer.desired, list(usage.values()))
        else:
            value = rps if self.spec.autoscaling.metric == "rps" else mean
            self.scaler.record(value)
            decision = self.scaler.scale(ready=len(self.pool.endpoints))
        desired = decision.desired
        if not self.deployer.initialized:
            desired = max(desired, self.spec.initial_replicas)
        self.deployer.set_desired(desired)

    def poke(self) -> None:
        """A request is held with no ready replica (Knative's activator): decide now."""
        desired = 1
        if self.hpa is None:
            self.scaler.record(max(1.0, float(self.pool.concurrency)))
            desired = self.scaler.scale(ready=len(self.pool.endpoints)).desired
        # Never fewer than now: the ready replicas may all have just died.
        self.deployer.set_desired(max(self.deployer.desired, desired, 1))
        self.deployer.wake()

    async def _autoscale(self) -> None:
        interval = self.spec.autoscaling.tick_interval
        while True:
            await asyncio.sleep(interval)
            self.tick()

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self.deployer.run()))
        self._tasks.append(asyncio.create_task(self._autoscale()))

    async def stop(self) -> None:
        """Stop the loops, then every replica process this revision started."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self.deployer.shutdown()
        self.pool.close()

    def last_decision(self) -> ScaleDecision | None:
        return self.hpa.last_decision if self.hpa is not None else self.scaler.last_decision


@dataclass(frozen=True)
class RevisionStatus:
    """One revision as ``serve run``'s table (and a server's API) shows it. ``state`` is
    Knative's Ready condition (Starting / Ready / Failed, the reason in ``reason``);
    ``traffic`` the share it gets now, ``configured_traffic`` the one its spec asks for
    (a canary gets its share only once Ready)."""

    service: str
    revision: str
    traffic: int
    ready: int
    starting: int
    failed: int
    desired: int
    in_flight: int
    panicking: bool
    pids: tuple[int, ...]
    reason: str | None
    state: str = "Ready"
    configured_traffic: int = 100
    scaling: str = ""


class LocalDeployment:
    """Runs the given revisions behind one router. Not thread-safe (one event loop)."""

    def __init__(
        self,
        specs: list[RevisionSpec],
        *,
        token: str | None = None,
        argv: ReplicaArgv = replica_argv,
        log_dir: Path | None = None,
        env: dict[str, str] | None = None,
        on_event: EventSink | None = None,
        hold_timeout: float = 60.0,
        max_body_bytes: int = 64 * 1024 * 1024,
        clock: Clock = time.monotonic,
        replica_ports: range | None = None,
        sampler: UsageSampler | None = None,
    ) -> None:
        self.router = Router(token=token, max_body_bytes=max_body_bytes)
        self.on_event = on_event or (lambda _m: None)
        # Each revision samples its own replicas (ProcessUsage forgets pids it is not asked
        # about), unless a sampler is given.
        self.revisions = [
            Revision(
                spec,
                argv=argv,
                log_dir=log_dir,
                env=env,
                on_event=self.on_event,
                hold_timeout=hold_timeout,
                clock=clock,
                replica_ports=replica_ports,
                sampler=sampler,
            )
            for spec in specs
        ]
        by_service: dict[str, list[Revision]] = {}
        for rev in self.revisions:
            by_service.setdefault(rev.spec.service, []).append(rev)
        for name, revs in by_service.items():
            canary = revs[1] if len(revs) > 1 else None
            self.router.add(
                RoutedService(
                    name,
                    revs[0].pool,
                    canary.pool if canary else None,
                    canary.spec.canary_percent if canary else 0,
                )
            )

    # --- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        for rev in self.revisions:
            for note in rev.spec.notes:
                self.on_event(f"{rev.deployer.name}: note: {note}")
            rev.start()

    async def wait_ready(self, timeout: float = 120.0) -> bool:
        """Until every revision is Ready or Failed (False if some are still starting)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(r.deployer.state != STARTING for r in self.revisions):
                return True
            await asyncio.sleep(0.05)
        return False

    async def shutdown(self) -> None:
        """Stop the loops, then every replica process this deployment started."""
        await asyncio.gather(*(r.stop() for r in self.revisions))

    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        started: Callable[[], None] | None = None,
        stop: asyncio.Event | None = None,
    ) -> None:
        """Run router + replicas until ``stop`` is set; then stop everything it started."""
        server = router_server(self.router, host, port)
        try:
            await server.start()  # bind first: a taken port fails before any replica starts
        except OSError as exc:
            # (getaddrinfo's errors, for a host name, carry their own text and numbers.)
            reason = exc.strerror or str(exc)
            if exc.errno == errno.EADDRINUSE:
                reason = f"{os.strerror(exc.errno)} (choose another --port)"
            elif exc.errno == errno.EADDRNOTAVAIL:
                reason = f"{os.strerror(exc.errno)} (not an address of this host: --host)"
            shown = f"[{host}]" if ":" in host else host
            raise BindError(exc.errno, f"cannot listen on {shown}:{port}: {reason}") from None
        try:
            await self.start()
            if started is not None:
                started()
            await (stop or asyncio.Event()).wait()
        finally:
            await server.close()
            await self.shutdown()

    # --- status ----------------------------------------------------------------------
    def status(self) -> list[RevisionStatus]:
        out = []
        for r in self.revisions:
            counts = r.deployer.counts()
            svc = self.router.services[r.spec.service]
            canary = r.spec.revision == "canary"
            now = svc.traffic()
            traffic = now[1] if canary else now[0]
            configured = svc.split.percent if canary else 100 - svc.split.percent
            d = r.last_decision()
            out.append(
                RevisionStatus(
                    service=r.spec.service,
                    revision=r.spec.revision,
                    traffic=traffic,
                    ready=counts["ready"],
                    starting=counts["starting"],
                    failed=counts["failed"],
                    desired=r.deployer.desired,
                    in_flight=r.pool.concurrency,
                    panicking=bool(d and d.panicking),
                    pids=r.deployer.pids,
                    reason=r.deployer.failure,
                    state=r.deployer.state,
                    configured_traffic=configured,
                    scaling=r.hpa.config.describe() if r.hpa is not None else "",
                )
            )
        return out

    def started_pids(self) -> list[int]:
        """Every replica started this session, including ones already stopped."""
        return [pid for r in self.revisions for pid in r.deployer.started_pids]

    def shutdown_pids(self) -> list[int]:
        """The replicas :meth:`shutdown` found running and stopped."""
        return [pid for r in self.revisions for pid in r.deployer.shutdown_pids]
