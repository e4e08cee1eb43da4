"""Serving under faults, with real replica processes (``python -m serving.replica``) and
the router on loopback: revisions reach readiness before the autoscaler may remove them,
a canary gets traffic only once Ready, a request to replicas that were all killed
(``kill -9``) waits for a new one, and replica ports are never raced for.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from serving.local import LocalDeployment, RevisionSpec, replica_argv, revision_specs
from serving.local.deployer import RevisionDeployer
from serving.local.runner import status_table
from serving.router import RevisionPool, RoutedService, Router
from serving.spec import load_inference_services
from tests.serving.test_local import _alive, until
from tests.serving.test_local import deployed as local_deployed
from tests.serving.test_router import RouterThread
from tests.util import REPO, free_port, run_hyperflow, running, wait_http_ok

ROW = [6.2, 3.4, 5.4, 2.3]

MODELS = '''
import time


class Constant:
    """Loads at once and predicts class 3 (no framework: a replica starts fast)."""

    def __init__(self, name):
        self.name = name
        self.ready = False

    def load(self):
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        return {"predictions": [3]}


class SlowLoad:
    """Ready after LOAD seconds; predicts class 7 (to tell it from the sklearn model)."""

    LOAD = 2.0

    def __init__(self, name):
        self.name = name
        self.ready = False

    def load(self):
        time.sleep(self.LOAD)
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        return {"predictions": [7]}


class GatedLoad(SlowLoad):
    """Ready once the test creates the file ``open-gate`` next to this module."""

    def load(self):
        from pathlib import Path

        gate = Path(__file__).with_name("open-gate")
        deadline = time.monotonic() + 120
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.ready = True
        return True


class FailLoad(SlowLoad):
    LOAD = 1.0

    def load(self):
        time.sleep(self.LOAD)
        raise RuntimeError("weights are corrupt")
'''


def isvc_yaml(name: str, model: str, *, extra: str = "", annotations: str = "") -> str:
    """A service of ``model``: a class of MODELS, or ``missing`` (an sklearn model whose
    storageUri does not exist)."""
    if model == "missing":
        impl = "      modelFormat: {name: sklearn}\n      storageUri: ./no-such-model\n"
    else:
        impl = f"      modelFormat: {{name: custom}}\n      runtime: faulty_models:{model}\n"
    notes = f"  annotations:\n{annotations}" if annotations else ""
    return (
        "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n"
        f"metadata:\n  name: {name}\n{notes}spec:\n  predictor:\n{extra}    model:\n{impl}"
    )


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "faulty_models.py").write_text(MODELS)
    return tmp_path


def specs_of(workdir: Path, *docs: str, tick: float = 0.2) -> list[RevisionSpec]:
    isvcs = []
    for i, doc in enumerate(docs):
        path = workdir / f"isvc{i}.yaml"
        path.write_text(doc)
        isvcs += load_inference_services(path)
    return revision_specs(isvcs, tick_interval=tick)


def deployed(
    specs: list[RevisionSpec], events: list[str] | None = None, **kw: object
) -> contextlib.AbstractAsyncContextManager[tuple[LocalDeployment, str]]:
    """Real replicas (``python -m serving.replica``) behind the router on a free port."""
    return local_deployed(specs, events=events, argv=replica_argv, **kw)


V1 = {"instances": [ROW]}


# --- item 3: initial scale and readiness first; a model that cannot load is Failed -------


def test_new_revision_reaches_readiness_before_scale_to_zero(workdir: Path) -> None:
    # minReplicas 0, no retention, Knative's shortest window: an idle revision may go to
    # zero after one window, but not before its first replica finished loading (2 s) and
    # was ready.
    quick_zero = (
        '    autoscaling.knative.dev/scale-to-zero-pod-retention-period: "0s"\n'
        '    autoscaling.knative.dev/window: "6s"\n'
    )
    specs = specs_of(
        workdir,
        isvc_yaml("slow", "SlowLoad", extra="    minReplicas: 0\n", annotations=quick_zero),
    )
    events: list[str] = []

    async def main() -> None:
        async with deployed(specs, events) as (dep, _url):
            rev = dep.revisions[0]
            # Read from the events, not by polling the pool: with no retention, the tick
            # that finds the replica ready may also take it away before a poll looks.
            ready = "slow/default: revision Ready"
            await until(lambda: ready in events, timeout=60)
            # Then to zero.
            await until(lambda: any("stopped replica" in e for e in events), timeout=30)
            assert not rev.deployer.replicas and len(rev.deployer.started_pids) == 1
            stopped = next(i for i, e in enumerate(events) if "stopped replica" in e)
            assert events.index(ready) < stopped, events

    asyncio.run(main())


def test_revision_whose_model_cannot_load_is_failed_with_the_reason(workdir: Path) -> None:
    quick_zero = '    autoscaling.knative.dev/scale-to-zero-pod-retention-period: "0s"\n'
    specs = specs_of(
        workdir,
        isvc_yaml("broken", "FailLoad", extra="    minReplicas: 0\n", annotations=quick_zero),
    )
    events: list[str] = []

    async def main() -> None:
        async with deployed(specs, events, hold_timeout=5.0) as (dep, url):
            rev = dep.revisions[0]
            # Looked at on every turn of the loop: the reason and the state change together
            # (never the reason of a revision that still says Starting).
            deadline = time.monotonic() + 60
            while "weights are corrupt" not in (rev.deployer.failure or ""):
                assert time.monotonic() < deadline, "the load error never showed"
                await asyncio.sleep(0)
            status = dep.status()[0]
            assert status.state == "Failed" and "weights are corrupt" in (status.reason or "")
            # Kept (not scaled away, not restarted): the reason stays visible. Its process
            # is stopped: it would never serve, and held the model's memory for nothing.
            [pid] = rev.deployer.started_pids
            await until(lambda: not _alive(pid), timeout=20)
            await until(lambda: any(f"stopped replica pid {pid}" in e for e in events))
            await asyncio.sleep(1.0)  # several reconciles: no restart
            assert rev.deployer.started_pids == [pid] and rev.deployer.restarts == 0
            assert dep.status()[0].state == "Failed" and dep.status()[0].pids == ()
            async with httpx.AsyncClient(base_url=url, timeout=30) as c:
                r = await c.post("/v1/models/broken:predict", json=V1)
            assert r.status_code == 503 and "weights are corrupt" in r.json()["error"]
            assert any("revision Failed" in e and "weights are corrupt" in e for e in events)

    asyncio.run(main())


# --- item 1: a canary gets its share only once Ready -------------------------------------


def test_canary_that_fails_to_load_gets_no_traffic(workdir: Path) -> None:
    specs = specs_of(
        workdir,
        isvc_yaml("iris", "Constant"),
        isvc_yaml("iris", "missing", extra="    canaryTrafficPercent: 20\n"),
    )

    async def main() -> None:
        async with deployed(specs) as (dep, url):
            default, canary = dep.revisions
            await until(lambda: bool(default.pool.endpoints), timeout=60)
            await until(lambda: canary.deployer.failure is not None, timeout=60)
            async with httpx.AsyncClient(base_url=url, timeout=30) as c:
                rs = [await c.post("/v1/models/iris:predict", json=V1) for _ in range(50)]
            assert [r.status_code for r in rs] == [200] * 50
            assert {r.headers["x-hyperflow-revision"] for r in rs} == {"default"}
            d, k = dep.status()
            assert k.state == "Failed"
            assert (d.traffic, k.traffic, k.configured_traffic) == (100, 0, 20)
            assert "no-such-model" in (k.reason or "")
            table = _render(dep)
            assert "0% (20% when Ready)" in table and "revision Failed" in table

    asyncio.run(main())


def test_canary_still_loading_gets_no_traffic_until_ready(workdir: Path) -> None:
    specs = specs_of(
        workdir,
        isvc_yaml("iris", "Constant"),
        isvc_yaml("iris", "GatedLoad", extra="    canaryTrafficPercent: 50\n"),
    )

    async def main() -> None:
        async with deployed(specs) as (dep, url):
            default = dep.revisions[0]
            async with httpx.AsyncClient(base_url=url, timeout=30) as c:
                await until(lambda: bool(default.pool.endpoints), timeout=60)
                early = [await c.post("/v1/models/iris:predict", json=V1) for _ in range(10)]
                assert {r.headers["x-hyperflow-revision"] for r in early} == {"default"}
                assert dep.status()[1].state == "Starting" and dep.status()[1].traffic == 0
                (workdir / "open-gate").touch()  # the canary's model finishes loading
                await until(lambda: dep.status()[1].state == "Ready", timeout=60)
                late = [await c.post("/v1/models/iris:predict", json=V1) for _ in range(20)]
            served = Counter(r.headers["x-hyperflow-revision"] for r in late)
            assert served == {"default": 10, "canary": 10}
            assert {r.json()["predictions"][0] for r in late if r.headers[
                "x-hyperflow-revision"] == "canary"} == {7}  # fmt: skip

    asyncio.run(main())


def _render(dep: LocalDeployment) -> str:
    from rich.console import Console

    console = Console(width=200, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(status_table(dep.status(), "http://x"))
    return console.export_text()


# --- item 2: every replica killed: requests wait for a new one, as at a cold start ---------


def _constant_replica(workdir: Path, port: int) -> list[str]:
    isvc = (
        '{"apiVersion":"serving.kserve.io/v1beta1","kind":"InferenceService",'
        '"metadata":{"name":"iris"},"spec":{"predictor":{"model":{"modelFormat":'
        '{"name":"custom"},"runtime":"faulty_models:Constant"}}}}'
    )
    return [
        sys.executable, "-m", "serving.replica", "--isvc-json", isvc, "--base-dir",
        str(workdir), "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip


@contextlib.contextmanager
def replica_processes(workdir: Path, n: int) -> Iterator[list[tuple[int, object]]]:
    """``n`` real replica processes, started together, each ready when this yields."""
    with contextlib.ExitStack() as stack:
        started = []
        for _ in range(n):
            port = free_port()
            proc = stack.enter_context(running(_constant_replica(workdir, port), cwd=REPO))
            started.append((port, proc))
        for port, proc in started:
            wait_http_ok(f"http://127.0.0.1:{port}/v2/health/ready", timeout=60, proc=proc)
        yield started


def test_request_to_killed_replicas_waits_for_a_new_one(workdir: Path) -> None:
    pool = RevisionPool("iris", "default", hold_timeout=60)
    router = Router()
    router.add(RoutedService("iris", pool))
    with replica_processes(workdir, 3) as replicas, RouterThread(router) as rt:
        (port_a, proc_a), (port_b, proc_b), (port_c, _) = replicas
        rt.call(lambda: pool.set_endpoints([("127.0.0.1", port_a), ("127.0.0.1", port_b)]))
        with httpx.Client(base_url=rt.url, timeout=60) as c:
            assert c.post("/v1/models/iris:predict", json=V1).status_code == 200
            for proc in (proc_a, proc_b):  # both gone, the router not told
                os.kill(proc.pid, signal.SIGKILL)  # type: ignore[attr-defined]
                proc.wait(10)  # type: ignore[attr-defined]
            answer: list[httpx.Response] = []
            sent = threading.Thread(
                target=lambda: answer.append(c.post("/v1/models/iris:predict", json=V1))
            )
            sent.start()
            sent.join(1.0)
            assert not answer, f"answered without a replica: {answer[0].text}"
            assert pool.endpoints == []  # the refused replicas are out of rotation
            # A new replica arrives (what the deployer's restart does): the request goes.
            replaced_at = time.monotonic()
            rt.call(lambda: pool.set_endpoints([("127.0.0.1", port_c)]))
            sent.join(30)
            assert answer and answer[0].status_code == 200, answer
            assert answer[0].json() == {"predictions": [3]}
            assert time.monotonic() >= replaced_at


def test_killing_every_replica_under_load_loses_no_request(workdir: Path) -> None:
    """End to end: the deployer restarts them, the router holds the requests meanwhile;
    replica ports (the first ones and the restarts) all come from --replica-ports."""
    taken = socket.socket()  # one port of the range is in use by someone else
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    first = taken.getsockname()[1]
    ports = range(first, first + 8)
    specs = specs_of(workdir, isvc_yaml("iris", "Constant", extra="    minReplicas: 2\n"))
    events: list[str] = []

    async def main() -> None:
        async with deployed(specs, events, replica_ports=ports) as (dep, url):
            rev = dep.revisions[0]
            await until(lambda: len(rev.pool.endpoints) == 2, timeout=60)
            victims = [r.pid for r in rev.deployer.replicas]
            async with httpx.AsyncClient(base_url=url, timeout=60) as c:
                for pid in victims:
                    os.kill(pid, signal.SIGKILL)  # type: ignore[arg-type]
                rs = await asyncio.gather(
                    *(c.post("/v1/models/iris:predict", json=V1) for _ in range(30))
                )
            assert [r.status_code for r in rs] == [200] * 30
            assert not set(victims) & {r.pid for r in rev.deployer.replicas}
            used = [int(e.rsplit(":", 1)[1]) for e in events if "started replica" in e]
            assert len(used) >= 4  # two, then their two replacements
            assert set(used) <= set(ports) and first not in used

    try:
        asyncio.run(main())
    finally:
        taken.close()


# --- item 11: replica ports: bound by the deployer, handed over, optionally in a range ------

SLOW_LISTENER = """
import socket, sys, time
time.sleep(1.5)  # a replica still importing its model server
fd, port = int(sys.argv[1]), int(sys.argv[2])
if fd >= 0:
    sock = socket.socket(fileno=fd)
