"""Whole experiments on the ``ray`` backend, on the session's real local Ray: the CLI killed
with SIGKILL and run again adopts the trials still running on the cluster (none runs
twice), and the control plane's push route takes ``report()`` from Ray trials."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from tests.hyperflow.conftest import experiment, serve_plane, server_settings
from tests.util import REPO, hyperflow_cmd, run_hyperflow, running, wait_until
from tuner.settings import TunerSettings
from tuner.store import Store

NS = "/apis/v1/namespaces/default"

TRIAL = """
import os, sys, time
x = float(sys.argv[1])
with open(os.environ["LEDGER"], "a") as f:
    f.write(os.environ["HYPERFLOW_TRIAL_NAME"] + "\\n")
print(f"loss={x + 10}", flush=True)
while not os.path.exists(os.environ["GO"]):
    time.sleep(0.02)
print(f"loss={x}", flush=True)
"""


def _trials(home: Path, name: str) -> list:
    store = Store(TunerSettings(home=home).store_url)
    try:
        record = store.get_experiment("default", name)
        return [] if record is None else store.trials(record.uid)
    finally:
        store.close()


def _ray_run(folder: Path, spec: dict[str, Any], ray_address: str) -> tuple[str, ...]:
    """`experiment run` arguments of ``spec`` (written to ``folder``) on the session's Ray."""
    file = folder / "experiment.yaml"
    file.write_text(json.dumps(spec))
    args = ("experiment", "run", "-f", str(file), "--no-mlflow", "--backend", "ray")
    return (*args, "--ray-address", ray_address)


def test_a_killed_controller_adopts_its_ray_trials(
    ray_address: str, tmp_path: Path, hyperflow_home: Path
) -> None:
    spec = experiment("on-ray", tmp_path, max_trials=3, parallel=2)
    (tmp_path / "trial.py").write_text(TRIAL)  # in place of the one experiment() wrote
    template = spec["spec"]["trialTemplate"]
    env = {"LEDGER": str(tmp_path / "ledger"), "GO": str(tmp_path / "go")}
    # The trial's own resources become Ray resources: half a CPU each.
    template.pop("command")
    template.pop("env")
    template["primaryContainerName"] = "training"
    template["trialSpec"] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "training",
                            "image": "python:3.11",
                            "command": ["python", "trial.py", "${trialParameters.x}"],
                            "env": [{"name": k, "value": v} for k, v in env.items()],
                            "resources": {"requests": {"cpu": "500m", "memory": "64Mi"}},
                        }
                    ]
                }
            }
        },
    }
    args = _ray_run(tmp_path, spec, ray_address)
    output = tmp_path / "first-run.txt"
    with (
        open(output, "wb") as out,
        running(hyperflow_cmd(*args), cwd=REPO, stdout=out, stderr=subprocess.STDOUT) as proc,
    ):

        def both_started() -> bool:
            assert proc.poll() is None, output.read_text()
            ledger = tmp_path / "ledger"
            started = ledger.exists() and len(ledger.read_text().split()) == 2
            return (
                started
                and sum(t.phase.value == "Running" for t in _trials(hyperflow_home, "on-ray")) == 2
            )

        wait_until(both_started, timeout=240, interval=0.2)
        # Their first observation is in the store before the controller dies.
        wait_until(
            lambda: all(t.collected_count >= 1 for t in _trials(hyperflow_home, "on-ray")),
            timeout=60,
        )
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    (tmp_path / "go").touch()  # the trials go on while no controller runs
    done = run_hyperflow(*args, timeout=300)
    assert done.returncode == 0, done.stderr
    trials = _trials(hyperflow_home, "on-ray")
    assert [t.phase.value for t in trials] == ["Succeeded"] * 3
    ledger = (tmp_path / "ledger").read_text().split()
    assert sorted(ledger) == sorted(t.name for t in trials)  # none ran twice
    store = Store(TunerSettings(home=hyperflow_home).store_url)
    try:
        for t in trials:
            values = [o.value for o in store.observations(t.id)]
            x = float(t.assignments["x"])
            assert values == [x + 10, x]  # each observation stored once
            assert Path(t.trial_dir, "trial.log").read_text().split() == [
                f"loss={x + 10}",
                f"loss={x}",
            ]
    finally:
        store.close()


