"""Keeps one revision's replica processes at the autoscaler's desired count.

Contract: a replica gets traffic only after its ``/v2/health/ready`` answered 200 (the
router's pool holds ready replicas only); a replica that dies is replaced with
exponential backoff; one whose model failed to load is kept (not ready, its reason in
the pool's ``failure``) and counts toward the desired count, so it does not crash-loop,
but its process is stopped (a model that failed to load never serves; it held its
memory for nothing);
replicas removed by a scale-down are taken out of rotation first, drained, then stopped
by PID. :meth:`shutdown` stops exactly the processes this deployer started.

The revision's Ready condition, as Knative's: ``Starting`` until ``initial`` replicas
(Knative's initial scale) have been ready at once; then ``Ready`` for good. Until then the
desired count never goes below the initial scale (the local deployment holds it), so a
model still loading is not scaled away before anyone knows whether it loads. A revision
not Ready whose model failed to load, whose replicas keep crashing, or that is still not
ready at its progress deadline is ``Failed``, with the reason.

Each replica's socket is bound here and inherited by the process (``--fd``): no port is
picked, released and hoped for. ``ports`` restricts them to a range.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from serving.local.replica import (
    Listener,
    ReplicaProcess,
    ReplicaState,
    bind_listener,
    replica_authorization,
)
from serving.router.pool import RevisionPool

ArgvFactory = Callable[[Listener], list[str]]
EventSink = Callable[[str], None]


@dataclass(frozen=True)
class DeployEvent:
    """What happened to a revision, for a control plane (``serve run`` prints ``message``).

    ``reason``: ReplicaStarted, ReplicaReady, ReplicaNotReady, ReplicaUnreachable,
    ReplicaExited, ReplicaStopped, PortUnavailable, Scaled (``desired`` changed),
    RevisionReady, RevisionFailed. ``pid``/``port``: the replica's, if about one."""

    reason: str
    message: str
    pid: int | None = None
    port: int | None = None
    desired: int | None = None


ChangeSink = Callable[[DeployEvent], None]

STARTING = "Starting"
READY = "Ready"
FAILED = "Failed"
CRASH_LOOP = 3  # crashes in a row (none ready in between) that make a revision Failed


