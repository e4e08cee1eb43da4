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
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from serving.autoscaler import Autoscaler, Clock, HorizontalAutoscaler
from serving.local.deployer import STARTING, EventSink, RevisionDeployer
from serving.local.replica import Listener
from serving.local.revisions import RevisionSpec
from serving.local.usage import ProcessUsage, UsageSampler
from serving.router import RevisionPool, RoutedService, Router
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


@dataclass
class Revision:
    spec: RevisionSpec
    pool: RevisionPool
    scaler: Autoscaler
    deployer: RevisionDeployer
    hpa: HorizontalAutoscaler | None = None  # cpu/memory metrics: scales instead of scaler


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
        self.revisions: list[Revision] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._argv = argv
        self._sampler: UsageSampler = sampler or ProcessUsage()
        by_service: dict[str, list[Revision]] = {}
        for spec in specs:
            cfg = spec.autoscaling
            pool = RevisionPool(
                spec.service,
                spec.revision,
                hold_timeout=hold_timeout,
                request_timeout=spec.timeout,
                capacity=spec.container_concurrency,
                on_cold=self._poke,
                on_unreachable=self._unreachable,
            )
            pool.desired = spec.initial_replicas
            deployer = RevisionDeployer(
                pool,
                (lambda s: lambda listener: argv(s, listener))(spec),
                initial=spec.initial_replicas,
                log_dir=log_dir,
                env=env,
                on_event=self.on_event,
                progress_deadline=spec.progress_deadline,
                ports=replica_ports,
            )
            hpa = None
            if spec.horizontal is not None:
                hpa = HorizontalAutoscaler(spec.horizontal, clock=clock)
            rev = Revision(spec, pool, Autoscaler(cfg, clock=clock), deployer, hpa)
            self.revisions.append(rev)
            by_service.setdefault(spec.service, []).append(rev)
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
        self._by_pool = {id(r.pool): r for r in self.revisions}

    # --- autoscaling -----------------------------------------------------------------
    def _tick(self, rev: Revision) -> None:
        mean, rps = rev.pool.sample()
        if rev.hpa is not None:
            ready = [r.pid for r in rev.deployer.ready_replicas() if r.pid is not None]
            usage = self._sampler.sample(ready)
            decision = rev.hpa.scale(rev.deployer.desired, list(usage.values()))
        else:
            value = rps if rev.spec.autoscaling.metric == "rps" else mean
            rev.scaler.record(value)
            decision = rev.scaler.scale(ready=len(rev.pool.endpoints))
        desired = decision.desired
        if not rev.deployer.initialized:
            # Knative: a revision reaches its initial scale (and readiness) before the
            # autoscaler may take replicas away, so a slow or failing load is seen.
            desired = max(desired, rev.spec.initial_replicas)
        rev.deployer.set_desired(desired)

    def _poke(self, pool: RevisionPool) -> None:
        """A request is held for a revision with no ready replica: decide now."""
        rev = self._by_pool.get(id(pool))
        if rev is None:
            return
        desired = 1
        if rev.hpa is None:
            rev.scaler.record(max(1.0, float(pool.concurrency)))
            desired = rev.scaler.scale(ready=len(pool.endpoints)).desired
        # Never fewer than now: the ready replicas may all have just died.
        rev.deployer.set_desired(max(rev.deployer.desired, desired, 1))
        rev.deployer.wake()

    def _unreachable(self, pool: RevisionPool, address: tuple[str, int]) -> None:
        """The router could not connect to a replica: its deployer re-checks it now."""
        rev = self._by_pool.get(id(pool))
        if rev is not None:
            rev.deployer.replica_unreachable(address)

    async def _autoscale(self, rev: Revision) -> None:
        interval = rev.spec.autoscaling.tick_interval
        while True:
            await asyncio.sleep(interval)
            self._tick(rev)

    # --- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        for rev in self.revisions:
            for note in rev.spec.notes:
                self.on_event(f"{rev.deployer.name}: note: {note}")
            self._tasks.append(asyncio.create_task(rev.deployer.run()))
            self._tasks.append(asyncio.create_task(self._autoscale(rev)))

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
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await asyncio.gather(*(r.deployer.shutdown() for r in self.revisions))
        for r in self.revisions:
            r.pool.close()

    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        started: Callable[[], None] | None = None,
        stop: asyncio.Event | None = None,
    ) -> None:
        """Run router + replicas until ``stop`` is set; then stop everything it started."""
        server = router_server(self.router, host, port)
        await server.start()  # bind first: a taken port fails before any replica starts
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
            d = r.hpa.last_decision if r.hpa is not None else r.scaler.last_decision
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
                    pids=tuple(p.pid for p in r.deployer.replicas if p.pid is not None),
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
