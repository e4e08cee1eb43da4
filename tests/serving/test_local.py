"""Local deployment end to end on loopback: replica processes (a stand-in model server
with the replica's command line), the router, the autoscaler and the activator."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from serving.autoscaler import AutoscalerConfig
from serving.local import Listener, LocalDeployment, RevisionSpec
from serving.router.pool import Unavailable
from tests.util import free_port, wait_until

UPSTREAM = Path(__file__).with_name("test_router_upstream.py")


def fake_argv(spec: RevisionSpec, listener: Listener) -> list[str]:
    return [
        sys.executable,
        str(UPSTREAM),
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
    ]


def spec(name: str = "m", revision: str = "default", **scaling: object) -> RevisionSpec:
    cfg = AutoscalerConfig(**{"tick_interval": 0.2, **scaling})  # type: ignore[arg-type]
    return RevisionSpec(
        service=name,
        revision=revision,
        isvc_json=json.dumps({"metadata": {"name": name}}),
        base_dir=Path.cwd(),
        autoscaling=cfg,
    )


@contextlib.asynccontextmanager
async def deployed(
    specs: list[RevisionSpec],
    env: dict[str, str] | None = None,
    *,
    events: list[str] | None = None,
    argv: Callable[[RevisionSpec, Listener], list[str]] = fake_argv,
    **kw: object,
) -> AsyncIterator[tuple[LocalDeployment, str]]:
    """The deployment behind its router on a free port (replicas: the stand-in, or
    ``argv``); afterwards every replica it started is gone."""
    sink = events if events is not None else []
    dep = LocalDeployment(specs, argv=argv, env=env, on_event=sink.append, **kw)  # type: ignore[arg-type]
    stop = asyncio.Event()
    started = asyncio.Event()
    port = free_port()
    task = asyncio.create_task(dep.serve("127.0.0.1", port, started=started.set, stop=stop))
    await asyncio.wait_for(started.wait(), 30)
    try:
        yield dep, f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
        for pid in dep.started_pids():
            assert not _alive(pid), f"replica pid {pid} survived shutdown"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def until(pred: Callable[[], bool | Awaitable[bool]], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        res = pred()
        if not isinstance(res, bool):
            res = await res
        if res:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("condition not met")


def test_cold_start_from_zero_holds_requests_and_serves_all() -> None:
    async def main() -> None:
        s = spec(min_replicas=0, stable_window=1.0, scale_to_zero_grace=1.0)
        env = {"UPSTREAM_READY_DELAY": "0.5"}
        async with deployed([s], env=env) as (dep, url):
            rev = dep.revisions[0]
            # Starts at initial scale 1; with no traffic, after the grace period (on a
            # slow machine possibly before that replica was even ready) it goes to zero.
            await until(lambda: rev.deployer.started_pids != [], timeout=15)
            await until(lambda: not rev.deployer.replicas, timeout=15)
            assert rev.pool.endpoints == []
            async with httpx.AsyncClient(base_url=url, timeout=30) as c:
                rs = await asyncio.gather(
                    *(c.post("/v2/models/m/infer", content=b"{}") for _ in range(20))
                )
            assert [r.status_code for r in rs] == [200] * 20
            assert len(rev.deployer.started_pids) == 2

    asyncio.run(main())


def test_replica_killed_is_restarted() -> None:
    async def main() -> None:
        async with deployed([spec()]) as (dep, url):
            rev = dep.revisions[0]
            await until(lambda: len(rev.pool.endpoints) == 1)
            victim = rev.deployer.replicas[0].pid
            assert victim is not None
            os.kill(victim, signal.SIGKILL)
            await until(lambda: bool(rev.pool.endpoints) and rev.deployer.replicas[0].pid != victim)
            assert rev.deployer.restarts == 1
            async with httpx.AsyncClient(base_url=url) as c:
                r = await c.post("/v2/models/m/infer", content=b"{}")
            assert r.status_code == 200 and r.json()["pid"] != victim

    asyncio.run(main())


def test_model_load_failure_is_visible_and_not_crash_looping() -> None:
    async def main() -> None:
        env = {"UPSTREAM_FAIL": "cannot load model: /nope/model.joblib not found"}
        async with deployed([spec()], env=env, hold_timeout=2.0) as (dep, url):
            rev = dep.revisions[0]
            await until(lambda: rev.deployer.failure is not None)
            assert "model.joblib" in (dep.status()[0].reason or "")
            async with httpx.AsyncClient(base_url=url) as c:
                r = await c.get("/v2/models/m/ready")
                assert r.status_code == 503 and "model.joblib" in r.json()["error"]
                r = await c.get("/v1/models/m")
                assert r.status_code == 503 and "model.joblib" in r.json()["error"]
                assert (await c.get("/v2/health/ready")).status_code == 503
            # Let the deployer reconcile a few more times (counted, not timed): a crash loop
            # would have restarted the replica by then.
            cycles = 0
            publish = rev.pool.set_status

            def counted(*args: Any, **kwargs: Any) -> None:
                nonlocal cycles
                cycles += 1
                publish(*args, **kwargs)

            rev.pool.set_status = counted  # type: ignore[method-assign]

            def reconciled_thrice() -> bool:
                rev.deployer.wake()
                return cycles >= 3

            await until(reconciled_thrice)
            assert len(rev.deployer.started_pids) == 1  # kept, not restarted in a loop
            assert rev.deployer.restarts == 0

    asyncio.run(main())


def test_load_scales_up_then_down() -> None:
    async def main() -> None:
        s = spec(
            target=1.0,
            stable_window=4.0,
            panic_window_percentage=25.0,
            min_replicas=1,
            max_replicas=4,
            tick_interval=0.25,
        )
        async with deployed([s], env={"UPSTREAM_SLEEP": "0.2"}) as (dep, url):
            rev = dep.revisions[0]
            await until(lambda: len(rev.pool.endpoints) == 1)
            peak = 0
            # Bounded load: until 3 replicas are ready (or 15 s, a slow machine's margin).
            stop_at = time.monotonic() + 15.0
            async with httpx.AsyncClient(base_url=url, timeout=10) as c:

                async def worker() -> None:
                    nonlocal peak
                    while time.monotonic() < stop_at and peak < 3:
                        r = await c.post("/v2/models/m/infer", content=b"{}")
                        assert r.status_code == 200
                        peak = max(peak, len(rev.pool.endpoints))

                await asyncio.gather(*(worker() for _ in range(6)))
            assert peak >= 3, f"expected scale up under load, peak ready {peak}"
            assert rev.deployer.desired <= 4
            # Quiet: back to minReplicas once the stable window drained (and panic ended).
            await until(lambda: len(rev.deployer.replicas) == 1, timeout=20)

    asyncio.run(main())


RUNNER = """
import asyncio, sys
sys.path.insert(0, {repo!r})
from tests.serving.test_local import fake_argv, spec
from serving.local import LocalDeployment