else:
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
sock.listen()
time.sleep(60)
"""


def test_replica_port_is_held_until_the_replica_listens() -> None:
    def argv(listener: object) -> list[str]:
        fd = getattr(listener, "fd", -1)
        port = getattr(listener, "port", listener)
        return [sys.executable, "-c", SLOW_LISTENER, str(fd), str(port)]

    async def main() -> None:
        deployer = RevisionDeployer(RevisionPool("m", "default"), argv, initial=1)
        task = asyncio.create_task(deployer.run())
        try:
            await until(lambda: bool(deployer.replicas), timeout=20)
            port = deployer.replicas[0].port
            # Before the replica listens, no one else can take its port.
            with socket.socket() as intruder:
                with pytest.raises(OSError) as info:
                    intruder.bind(("127.0.0.1", port))
                assert info.value.errno == errno.EADDRINUSE
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await deployer.shutdown()

    asyncio.run(main())


def test_no_free_port_in_the_range_fails_the_revision_with_the_reason() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    port = taken.getsockname()[1]

    async def main() -> None:
        deployer = RevisionDeployer(
            RevisionPool("m", "default"),
            lambda listener: [sys.executable, "-c", "pass"],
            initial=1,
            ports=range(port, port + 1),
            backoff_base=0.02,
        )
        task = asyncio.create_task(deployer.run())
        try:
            await until(lambda: deployer.state == "Failed", timeout=20)
            assert f"no free port in {port}-{port}" in (deployer.failure or "")
            assert deployer.started_pids == []
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await deployer.shutdown()

    try:
        asyncio.run(main())
    finally:
        taken.close()


def test_serve_run_refuses_a_bad_port_range(workdir: Path) -> None:
    (workdir / "iris.yaml").write_text(isvc_yaml("iris", "Constant"))
    r = run_hyperflow(
        "serve", "run", "-f", str(workdir / "iris.yaml"), "--replica-ports", "9000-80"
    )
    assert r.returncode == 2
    assert "--replica-ports" in r.stdout and "FIRST <= LAST" in r.stdout


def test_serve_run_on_a_taken_port_says_which_and_starts_no_replica(workdir: Path) -> None:
    (workdir / "iris.yaml").write_text(isvc_yaml("iris", "Constant"))
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        r = run_hyperflow("serve", "run", "-f", str(workdir / "iris.yaml"), "--port", str(port))
    finally:
        taken.close()
    assert r.returncode == 1
    assert r.stdout.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: {os.strerror(errno.EADDRINUSE)} "
        "(choose another --port)"
    ]


def test_a_refused_connection_makes_the_deployer_probe_the_replica_again() -> None:
    from tests.serving.test_local import spec

    events: list[str] = []

    async def main() -> None:
        async with local_deployed([spec()], events=events) as (dep, _url):
            rev = dep.revisions[0]
            await until(lambda: len(rev.pool.endpoints) == 1, timeout=30)
            (replica,) = rev.deployer.replicas
            rev.pool.mark_unreachable(rev.pool.endpoints[0])  # what the router does
            assert rev.pool.endpoints == [] and replica.state.value == "starting"
            # Alive after all: its next probe puts it back in rotation.
            await until(lambda: len(rev.pool.endpoints) == 1, timeout=30)
            assert rev.deployer.replicas == [replica] and rev.deployer.restarts == 0
            assert any("refused a connection" in e for e in events)

    asyncio.run(main())


def test_revision_not_ready_by_its_progress_deadline_is_failed() -> None:
    never_listens = [sys.executable, "-c", "import time; time.sleep(60)"]

    async def main() -> None:
        deployer = RevisionDeployer(
            RevisionPool("m", "default"), lambda _l: never_listens, progress_deadline=0.5
        )
        task = asyncio.create_task(deployer.run())
        try:
            await until(lambda: deployer.state == "Failed", timeout=20)
            assert "no replica became ready within 0.5s (progress deadline" in (
                deployer.failure or ""
            )
            assert len(deployer.replicas) == 1  # still given its chance to become ready
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await deployer.shutdown()

    asyncio.run(main())


def test_a_dead_replica_is_said_to_die_of_its_last_error(tmp_path: Path) -> None:
    # A crash loop's reason was the log's last line: "INFO: Waiting for application startup."
    from serving.local.deployer import _log_tail
    from serving.local.replica import _exit_reason

    log = tmp_path / "replica.log"
    log.write_text(
        "INFO: Started server process [7]\n"
        "Traceback (most recent call last):\n"
        '  File "m.py", line 3, in load\n'
        "RuntimeError: weights are corrupt\n"
        "INFO: Waiting for application startup.\n"
    )
    assert _log_tail(log) == ": RuntimeError: weights are corrupt"
    log.write_text("INFO: Started server process [7]\nINFO: Waiting for application startup.\n")
    assert _log_tail(log) == ""  # nothing said is better than a wrong reason
    log.write_text("loading weights\nsegfault in libfoo\n")
    assert _log_tail(log) == ": segfault in libfoo"
    assert _exit_reason(-9) == "process was killed by SIGKILL"
    assert _exit_reason(3) == "process exited with code 3"
