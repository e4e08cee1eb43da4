"""Serving throughput: hyperflow (through its router) vs KServe, MLServer and a bare floor.

Same scikit-learn model (iris LogisticRegression, joblib), same V2 JSON request (one row
of four FP64), one replica / worker each, closed-loop load at concurrency 16 and 64 for
a fixed duration per point, from a separate load-generator process (raw asyncio sockets
with keep-alive on uvloop). Reports requests/s, p50/p99 latency and the ratio to KServe.
Also hyperflow with its batcher on at concurrency 64.

Peers run from their own venvs under benchmarks/.venvs/ (created on first run with
``python -m venv`` + ``pip install``; git-ignored):
  kserve   -> a kserve.Model subclass that loads the joblib file (1 worker)
  mlserver -> mlserver + mlserver-sklearn (model-settings.json)
  floor    -> a bare uvicorn + numpy ASGI app in hyperflow's venv (no framework)

Run:  .venv/bin/python benchmarks/serving.py [--duration 8] [--only hyperflow,kserve]
      (``server``: the same service created through ``hyperflow server``'s API and
      served by the server's router, beside ``hyperflow``: ``serve run``'s)
      .venv/bin/python benchmarks/serving.py --compare-with ../other-checkout [--rounds 8]
Everything binds 127.0.0.1. Numbers are noisy on a shared 2-core machine where the load
generator competes with the server for the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENVS = Path(__file__).resolve().parent / ".venvs"
PY = sys.executable
MODEL = "iris"
ROW = [6.7, 3.0, 5.2, 2.3]
V2_BODY = json.dumps(
    {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}
).encode()
PEER_PACKAGES = {
    "kserve": ["kserve", "scikit-learn", "joblib"],
    "mlserver": ["mlserver", "mlserver-sklearn", "scikit-learn", "joblib"],
}


# --- load generator (runs in its own process) ------------------------------------------


def loadgen(host: str, port: int, path: str, concurrency: int, duration: float) -> dict:
    """Closed loop: ``concurrency`` keep-alive connections, each one request at a time."""
    import uvloop

    request = (
        f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(V2_BODY)}\r\n\r\n"
    ).encode() + V2_BODY
    latencies: list[float] = []
    errors = [0]
    statuses: dict[int, int] = {}

    class Conn(asyncio.Protocol):
        def __init__(self, done: asyncio.Future, stop_at: float, warm_until: float) -> None:
            self.done, self.stop_at, self.warm_until = done, stop_at, warm_until
            self.buf = b""
            self.need = -1
            self.t0 = 0.0

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.send()

        def send(self) -> None:
            self.t0 = time.perf_counter()
            self.transport.write(request)  # type: ignore[attr-defined]

        def data_received(self, data: bytes) -> None:
            self.buf += data
            while True:
                if self.need < 0:
                    end = self.buf.find(b"\r\n\r\n")
                    if end < 0:
                        return
                    head = self.buf[:end].lower()
                    status = int(head[9:12])
                    statuses[status] = statuses.get(status, 0) + 1
                    i = head.find(b"content-length:")
                    if i < 0:
                        errors[0] += 1
                        self.transport.close()  # type: ignore[attr-defined]
                        return
                    j = head.find(b"\r\n", i)
                    length = int(head[i + 15 : j if j > 0 else len(head)])
                    self.need = end + 4 + length
                    if status != 200:
                        errors[0] += 1
                if len(self.buf) < self.need:
                    return
                self.buf = self.buf[self.need :]
                self.need = -1
                now = time.perf_counter()
                if now >= self.warm_until:
                    latencies.append(now - self.t0)
                if now >= self.stop_at:
                    self.transport.close()  # type: ignore[attr-defined]
                    return
                self.send()

        def connection_lost(self, exc: Exception | None) -> None:
            if not self.done.done():
                self.done.set_result(None)

    async def main() -> float:
        loop = asyncio.get_running_loop()
        warm = 1.0
        start = time.perf_counter()
        stop_at = start + warm + duration
        futs = []
        for _ in range(concurrency):
            fut = loop.create_future()
            await loop.create_connection(lambda f=fut: Conn(f, stop_at, start + warm), host, port)
            futs.append(fut)
        await asyncio.wait_for(asyncio.gather(*futs), warm + duration + 30)
        return time.perf_counter() - (start + warm)

    elapsed = uvloop.run(main())
    latencies.sort()
    n = len(latencies)
    return {
        "requests": n,
        "rps": n / elapsed,
        "p50_ms": 1000 * latencies[n // 2] if n else None,
        "p99_ms": 1000 * latencies[min(n - 1, int(n * 0.99))] if n else None,
        "errors": errors[0],
        "statuses": statuses,
    }


# --- servers ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_venv(name: str) -> Path:
    venv = VENVS / name
    py = venv / "bin" / "python"
    marker = venv / ".installed"
    if not marker.exists():
        print(f"creating {venv} (pip install {' '.join(PEER_PACKAGES[name])}) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *PEER_PACKAGES[name]], check=True)
        marker.write_text("ok\n")
    return py


class _Alive:
    """A stand-in for a process that does not exit (a server already being watched)."""

    def poll(self) -> None:
        return None


def wait_ready(url: str, proc: subprocess.Popen | _Alive, timeout: float = 180.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(url)


@contextlib.contextmanager
def server(args: list[str], ready_url: str, cwd: Path, env: dict | None = None) -> Iterator[None]:
    log = open(cwd / f"server-{abs(hash(tuple(args))) % 10000}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        args, cwd=cwd, env={**os.environ, **(env or {})}, stdout=log, stderr=log,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_ready(ready_url, proc)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


ISVC = """apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: iris
spec:
  predictor:
    minReplicas: 1
    maxReplicas: 1
{batcher}    model:
      modelFormat:
        name: sklearn
      storageUri: ./model
