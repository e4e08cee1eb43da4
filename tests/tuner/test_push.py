"""Push collection: the receiver over real HTTP, and report() from real trial processes."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.util import wait_until
from tuner import report as report_module
from tuner.backends.base import TrialRun
from tuner.backends.local import LocalBackend
from tuner.metrics.push import PushReceiver
from tuner.report import PushError, report, set_sink
from tuner.spec.models import CollectorSpec, MetricsCollectorKind, MetricsCollectorSpec
from tuner.types import Observation

REPO = Path(__file__).resolve().parents[2]
PUSH = MetricsCollectorSpec(collector=CollectorSpec(kind=MetricsCollectorKind.PUSH))


class Store:
    """Stands in for the controller's store: records what on_observations received
    (idempotency keys as the real store does; the real store is tested in test_store)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[tuple[str, Observation]] = []
        self.keys: list[str | None] = []  # every call's key, duplicates included
        self.fail = 0  # the next ``fail`` calls raise before storing
        self.lose_answers = 0  # the next calls store, then fail as a lost answer would

    def __call__(self, trial: str, observations: list[Observation], key: str | None) -> bool:
        with self.lock:
            self.keys.append(key)
            if self.fail:
                self.fail -= 1
                raise RuntimeError("database is locked")
            if key is not None and key in self.keys[:-1] and not self.lose_answers:
                return False
            self.received.extend((trial, o) for o in observations)
            if self.lose_answers:
                self.lose_answers -= 1
                raise RuntimeError("committed, but the answer never left")
            return True


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def receiver(store: Store) -> Iterator[PushReceiver]:
    r = PushReceiver(store)
    r.start()
    yield r
    r.stop()


def post(url: str, trial: str, body: bytes | dict[str, object], token: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        f"{url}/v1/trials/{trial}/observations",
        content=content,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=10,
    )


def test_receiver_accepts_and_rejects(receiver: PushReceiver, store: Store) -> None:
    assert receiver.url is not None and receiver.url.startswith("http://127.0.0.1:")
    token = receiver.register("t1")
    ok = {"observations": [{"name": "loss", "value": 0.5, "step": 3, "timestamp": 12.5}]}
    response = post(receiver.url, "t1", ok, token)
    assert response.status_code == 200 and response.json() == {"accepted": 1}
    assert store.received == [("t1", Observation("loss", 0.5, 3, 12.5))]

    def error(response: httpx.Response, status: int) -> str:
        assert response.status_code == status, response.text
        return str(response.json()["error"])

    assert "unknown trial" in error(post(receiver.url, "nobody", ok, token), 404)
    assert "token" in error(post(receiver.url, "t1", ok, "wrong"), 401)
    assert "JSON" in error(post(receiver.url, "t1", b"{not json", token), 400)
    nan = b'{"observations": [{"name": "loss", "value": NaN}]}'
    assert "NaN" in error(post(receiver.url, "t1", nan, token), 400)
    huge = b'{"observations": [], "pad": "' + b"x" * (1 << 20) + b'"}'
    assert "body over" in error(post(receiver.url, "t1", huge, token), 413)
    bad_value = {"observations": [{"name": "loss", "value": "high"}]}
    assert "loss" in error(post(receiver.url, "t1", bad_value, token), 400)
    assert error(httpx.get(f"{receiver.url}/v1/trials/t1/observations"), 405)
    store.fail = 1
    assert "database is locked" in error(post(receiver.url, "t1", ok, token), 503)
    bad_key = httpx.post(
        f"{receiver.url}/v1/trials/t1/observations",
        json=ok,
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "a/b"},
    )
    assert "Idempotency-Key" in error(bad_key, 400)
    receiver.unregister("t1")
    assert error(post(receiver.url, "t1", ok, token), 404)
    assert len(store.received) == 1


