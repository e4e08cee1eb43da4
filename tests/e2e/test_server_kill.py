"""SIGKILL the control plane while two experiments run and two inference services serve,
start it again: both experiments finish with the right trial counts, no trial ran twice,
each trial has one MLflow run, both services answer on the same URLs from new replicas,
and nothing of the old server (no replica either) is left running."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import psutil
import yaml

from tests.hyperflow.conftest import V1_BODY, experiment, isvc
from tests.util import (
    REPO,
    free_port,
    hyperflow_cmd,
    run_hyperflow,
    running,
    wait_http_ok,
    wait_until,
)


def _processes_of(home: Path) -> set[int]:
    """PIDs of processes started for this test's HYPERFLOW_HOME (server, trials)."""
    marker = f"HYPERFLOW_HOME={home}".encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for its new parent to reap it."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _services(http: httpx.Client) -> dict[str, dict]:
    """Ready services by namespace/name (empty until every one is Ready)."""
    items = http.get("/apis/v1/inferenceservices").json()["items"]
    ready = all(i["status"]["conditions"][-1]["status"] == "True" for i in items)
    return (
        {f"{i['metadata']['namespace']}/{i['metadata']['name']}": i for i in items} if ready else {}
    )


def _replica_pids(service: dict) -> list[int]:
    revisions = service["status"]["components"]["predictor"]["revisions"]
    return [pid for r in revisions for pid in r["pids"]]


def test_kill_9_and_restart_finishes_both_experiments_exactly_and_serves_both_services(
    tmp_path: Path, hyperflow_home: Path, mlflow_db: Path, iris_models: Path
) -> None:
    port, serving = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    ledger = tmp_path / "ledger.txt"
    docs = [
        experiment(
            name, tmp_path, max_trials=6, parallel=2, seconds=1.0, extra_env={"LEDGER": str(ledger)}
        )
        for name in ("first", "second")
    ]
    shutil.copytree(iris_models / "model", tmp_path / "model")
    services = [isvc("iris", None), isvc("iris", None, "./model/v2", namespace="team-a")]
    for doc in docs + services:
        doc["metadata"].pop("annotations", None)  # the CLI adds the file's folder
    spec_file = tmp_path / "experiments.yaml"
    spec_file.write_text(yaml.safe_dump_all(docs))
    services_file = tmp_path / "services.yaml"
    services_file.write_text(yaml.safe_dump_all(services))
    server_cmd = hyperflow_cmd(
        "server", "--port", str(port), "--serving-port", str(serving), "--max-running-trials", "3"
    )
    env = {"HYPERFLOW_SERVER": url}
    http = httpx.Client(base_url=url, timeout=30)

    def trials(name: str) -> list[dict]:
        return http.get(f"/apis/v1/namespaces/default/experiments/{name}/trials").json()["items"]

    def phases(name: str) -> list[str]:
        return [t["status"]["conditions"][0]["type"] for t in trials(name)]

    with running(
        server_cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as old:
        wait_http_ok(f"{url}/readyz", proc=old, timeout=60)

        def create(path: Path) -> None:
            created = subprocess.run(
                hyperflow_cmd("create", "-f", str(path)),
                capture_output=True,
                text=True,
                cwd=REPO,
                env={**os.environ, **env},
                timeout=60,
            )
            assert created.returncode == 0, created.stderr
            assert created.stdout.count("created") == 2

        create(services_file)
        wait_until(lambda: len(_services(http)) == 2, timeout=120, interval=0.1)
        before = _services(http)
        old_replicas = [pid for s in before.values() for pid in _replica_pids(s)]
        assert len(old_replicas) == 2
        create(spec_file)

        def mid_flight() -> bool:
            return all(
                phases(n).count("Succeeded") >= 1 and "Running" in phases(n)
                for n in ("first", "second")
            )

        wait_until(mid_flight, timeout=120, interval=0.05)
        os.kill(old.pid, signal.SIGKILL)
        old.wait(10)
    assert not _alive(old.pid)
    survivors = _processes_of(hyperflow_home)
    assert survivors, "running trials outlive the server (to be adopted)"

    with running(
        server_cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as new:
        wait_http_ok(f"{url}/readyz", proc=new, timeout=60)
        # No replica of the old server is left (the kernel stops them with it; what
        # outlives it is stopped by pid before the new server is ready).
        assert not [p for p in old_replicas if _running(p)]
        # Both services answer on the same URLs (requests wait for the new replicas).
        for key, service in before.items():
            base = service["status"]["address"]["url"]
            answer = httpx.post(f"{base}/v1/models/iris:predict", json=V1_BODY, timeout=120)
            assert answer.status_code == 200, (key, answer.text)
        wait_until(lambda: len(_services(http)) == 2, timeout=120, interval=0.1)
        after = _services(http)
        for key, service in after.items():
            assert service["status"]["url"] == before[key]["status"]["url"]
            assert set(_replica_pids(service)).isdisjoint(old_replicas)

        def finished() -> bool:
            return all(
                http.get(f"/apis/v1/namespaces/default/experiments/{n}")
                .json()["status"]
                .get("completionTime")
                for n in ("first", "second")
            )

        wait_until(finished, timeout=180, interval=0.1)
        for name in ("first", "second"):
            got = http.get(f"/apis/v1/namespaces/default/experiments/{name}").json()
            status = got["status"]
            assert status["trials"] == 6 and status["trialsSucceeded"] == 6, status
            assert [c["type"] for c in status["conditions"] if c["status"] == "True"][
                -1
            ] == "Succeeded"
        lines = ledger.read_text().split()
        assert len(lines) == 12 and len(set(lines)) == 12, lines  # none lost, none twice

        def every_run_logged() -> bool:
            return all(
                http.get(
                    f"/apis/v1/namespaces/default/experiments/{n}/trials/{t['metadata']['name']}"
                ).json()["status"]["mlflowRunId"]
                for n in ("first", "second")
                for t in trials(n)
            )

        wait_until(every_run_logged, timeout=120, interval=0.5)
        listed = run_hyperflow("get", "exp", "--server", url)
        assert listed.returncode == 0 and listed.stdout.count("Succeeded") == 2
        new_pid = new.pid
    # Nothing of either server remains: no trial, no helper process.
    wait_until(lambda: not (_processes_of(hyperflow_home) - {new_pid}), timeout=30)
    assert not any(_alive(p) for p in survivors)
    http.close()