"""

KSERVE_APP = """
import sys, uuid, joblib, numpy as np, kserve
from kserve import InferRequest, InferResponse, InferOutput

class Iris(kserve.Model):
    def __init__(self, name, path):
        super().__init__(name)
        self.path = path
        self.load()

    def load(self):
        self.model = joblib.load(self.path)
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        x = payload.inputs[0].as_numpy()
        y = self.model.predict(x)
        out = InferOutput(name="predict", shape=list(y.shape), datatype="INT64")
        out.set_data_from_numpy(y.astype(np.int64))
        return InferResponse(model_name=self.name, infer_outputs=[out], response_id=payload.id or str(uuid.uuid4()))

if __name__ == "__main__":
    port = int(sys.argv[2])
    m = Iris("iris", sys.argv[1])
    kserve.ModelServer(http_port=port, workers=1, enable_grpc=False).start([m])
"""

FLOOR_APP = """
import sys, joblib, numpy as np, orjson, uvicorn
model = joblib.load(sys.argv[1])

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        msg = await receive()
        body += msg.get("body", b"")
        more = msg.get("more_body", False)
    if scope["path"].endswith("/infer"):
        req = orjson.loads(body)
        inp = req["inputs"][0]
        x = np.asarray(inp["data"], dtype=np.float64).reshape(inp["shape"])
        y = model.predict(x)
        out = {"model_name": "iris", "outputs": [{"name": "predict", "shape": list(y.shape),
               "datatype": "INT64", "data": y.tolist()}]}
    else:
        out = {"ready": True}
    data = orjson.dumps(out)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), loop="uvloop", http="httptools",
            access_log=False, log_level="warning")
