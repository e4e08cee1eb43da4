"""A local deployment: the router, and per revision a pool, an autoscaler and a deployer.

One asyncio loop runs it all: the router (uvicorn), each revision's deployer loop, and
the autoscaler tick that turns the router's concurrency samples into desired counts.
The router pokes the tick when a request arrives for a revision with no ready replica
(Knative's activator -> autoscaler path), so a cold start begins at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from serving.autoscaler import Autoscaler, Clock
from serving.local.deployer import EventSink, RevisionDeployer
from serving.local.revisions import RevisionSpec
from serving.router import RevisionPool, RoutedService, Router
from serving.router.server import router_server

ReplicaArgv = Callable[[RevisionSpec, int], list[str]]


def replica_argv(spec: RevisionSpec, port: int) -> list[str]:
    """The model server command for one replica (``python -m serving.replica ...``)."""
    return [
        sys.executable,
        "-m",
        "serving.replica",
        "--isvc-json",
        spec.isvc_json,
        "--revision",
        spec.revision,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--base-dir",
        str(spec.base_dir),
    ]


@dataclass
class Revision:
    spec: RevisionSpec
    pool: RevisionPool
    scaler: Autoscaler
    deployer: RevisionDeployer


@dataclass(frozen=True)
class RevisionStatus:
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
    ) -> None:
        self.router = Router(token=token, max_body_bytes=max_body_bytes)
        self.on_event = on_event or (lambda _m: None)
        self.revisions: list[Revision] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._argv = argv
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
            )
            pool.desired = cfg.initial_replicas
            deployer = RevisionDeployer(
                pool,
                (lambda s: lambda port: argv(s, port))(spec),
                initial=cfg.initial_replicas,
                log_dir=log_dir,
                env=env,
                on_event=self.on_event,
            )
            rev = Revision(spec, pool, Autoscaler(cfg, clock=clock), deployer)
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
        value = rps if rev.spec.autoscaling.metric == "rps" else mean
        rev.scaler.record(value)
        decision = rev.scaler.scale(ready=len(rev.pool.endpoints))
        rev.deployer.set_desired(decision.desired)

    def _poke(self, pool: RevisionPool) -> None:
        """A request is held for a revision with no ready replica: decide now."""
        rev = self._by_pool.get(id(pool))
        if rev is None:
            return
        rev.scaler.record(max(1.0, float(pool.concurrency)))
        decision = rev.scaler.scale(ready=len(pool.endpoints))
        rev.deployer.set_desired(max(1, decision.desired))
        rev.deployer.wake()

    async def _autoscale(self, rev: Revision) -> None:
        interval = rev.spec.autoscaling.tick_interval
        while True:
            await asyncio.sleep(interval)
            self._tick(rev)

    # --- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        for rev in self.revisions:
            self._tasks.append(asyncio.create_task(rev.deployer.run()))
            self._tasks.append(asyncio.create_task(self._autoscale(rev)))

    async def wait_ready(self, timeout: float = 120.0) -> bool:
        """Until every revision with a desired count has a ready replica (or failed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(
                r.pool.endpoints or r.deployer.failure or r.deployer.desired == 0
                for r in self.revisions
            ):
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
            traffic = (
                svc.split.percent
                if r.spec.revision == "canary"
                else 100 - (svc.split.percent if svc.canary else 0)
            )
            d = r.scaler.last_decision
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
                )
            )
        return out

    def started_pids(self) -> list[int]:
        """Every replica started this session, including ones already stopped."""
        return [pid for r in self.revisions for pid in r.deployer.started_pids]

    def shutdown_pids(self) -> list[int]:
        """The replicas :meth:`shutdown` found running and stopped."""
        return [pid for r in self.revisions for pid in r.deployer.shutdown_pids]
