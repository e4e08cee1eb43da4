"""The control plane: submission latency, many experiments at once, large reads.

1. Submit-to-first-trial-running latency, the server warm: POST an Experiment, time until
   the event stream reports its first trial Running (target < 300 ms).
2. 10 experiments x 50 trivial trials (parallelTrialCount 3 each) submitted at once to
   ``hyperflow server --max-running-trials N`` vs the same 10 run one after another with
   ``hyperflow experiment run``: total time, and the peak number of trial processes
   running at once (from a start/end ledger each trial writes; must not exceed N).
3. GET of a 10,000-trial experiment's first trial page (500 trials, and 100) and of the
   experiment itself (Katib status with its 10,000 trial names): target < 50 ms each.

Run:  .venv/bin/python benchmarks/server.py [--experiments 10] [--trials 50] [--max-running N]
MLflow logging is off in both modes (HYPERFLOW_TRACK=false, --no-mlflow): the figures are
the control plane's own cost. Each part uses a fresh HYPERFLOW_HOME.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from benchmarks.experiments import command_spec  # noqa: E402

# A trivial trial that records when it starts and ends (for the peak-concurrency count).
TRIAL = (
    'echo "start $(date +%s%N)" >> "$LEDGER"; echo "loss=$1"; echo "end $(date +%s%N)" >> "$LEDGER"'
)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spec(name: str, trials: int, parallel: int, ledger: Path) -> dict[str, Any]:
    command = ["/bin/sh", "-c", TRIAL, "trial", "${trialParameters.x}"]
    return command_spec(name, command, trials, parallel, env={"LEDGER": str(ledger)})


def _peak(ledger: Path) -> tuple[int, int]:
    """(peak concurrent trials, trials) from the ledger."""
    events = []
    for line in ledger.read_text().splitlines():
        kind, stamp = line.split()
        events.append((int(stamp), 1 if kind == "start" else -1))
    running = peak = 0
    for _, delta in sorted(events):
        running += delta
        peak = max(peak, running)
    return peak, sum(1 for _, d in events if d == 1)


class Server:
    def __init__(self, home: Path, max_running: int) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "HYPERFLOW_HOME": str(home), "HYPERFLOW_TRACK": "false"}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hyperflow",
                "server",
                "--port",
                str(self.port),
                "--serving-port",
                str(_free_port()),
                "--max-running-trials",
                str(max_running),
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.http = httpx.Client(base_url=self.url, timeout=60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.http.get("/readyz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not become ready")

    def wait_finished(self, names: list[str], timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        pending = set(names)
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                got = self.http.get(f"/apis/v1/namespaces/default/experiments/{name}").json()
                if got["status"].get("completionTime"):
                    pending.discard(name)
            time.sleep(0.05)
        if pending:
            raise RuntimeError(f"not finished: {pending}")

    def close(self) -> None:
        import signal

        self.http.close()
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(60)


def latency(reps: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        home, ledger = Path(tmp) / "home", Path(tmp) / "ledger"
        server = Server(home, max_running=2)
        try:
            # Warm: one experiment end to end (imports, first suggestion, first spawn).
            server.http.post(
                "/apis/v1/namespaces/default/experiments", json=_spec("warm", 2, 2, ledger)
            )
            server.wait_finished(["warm"])
            out = []
            for i in range(reps):
                name = f"lat-{i}"
                version = server.http.get("/apis/v1/namespaces/default/experiments").json()[
                    "metadata"
                ]["resourceVersion"]
                got = threading.Event()
                running_at: list[float] = []

                def watch(
                    name: str = name,
                    version: str = version,
                    got: threading.Event = got,
                    running_at: list[float] = running_at,
                ) -> None:
                    with httpx.stream(
                        "GET",
                        f"{server.url}/apis/v1/namespaces/default/events",
                        params={
                            "watch": "true",
                            "object": f"experiments/{name}",
                            "resourceVersion": version,
                        },
                        timeout=httpx.Timeout(30),
                    ) as r:
                        for line in r.iter_lines():
                            if line.startswith("data:"):
                                ev = json.loads(line[5:])
                                if ev["kind"] == "Trial" and ev["status"].get("phase") == "Running":
                                    running_at.append(time.perf_counter())
                                    got.set()
                                    return

                t = threading.Thread(target=watch, daemon=True)
                t.start()
                time.sleep(0.2)  # the watch is connected before the submission
                t0 = time.perf_counter()
                r = server.http.post(
                    "/apis/v1/namespaces/default/experiments", json=_spec(name, 1, 1, ledger)
                )
                assert r.status_code == 201, r.text
                got.wait(30)
                out.append(running_at[0] - t0)
                server.wait_finished([name])
            return out
        finally:
            server.close()


def many_at_once(n: int, trials: int, max_running: int) -> dict[str, float]:
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        home, ledger = Path(tmp) / "home", Path(tmp) / "server-ledger"
        server = Server(home, max_running)
        try:
            names = [f"many-{i}" for i in range(n)]
            t0 = time.perf_counter()
            for name in names:
                r = server.http.post(
                    "/apis/v1/namespaces/default/experiments", json=_spec(name, trials, 3, ledger)
                )
                assert r.status_code == 201, r.text
            server.wait_finished(names)
            results["server_s"] = time.perf_counter() - t0
            results["server_peak"], results["server_trials"] = _peak(ledger)
        finally:
            server.close()
    with tempfile.TemporaryDirectory() as tmp:
        home, ledger = Path(tmp) / "home", Path(tmp) / "run-ledger"
        env = {**os.environ, "HYPERFLOW_HOME": str(home)}
        files = []
        for i in range(n):
            path = Path(tmp) / f"many-{i}.yaml"
            path.write_text(json.dumps(_spec(f"many-{i}", trials, 3, ledger)))
            files.append(path)
        t0 = time.perf_counter()
        for path in files:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "hyperflow",
                    "experiment",
                    "run",
                    "-f",
                    str(path),
                    "--no-mlflow",
                ],
                env=env,
                cwd=ROOT,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        results["run_s"] = time.perf_counter() - t0
        results["run_peak"], results["run_trials"] = _peak(ledger)
    return results


def large_reads(n_trials: int, reps: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        os.environ["HYPERFLOW_HOME"] = str(home)
        from tuner.settings import TunerSettings
        from tuner.store import Store
        from tuner.store.models import TrialRow
        from tuner.types import ExperimentPhase

        settings = TunerSettings(home=home)
        settings.ensure_home()
        store = Store(settings.store_url)
        spec = _spec("big", n_trials, 3, Path(tmp) / "unused")
        spec["metadata"]["namespace"] = "default"
        record = store.create_experiment("default", "big", spec, None, "local", owner="server")
        now = time.time()
        rows = [
            {
                "experiment_uid": record.uid,
                "name": f"big-{i:08d}",
                "seq": i,
                "assignments": {"x": i / n_trials},
                "phase": "Succeeded",
                "reason": "TrialSucceeded",
                "message": "Trial has succeeded",
                "trial_dir": f"{tmp}/big-{i}",
                "push_token": "0" * 32,
                "exit_code": 0,
                "metrics": {
                    "loss": {"min": i / n_trials, "max": i / n_trials, "latest": i / n_trials}
                },
                "objective_value": ((i * 7919) % n_trials) / n_trials,
                "observation_count": 1,
                "collected_count": 1,
                "created_at": now,
                "started_at": now,
                "completed_at": now,
            }
            for i in range(n_trials)
        ]
        with store.engine.begin() as conn:
            conn.execute(TrialRow.__table__.insert(), rows)
        store.set_experiment_phase(
            record.uid, ExperimentPhase.SUCCEEDED, "ExperimentMaxTrialsReached", "done"
        )
        store.close()
        server = Server(home, max_running=2)
        out: dict[str, list[float]] = {
            "page100": [],
            "page500": [],
            "sorted100": [],
            "experiment": [],
        }
        paths = {
            "page100": ("/apis/v1/namespaces/default/experiments/big/trials", {}),
            "page500": ("/apis/v1/namespaces/default/experiments/big/trials", {"limit": 500}),
            "sorted100": (
                "/apis/v1/namespaces/default/experiments/big/trials",
                {"limit": 100, "sort": "objective"},
            ),
            "experiment": ("/apis/v1/namespaces/default/experiments/big", {}),
        }
        try:
            for key, (path, params) in paths.items():
                body = server.http.get(path, params=params).json()  # warm
                if key == "experiment":
                    assert body["status"]["trials"] == n_trials
                for _ in range(reps):
                    t0 = time.perf_counter()
                    r = server.http.get(path, params=params)
                    out[key].append(time.perf_counter() - t0)
                    assert r.status_code == 200
        finally:
            server.close()
        return out


def _ms(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
    return f"median {statistics.median(values) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--experiments", type=int, default=10)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--max-running", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--big", type=int, default=10_000)
    parser.add_argument("--only", choices=("latency", "many", "reads"))
    args = parser.parse_args()
    print(f"cpus {os.cpu_count()}, load {os.getloadavg()[0]:.2f}", flush=True)
    if args.only in (None, "latency"):
        lat = latency(args.reps)
        print(f"submit -> first trial Running (warm): {_ms(lat)} (target < 300 ms)", flush=True)
    if args.only in (None, "many"):
        r = many_at_once(args.experiments, args.trials, args.max_running)
        print(
            f"{args.experiments} x {args.trials} trials: server --max-running-trials {args.max_running} "
            f"{r['server_s']:.1f} s, peak {r['server_peak']} trial processes ({r['server_trials']} trials); "
            f"experiment run one after another {r['run_s']:.1f} s, peak {r['run_peak']} "
            f"({r['run_trials']} trials); ratio {r['run_s'] / r['server_s']:.2f}x",
            flush=True,
        )
    if args.only in (None, "reads"):
        reads = large_reads(args.big, args.reps)
        for key, values in reads.items():
            print(
                f"GET {args.big}-trial experiment, {key}: {_ms(values)} (target < 50 ms)",
                flush=True,
            )


if __name__ == "__main__":
    main()