"""


def setup_model(work: Path) -> Path:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    (work / "model").mkdir(exist_ok=True)
    path = work / "model" / "model.joblib"
    joblib.dump(LogisticRegression(max_iter=500).fit(x, y), path)
    return path


def check_response(port: int, path: str) -> None:
    import httpx

    r = httpx.post(
        f"http://127.0.0.1:{port}{path}",
        content=V2_BODY,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    data = r.json()["outputs"][0]["data"]
    assert list(data) == [2], data


def measure(port: int, path: str, concurrency: int, duration: float) -> dict:
    check_response(port, path)
    out = subprocess.run(
        [PY, __file__, "--loadgen", f"127.0.0.1:{port}{path}", "--concurrency", str(concurrency),
         "--duration", str(duration)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout)


def peers(work: Path, model: Path, only: set[str]) -> Iterator[tuple[str, int, str, list[int]]]:
    """Yields (name, port, infer path, concurrencies) while that server runs."""
    path = f"/v2/models/{MODEL}/infer"
    if "hyperflow" in only:
        port = free_port()
        (work / "isvc.yaml").write_text(ISVC.format(batcher=""))
        cmd = [PY, "-m", "hyperflow", "serve", "run", "-f", str(work / "isvc.yaml"),
               "--port", str(port)]  # fmt: skip
        with server(cmd, f"http://127.0.0.1:{port}/v2/models/{MODEL}/ready", work):
            yield "hyperflow", port, path, [16, 64]
    if "server" in only:
        # The same service created through `hyperflow server`'s API, served by the
        # server's router (its own thread and loop in the control plane's process).
        import httpx

        api, port = free_port(), free_port()
        home = work / "server-home"
        cmd = [PY, "-m", "hyperflow", "server", "--port", str(api), "--serving-port", str(port)]
        env = {"HYPERFLOW_HOME": str(home), "HYPERFLOW_TRACK": "false"}
        with server(cmd, f"http://127.0.0.1:{api}/readyz", work, env):
            doc = ISVC.format(batcher="").replace(
                "  name: iris\n",
                f"  name: iris\n  annotations:\n    hyperflow.io/base-dir: {work}\n",
            )
            r = httpx.post(
                f"http://127.0.0.1:{api}/apis/v1/namespaces/default/inferenceservices",
                content=doc,
                headers={"content-type": "application/yaml"},
            )
            assert r.status_code == 201, r.text
            wait_ready(f"http://127.0.0.1:{port}/v2/models/{MODEL}/ready", _Alive())
            yield "hyperflow server", port, path, [16, 64]
    if "batcher" in only:
        port = free_port()
        batcher = "    batcher:\n      maxBatchSize: 32\n      maxLatency: 2\n"
        (work / "isvc-batch.yaml").write_text(ISVC.format(batcher=batcher))
        cmd = [PY, "-m", "hyperflow", "serve", "run", "-f", str(work / "isvc-batch.yaml"),
               "--port", str(port)]  # fmt: skip
        with server(cmd, f"http://127.0.0.1:{port}/v2/models/{MODEL}/ready", work):
            yield "hyperflow+batcher", port, path, [64]
    if "kserve" in only:
        py = ensure_venv("kserve")
        port = free_port()
        (work / "kserve_app.py").write_text(KSERVE_APP)
        cmd = [str(py), str(work / "kserve_app.py"), str(model), str(port)]
        with server(cmd, f"http://127.0.0.1:{port}/v2/models/{MODEL}/ready", work):
            yield "kserve", port, path, [16, 64]
    if "mlserver" in only:
        py = ensure_venv("mlserver")
        port = free_port()
        d = work / "mlserver"
        (d / "iris").mkdir(parents=True, exist_ok=True)
        (d / "settings.json").write_text(json.dumps({
            "http_port": port, "grpc_port": free_port(), "metrics_port": free_port(),
            "host": "127.0.0.1",
            # 0: inference in the server process (1.7.1 workers crash with new uvloop).
            "parallel_workers": 0,
        }))  # fmt: skip
        (d / "iris" / "model-settings.json").write_text(json.dumps({
            "name": MODEL, "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": str(model)},
        }))  # fmt: skip
        cmd = [str(py.parent / "mlserver"), "start", str(d)]
        with server(cmd, f"http://127.0.0.1:{port}/v2/models/{MODEL}/ready", work):
            yield "mlserver", port, path, [16, 64]
    if "floor" in only:
        port = free_port()
        (work / "floor_app.py").write_text(FLOOR_APP)
        cmd = [PY, str(work / "floor_app.py"), str(model), str(port)]
        with server(cmd, f"http://127.0.0.1:{port}/v2/models/{MODEL}/ready", work):
            yield "floor (uvicorn+numpy)", port, path, [16, 64]


def compare_with(other: Path, rounds: int, duration: float) -> None:
    """This tree's ``serve run`` and ``other``'s (another checkout, on PYTHONPATH) side by
    side, loaded alternately ``rounds`` times for ``duration`` s: medians and their ratio.
    Alternating short runs share the machine's background load, which single runs do not."""
    import statistics

    path = f"/v2/models/{MODEL}/infer"
    with tempfile.TemporaryDirectory(prefix="hf-bench-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        setup_model(work)
        (work / "isvc.yaml").write_text(ISVC.format(batcher=""))
        ports = {}
        for name, env in (("this tree", None), (str(other), {"PYTHONPATH": str(other)})):
            port = free_port()
            cmd = [PY, "-m", "hyperflow", "serve", "run", "-f", str(work / "isvc.yaml"),
                   "--port", str(port)]  # fmt: skip
            stack.enter_context(server(cmd, f"http://127.0.0.1:{port}{path[:-6]}/ready", work, env))
            ports[name] = port
        for c in (16, 64):
            rps: dict[str, list[float]] = {name: [] for name in ports}
            for _ in range(rounds):
                for name, port in ports.items():
                    rps[name].append(measure(port, path, c, duration)["rps"])
            medians = {name: statistics.median(v) for name, v in rps.items()}
            mine, theirs = medians.values()
            for name, v in rps.items():
                print(f"c={c:<3d} {name}: median {medians[name]:.0f} req/s {[round(x) for x in v]}")
            print(f"c={c:<3d} ratio {mine / theirs:.3f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--loadgen")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--only", default="hyperflow,server,batcher,kserve,mlserver,floor")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument(
        "--compare-with",
        type=Path,
        help="another checkout of hyperflow: serve both side by side, load them alternately",
    )
    ap.add_argument("--rounds", type=int, default=8, help="with --compare-with")
    a = ap.parse_args()
    if a.compare_with:
        compare_with(a.compare_with.resolve(), a.rounds, min(a.duration, 3.0))
        return
    if a.loadgen:
        hostport, _, path = a.loadgen.partition("/")
        host, _, port = hostport.partition(":")
        print(json.dumps(loadgen(host, int(port), "/" + path, a.concurrency, a.duration)))
        return

    only = set(a.only.split(","))
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="hf-bench-") as tmp:
        work = Path(tmp)
        model = setup_model(work)
        for name, port, path, concurrencies in peers(work, model, only):
            for c in concurrencies:
                r = measure(port, path, c, a.duration)
                r.update(server=name, concurrency=c)
                results.append(r)
                print(
                    f"{name:24s} c={c:<3d} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:6.2f} ms  "
                    f"p99 {r['p99_ms']:6.2f} ms  errors {r['errors']}",
                    flush=True,
                )
    kserve = {r["concurrency"]: r["rps"] for r in results if r["server"] == "kserve"}
    print("\n| server | concurrency | req/s | p50 ms | p99 ms | vs KServe |")
    print("|---|---|---|---|---|---|")
    for r in results:
        ratio = f"{r['rps'] / kserve[r['concurrency']]:.2f}x" if r["concurrency"] in kserve else "-"
        print(
            f"| {r['server']} | {r['concurrency']} | {r['rps']:.0f} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {ratio} |"
        )
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