async def main():
    dep = LocalDeployment([spec(min_replicas=2, initial_replicas=2)], argv=fake_argv)
    await dep.start()
    await dep.wait_ready(30)
    print(" ".join(map(str, dep.started_pids())), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def test_replicas_do_not_outlive_a_killed_runner() -> None:
    import subprocess

    from tests.util import REPO

    code = RUNNER.format(repo=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True
    )
    try:
        assert proc.stdout is not None
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
    finally:
        proc.kill()  # SIGKILL: the runner gets no chance to clean up
        proc.wait(10)
    wait_until(lambda: not any(_alive(p) for p in pids), timeout=10)


def test_crash_looping_replica_backs_off_and_reports_why() -> None:
    def crashing(spec: RevisionSpec, listener: Listener) -> list[str]:
        code = "import sys; print('boom: model server cannot start', file=sys.stderr); sys.exit(3)"
        return [sys.executable, "-c", code]

    async def main(log_dir: Path) -> None:
        events: list[str] = []
        dep = LocalDeployment([spec()], argv=crashing, log_dir=log_dir, on_event=events.append)
        await dep.start()
        try:
            rev = dep.revisions[0]
            await until(lambda: rev.deployer.restarts >= 3, timeout=20)
            reason = rev.deployer.failure or ""
            assert "exited with code 3" in reason and "boom" in reason
            # Backoff: 0.5 s, 1 s, 2 s ... so only a handful of starts in this time.
            assert len(rev.deployer.started_pids) <= 5
            try:
                await asyncio.wait_for(rev.pool.acquire(), 5)
            except Unavailable as exc:
                assert "boom" in str(exc)
            else:
                raise AssertionError("a crash-looping revision must not take requests")
            assert any("restarting in" in e for e in events)
        finally:
            await dep.shutdown()

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(Path(tmp)))