def test_a_retried_report_is_stored_once(
    tmp_path: Path, receiver: PushReceiver, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = receiver.register("t1")
    url_file = tmp_path / "push-url"
    receiver.write_url_file(url_file)
    monkeypatch.setenv("HYPERFLOW_PUSH_URL_FILE", str(url_file))
    monkeypatch.setenv("HYPERFLOW_TRIAL_NAME", "t1")
    monkeypatch.setenv("HYPERFLOW_PUSH_TOKEN", token)
    # The first attempt is committed but its answer is lost (503 here; a controller crash
    # in real life): report() retries with the same key and the value is not stored again.
    store.lose_answers = 1
    try:
        report(step=0, loss=0.5)
        report(step=1, loss=0.25)
    finally:
        report_module._drop_connection()
    first, retry, second = store.keys
    assert first is not None and first == retry and second != first
    assert [(o.step, o.value) for _, o in store.received] == [(0, 0.5), (1, 0.25)]


def test_silent_clients_lose_their_connection_and_report_reconnects(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import select
    import socket

    from tuner.metrics import push

    monkeypatch.setattr(push._Handler, "timeout", 0.3)
    receiver = PushReceiver(store)
    receiver.start()
    try:
        assert receiver.url is not None
        token = receiver.register("t1")
        port = int(receiver.url.rsplit(":", 1)[1])
        # A request that stops halfway: the receiver drops it instead of waiting forever.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"POST /v1/trials/t1/observations HTTP/1.1\r\nContent-Length: 50\r\n\r\n{")
            assert s.recv(1024) == b""  # closed, well before the socket's own 10 s
        url_file = tmp_path / "push-url"
        receiver.write_url_file(url_file)
        monkeypatch.setenv("HYPERFLOW_PUSH_URL_FILE", str(url_file))
        monkeypatch.setenv("HYPERFLOW_TRIAL_NAME", "t1")
        monkeypatch.setenv("HYPERFLOW_PUSH_TOKEN", token)
        report(step=0, loss=0.5)
        # Wait for the receiver to close the kept-alive connection (EOF on its socket) ...
        conn = report_module._conn
        assert conn is not None and conn.sock is not None
        sock = conn.sock

        def closed_by_receiver() -> bool:
            readable, _, _ = select.select([sock], [], [], 0.05)
            return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""

        wait_until(closed_by_receiver, timeout=30, interval=0)
        report(step=1, loss=0.25)  # ... and report() reconnects
    finally:
        report_module._drop_connection()
        receiver.stop()
    assert [(o.step, o.value) for _, o in store.received] == [(0, 0.5), (1, 0.25)]


def test_report_needs_a_trial_and_finite_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HYPERFLOW_PUSH_URL_FILE", "HYPERFLOW_TRIAL_NAME", "HYPERFLOW_PUSH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match="outside a hyperflow trial"):
        report(loss=1.0)
    with pytest.raises(ValueError, match="'loss'"):
        report(loss=math.nan)
    with pytest.raises(ValueError, match="'acc'"):
        report(loss=1.0, acc="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="step"):
        report(step=1.5, loss=1.0)  # type: ignore[arg-type]


def test_report_through_an_installed_sink() -> None:
    got: list[Observation] = []
    set_sink(got.extend)
    try:
        report(step=2, loss=0.5, accuracy=1)
    finally:
        set_sink(None)
    assert [(o.name, o.value, o.step) for o in got] == [("loss", 0.5, 2), ("accuracy", 1.0, 2)]


def test_report_refused_raises_push_error(
    tmp_path: Path, receiver: PushReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.register("t1")
    url_file = tmp_path / "push-url"
    receiver.write_url_file(url_file)
    monkeypatch.setenv("HYPERFLOW_PUSH_URL_FILE", str(url_file))
    monkeypatch.setenv("HYPERFLOW_TRIAL_NAME", "t1")
    monkeypatch.setenv("HYPERFLOW_PUSH_TOKEN", "not-the-token")
    try:
        with pytest.raises(PushError, match="401"):
            report(loss=1.0)
    finally:
        report_module._drop_connection()


TRIAL = """
import sys
from tuner.report import report
go = sys.argv[1]  # a FIFO: opening it to read waits until the test opens it to write
for step in range(5):
    if step == 2:
        with open(go) as signal:
            signal.read()
    print(f"reporting {step}", flush=True)
    report(step=step, loss=1.0 / (step + 1), accuracy=step / 10)
print("done", flush=True)
"""


def test_trial_reports_across_a_receiver_restart(tmp_path: Path) -> None:
    url_file = tmp_path / "experiment" / "push-url"
    store, restarted_store = Store(), Store()
    first = PushReceiver(store)
    first.start()
    first.write_url_file(url_file)
    token = first.register("t1")
    go = tmp_path / "go"
    os.mkfifo(go)
    run = TrialRun(
        experiment_name="exp",
        trial_name="t1",
        command=["python", "-c", TRIAL, str(go)],
        env={"HYPERFLOW_PUSH_URL_FILE": str(url_file), "HYPERFLOW_PUSH_TOKEN": token},
        cwd=Path(__file__).resolve().parents[2],  # so the trial imports this checkout
        trial_dir=tmp_path / "trials" / "t1",
        assignments={},
        collector=PUSH,
        metric_names=["loss", "accuracy"],
    )
    backend = LocalBackend(kill_grace=0.5)
    second: PushReceiver | None = None
    try:
        backend.launch(run)
        wait_until(lambda: len(store.received) == 4)  # steps 0 and 1, two metrics each
        first.stop()  # the controller dies; the trial keeps going

        def trial_let_on() -> bool:
            # The trial waits in open() for a writer: open and close the write end (EOF).
            try:
                fd = os.open(go, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: the trial has not reached step 2 yet
                return False
            os.close(fd)
            return True

        wait_until(trial_let_on, timeout=60)
        log = backend.log_path("t1")
        wait_until(lambda: "reporting 2" in log.read_text())
        second = PushReceiver(restarted_store)  # the restarted controller: new port, same token
        second.start()
        assert second.url != first.url
        second.register("t1", token)
        second.write_url_file(url_file)
        wait_until(lambda: backend.poll("t1") is not None)
        exit_ = backend.poll("t1")
        assert exit_ is not None and exit_.succeeded, log.read_text()
        assert backend.collect("t1") == []  # push observations do not come from files
    finally:
        backend.close()
        first.stop()
        if second is not None:
            second.stop()
    received = store.received + restarted_store.received
    assert [(o.name, o.step) for _, o in received] == [
        (name, step) for step in range(5) for name in ("loss", "accuracy")
    ]
    assert [o.value for _, o in received if o.name == "loss"] == [1.0, 0.5, 1 / 3, 0.25, 0.2]
    # Steps 2.. were refused by the stopped receiver and retried against the new one.
    assert [o.step for _, o in restarted_store.received] == [2, 2, 3, 3, 4, 4]


def test_report_imports_only_the_standard_library() -> None:
    code = (
        "import sys, tuner.report; "
        "heavy = [m for m in ('pydantic', 'httpx', 'tuner.types', 'tuner.spec', 'http.client') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    assert out.strip() == "[]"