class RevisionDeployer:
    def __init__(
        self,
        pool: RevisionPool,
        argv_for: ArgvFactory,
        *,
        initial: int = 1,
        host: str = "127.0.0.1",
        log_dir: Path | None = None,
        env: dict[str, str] | None = None,
        on_event: EventSink | None = None,
        on_change: ChangeSink | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        drain_timeout: float = 30.0,
        progress_deadline: float = 600.0,
        ports: range | None = None,
    ) -> None:
        self.pool = pool
        # The replicas started here want this process's token: the pool sends it.
        pool.authorization = replica_authorization()
        self.argv_for = argv_for
        self.host = host
        self.ports = ports
        self.initial = initial
        self.initialized = initial == 0  # Knative: initial scale reached once
        self.progress_deadline = progress_deadline
        self.created_at = time.monotonic()
        self._state = READY if self.initialized else STARTING
        self.log_dir = log_dir
        self.env = env
        self.on_event = on_event or (lambda _msg: None)
        self.on_change = on_change
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.drain_timeout = drain_timeout
        self.desired = initial
        self.replicas: list[ReplicaProcess] = []
        self.started_pids: list[int] = []
        # The replicas shutdown() found running and stopped (not those stopped earlier).
        self.shutdown_pids: list[int] = []
        self.restarts = 0
        self._crashes = 0
        self._next_start = 0.0
        self._last_failure: str | None = None
        self._wake = asyncio.Event()
        self._draining: set[asyncio.Task[None]] = set()
        self._retiring: list[ReplicaProcess] = []
        self._stopped = False
        self._last_probe: dict[int, float] = {}

    @property
    def name(self) -> str:
        return f"{self.pool.service}/{self.pool.revision}"

    def _emit(self, reason: str, message: str, r: ReplicaProcess | None = None, **kw: int) -> None:
        self.on_event(message)
        if self.on_change is not None:
            pid, port = (r.pid, r.port) if r is not None else (None, None)
            self.on_change(DeployEvent(reason, message, pid, port, **kw))

    def set_desired(self, n: int) -> None:
        if n != self.desired:
            self._emit("Scaled", f"{self.name}: scale {self.desired} -> {n}", desired=n)
            self.desired = n
            self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def ready_replicas(self) -> list[ReplicaProcess]:
        return [r for r in self.replicas if r.state is ReplicaState.READY]

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in ReplicaState}
        for r in self.replicas:
            out[r.state.value] += 1
        return out

    @property
    def failure(self) -> str | None:
        for r in self.replicas:
            if r.state is ReplicaState.FAILED:
                return r.reason
        if self._crashes:
            return self._last_failure
        if not self.initialized and self._past_deadline():
            return (
                f"no replica became ready within {self.progress_deadline:g}s "
                "(progress deadline; serving.knative.dev/progress-deadline)"
            )
        return None

    @property
    def state(self) -> str:
        """The revision's Ready condition: ``Starting``, ``Ready`` or ``Failed``."""
        return self._state

    def _past_deadline(self) -> bool:
        return time.monotonic() - self.created_at > self.progress_deadline

    def _update_state(self) -> None:
        if not self.initialized:
            ready = sum(1 for r in self.replicas if r.state is ReplicaState.READY)
            if ready >= max(1, self.initial):
                self.initialized = True
        if self.initialized:
            state = READY
        elif (
            any(r.state is ReplicaState.FAILED for r in self.replicas)
            or self._crashes >= CRASH_LOOP
            or self._past_deadline()
        ):
            state = FAILED
        else:
            state = STARTING
        if state != self._state:
            self._state = state
            if state == READY:
                self._emit("RevisionReady", f"{self.name}: revision Ready")
            elif state == FAILED:
                self._emit("RevisionFailed", f"{self.name}: revision Failed: {self.failure}")

    def replica_unreachable(self, address: tuple[str, int]) -> None:
        """The router could not connect to ``address``: probe it again at once."""
        for r in self.replicas:
            if r.address == address and r.state is ReplicaState.READY:
                r.state = ReplicaState.STARTING
                self._emit(
                    "ReplicaUnreachable",
                    f"{self.name}: replica pid {r.pid} :{r.port} refused a connection; "
                    "out of rotation until it answers its probe",
                    r,
                )
        self._wake.set()

    async def run(self) -> None:
        """Reconcile until cancelled; faster while replicas are starting."""
        async with httpx.AsyncClient() as client:
            while not self._stopped:
                await self.reconcile(client)
                starting = any(r.state is ReplicaState.STARTING for r in self.replicas)
                wait = 0.05 if starting or len(self.replicas) < self.desired else 0.5
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)

    async def reconcile(self, client: httpx.AsyncClient) -> None:
        now = time.monotonic()
        # 1. Reap replicas that died on their own.
        for r in list(self.replicas):
            if r.stopped_failed:
                continue  # stopped here: a failed replica, not a crash
            if r.exited():
                self.replicas.remove(r)
                self._crashes += 1
                self.restarts += 1
                self._last_failure = f"{r.reason}{_log_tail(r.log_path)}"
                delay = min(self.backoff_max, self.backoff_base * 2 ** (self._crashes - 1))
                self._next_start = now + delay
                self._emit(
                    "ReplicaExited",
                    f"{self.name}: replica pid {r.pid} :{r.port} exited "
                    f"({self._last_failure}); restarting in {delay:.1f}s",
                    r,
                )
        self._update_state()

        # 2. Probe: starting ones every tick, ready ones about once a second.
        probes = []
        for r in self.replicas:
            due = r.state is ReplicaState.STARTING or (
                r.state is ReplicaState.READY and now - self._last_probe.get(r.port, 0) >= 1.0
            )
            if due:
                self._last_probe[r.port] = now
                probes.append(self._probe(r, client))
        if probes:
            await asyncio.gather(*probes)

        self._update_state()

        # 3. Scale towards the desired count.
        live = [r for r in self.replicas if r.state is not ReplicaState.EXITED]
        if len(live) < self.desired and time.monotonic() >= self._next_start:
            for _ in range(self.desired - len(live)):
                if not await self._spawn():
                    break
        elif len(live) > self.desired:
            for r in self._victims(live, len(live) - self.desired):
                self.replicas.remove(r)
                self._retiring.append(r)
                task = asyncio.create_task(self._drain_and_stop(r))
                self._draining.add(task)
                task.add_done_callback(self._draining.discard)

        self._publish()

    async def _probe(self, r: ReplicaProcess, client: httpx.AsyncClient) -> None:
        before = r.state
        after = await r.probe(client)
        if after is before:
            return
        if after is ReplicaState.READY:
            self._crashes = 0
            self._last_failure = None
            self._emit(
                "ReplicaReady",
                f"{self.name}: replica pid {r.pid} :{r.port} ready "
                f"in {time.monotonic() - r.started_at:.1f}s",
                r,
            )
        elif after is ReplicaState.FAILED:
            self._emit(
                "ReplicaNotReady",
                f"{self.name}: replica pid {r.pid} :{r.port} not ready: {r.reason}",
                r,
            )
            # It never serves: its process goes (the replica stays, failed, with its reason).
            r.stopped_failed = True
            task = asyncio.create_task(self._stop_failed(r))
            self._draining.add(task)
            task.add_done_callback(self._draining.discard)
        elif after is ReplicaState.STARTING:
            self._emit(
                "ReplicaNotReady",
                f"{self.name}: replica pid {r.pid} :{r.port} stopped answering",
                r,
            )
        # At once, with no await between: a reader never sees the replica's failure as
        # the revision's reason while its state still says Starting. After the crash
        # count is reset and the replica's event is out, as before.
        self._update_state()

    async def _spawn(self) -> bool:
        """Start one replica on a socket bound here; False (and a backoff) if none can be."""
        try:
            sock = bind_listener(self.host, self.ports)
        except OSError as exc:
            self._crashes += 1
            self._last_failure = f"cannot bind a replica port: {exc.strerror or exc}"
            delay = min(self.backoff_max, self.backoff_base * 2 ** (self._crashes - 1))
            self._next_start = time.monotonic() + delay
            self._emit(
                "PortUnavailable", f"{self.name}: {self._last_failure}; retrying in {delay:.1f}s"
            )
            return False
        try:
            port = int(sock.getsockname()[1])
            log = None
            if self.log_dir is not None:
                log = self.log_dir / f"{self.pool.service}-{self.pool.revision}-{port}.log"
            listener = Listener(self.host, port, sock.fileno())
            r = ReplicaProcess(self.argv_for(listener), self.host, port, log_path=log)
            await r.start(self.env, pass_fds=(sock.fileno(),))
        finally:
            sock.close()  # the replica has its own copy now
        assert r.pid is not None
        self.started_pids.append(r.pid)
        self.replicas.append(r)
        # Wake the loop the moment the process exits, not at the next tick.
        proc = r.proc
        assert proc is not None
        task = asyncio.create_task(proc.wait())
        task.add_done_callback(lambda _t: self._wake.set())
        self._emit("ReplicaStarted", f"{self.name}: started replica pid {r.pid} on :{port}", r)
        return True

    def _victims(self, live: list[ReplicaProcess], n: int) -> list[ReplicaProcess]:
        # Replicas not serving go first (failed, then starting), then the least busy.
        busy = {ep.key: ep.in_flight for ep in self.pool.endpoints}
        rank = {ReplicaState.FAILED: 0, ReplicaState.STARTING: 1, ReplicaState.READY: 2}
        ordered = sorted(live, key=lambda r: (rank.get(r.state, 0), busy.get(r.address, 0)))
        return ordered[:n]

    async def _stop_failed(self, r: ReplicaProcess) -> None:
        await r.stop()
        r.state = ReplicaState.FAILED  # (stop says EXITED): the revision's failed replica
        self._emit(
            "ReplicaStopped",
            f"{self.name}: stopped replica pid {r.pid} :{r.port} (its model failed to load)",
            r,
        )

    async def _drain_and_stop(self, r: ReplicaProcess) -> None:
        # Out of rotation first, then let its in-flight requests finish, then stop it.
        endpoint = next((ep for ep in self.pool.endpoints if ep.key == r.address), None)
        self._publish()
        deadline = time.monotonic() + self.drain_timeout
        while endpoint is not None and endpoint.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if r.stopped_failed:  # stopped (or being stopped) already, and said so
            self._retiring.remove(r)
            return
        await r.stop()
        self._retiring.remove(r)
        self._emit("ReplicaStopped", f"{self.name}: stopped replica pid {r.pid} :{r.port}", r)

    @property
    def pids(self) -> tuple[int, ...]:
        """The PIDs of this revision's replica processes (not of failed ones it stopped)."""
        return tuple(r.pid for r in self.replicas if r.pid is not None and not r.stopped_failed)

    def _publish(self) -> None:
        ready = [r.address for r in self.replicas if r.state is ReplicaState.READY]
        current = [ep.key for ep in self.pool.endpoints]
        if ready != current:
            self.pool.set_endpoints(ready)
        starting = sum(1 for r in self.replicas if r.state is ReplicaState.STARTING)
        # A replacement pending its backoff counts as starting (requests wait for it),
        # unless replicas keep crashing: then requests fail at once with the reason.
        starting += int(len(self.replicas) < self.desired and self._crashes < CRASH_LOOP)
        self.pool.set_status(
            starting=starting,
            desired=self.desired,
            failure=self.failure,
            routable=self._state == READY,
        )

    async def shutdown(self) -> None:
        """Stop every replica this deployer started (by PID) and wait for them."""
        self._stopped = True
        self._wake.set()
        for task in list(self._draining):
            task.cancel()
        # Replicas still draining from a scale-down are stopped here too.
        victims = [*self.replicas, *self._retiring]
        self.shutdown_pids = [
            r.pid for r in victims if r.pid is not None and r.proc and r.proc.returncode is None
        ]
        self.replicas.clear()
        self._retiring.clear()
        self.pool.set_endpoints([])
        await asyncio.gather(*(r.stop() for r in victims), return_exceptions=True)


def _log_tail(path: Path | None) -> str:
    """The last non-empty line the replica wrote, to say why it died."""
    if path is None or not path.exists():
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 4096))
            lines = [ln.strip() for ln in f.read().decode(errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [ln for ln in lines if ln]
    # Why it died is the last error it wrote (an exception's last line), not whatever
    # came last: uvicorn's "INFO: Waiting for application startup." says nothing.
    for line in reversed(lines):
        if _ERROR_LINE.search(line):
            return f": {line[:300]}"
    if lines and not lines[-1].startswith(("INFO:", "DEBUG:")):
        return f": {lines[-1][:300]}"
    return ""


_ERROR_LINE = re.compile(
    r"^(\w+\.)*\w*(Error|Exception|Exit|Interrupt)\b|^(ERROR|CRITICAL|FATAL)\b|\berror:|"
    r"Segmentation fault|Killed|out of memory",
    re.IGNORECASE,
)