def test_the_server_runs_ray_trials_that_push_to_its_route(
    ray_address: str, tmp_path: Path, hyperflow_home: Path
) -> None:
    (tmp_path / "pusher.py").write_text(
        "import sys\n"
        "from tuner.report import report\n"
        "x = float(sys.argv[1])\n"
        "for step in range(3):\n"
        "    report(step=step, loss=(x - 0.3) ** 2 + 1 - step / 10)\n"
    )
    body = experiment("push", tmp_path, max_trials=2, parallel=2)
    body["spec"]["trialTemplate"]["command"] = ["python", "pusher.py", "${trialParameters.x}"]
    body["spec"]["metricsCollectorSpec"] = {"collector": {"kind": "Push"}}
    settings = server_settings(hyperflow_home, backend="ray", ray_address=ray_address)
    with serve_plane(settings) as server:
        assert server.http.post(f"{NS}/experiments", json=body).status_code == 201

        def finished() -> bool:
            got = server.http.get(f"{NS}/experiments/push").json()
            return got["status"]["conditions"][-1]["type"] in ("Succeeded", "Failed")

        wait_until(finished, timeout=240, interval=0.2)
        done = server.http.get(f"{NS}/experiments/push").json()
        assert done["status"]["trialsSucceeded"] == 2, done["status"]
        record = server.plane.store.get_experiment("default", "push")
        assert record is not None and record.backend == "ray"
        for t in server.plane.store.trials(record.uid):
            assert [o.step for o in server.plane.store.observations(t.id)] == [0, 1, 2]


def test_an_unreachable_ray_address_is_said_at_once(tmp_path: Path, hyperflow_home: Path) -> None:
    # Ray waited for minutes, printing its own C++ warnings, with trials Created.
    from tests.util import free_port

    spec = experiment("no-ray", tmp_path, max_trials=2, parallel=2)
    file = tmp_path / "experiment.yaml"
    file.write_text(json.dumps(spec))
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    args = ("experiment", "run", "-f", str(file), "--no-mlflow", "--backend", "ray")
    done = run_hyperflow(*args, "--ray-address", address, timeout=120)
    assert done.returncode != 0
    assert f"cannot reach the Ray cluster at {address}" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert _trials(hyperflow_home, "no-ray") == []  # nothing was started


def test_sigterm_stops_a_ray_run_cleanly(
    ray_address: str, tmp_path: Path, hyperflow_home: Path
) -> None:
    # ray.init's own SIGTERM handler replaced hyperflow's: the run aborted, its trials
    # stayed Running and the next run counted them Failed.
    env = {"LEDGER": str(tmp_path / "ledger"), "GO": str(tmp_path / "go")}  # no "go": they wait
    spec = experiment("term-ray", tmp_path, max_trials=2, parallel=2, extra_env=env)
    (tmp_path / "trial.py").write_text(TRIAL)  # in place of the one experiment() wrote
    args = _ray_run(tmp_path, spec, ray_address)
    output = tmp_path / "run.txt"
    with (
        open(output, "wb") as out,
        running(hyperflow_cmd(*args), cwd=REPO, stdout=out, stderr=subprocess.STDOUT) as proc,
    ):

        def both_running() -> bool:
            assert proc.poll() is None, output.read_text()
            trials = _trials(hyperflow_home, "term-ray")
            return len(trials) == 2 and all(t.phase.value == "Running" for t in trials)

        wait_until(both_running, timeout=240, interval=0.2)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    said = output.read_text()
    assert "Aborted" not in said and "SIGTERM received" not in said, said[-2000:]
    assert code in (130, 143), (code, said[-2000:])
    assert [t.phase.value for t in _trials(hyperflow_home, "term-ray")] == ["Killed", "Killed"]
