"""``hyperflow serve run`` with real replicas: serves V1/V2 with a canary, and SIGINT
leaves no process behind (every PID it started is gone)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections import Counter
from pathlib import Path

import httpx
import joblib
import numpy as np
import orjson
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from serving import terminal
from tests.util import (
    REPO,
    free_port,
    hyperflow_cmd,
    run_hyperflow,
    running,
    wait_http_ok,
    wait_until,
)

ISVC = """apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: iris
spec:
  predictor:
{extra}    model:
      modelFormat:
        name: sklearn
      storageUri: {uri}
"""


@pytest.fixture()
def model_dir(tmp_path: Path) -> Path:
    x, y = load_iris(return_X_y=True)
    d = tmp_path / "model"
    d.mkdir()
    joblib.dump(LogisticRegression(max_iter=300).fit(x, y), d / "model.joblib")
    return d


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_serve_run_canary_and_clean_sigint(tmp_path: Path, model_dir: Path) -> None:
    (tmp_path / "v1.yaml").write_text(ISVC.format(extra="", uri="./model"))
    (tmp_path / "canary.yaml").write_text(
        ISVC.format(extra="    canaryTrafficPercent: 50\n", uri="./model")
    )
    port = free_port()
    args = hyperflow_cmd(
        "serve", "run", "-f", str(tmp_path / "v1.yaml"), "-f", str(tmp_path / "canary.yaml"),
        "--port", str(port),
    )  # fmt: skip
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen(
        args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http_ok(f"{url}/v2/health/live", timeout=60, proc=proc)
        with httpx.Client(base_url=url, timeout=60) as c:
            row = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
            wait_until(lambda: c.get("/v2/models/iris/ready").status_code == 200, timeout=60)
            # The canary gets its share once it is Ready (until then the default has all).
            wait_until(
                lambda: c.post("/v1/models/iris:predict", json=row).headers[
                    "x-hyperflow-revision"] == "canary",
                timeout=60,
            )  # fmt: skip
            seen: Counter[str] = Counter()
            for _ in range(20):
                r = c.post("/v1/models/iris:predict", json=row)
                assert r.status_code == 200, r.text
                assert r.json()["predictions"] == [0]
                seen[r.headers["x-hyperflow-revision"]] += 1
            assert seen == {"default": 10, "canary": 10}
            v2 = {
                "inputs": [
                    {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [6.7, 3.0, 5.2, 2.3]}
                ]
            }
            r = c.post("/v2/models/iris/infer", json=v2)
            assert r.status_code == 200, r.text
            assert r.json()["outputs"][0]["data"] == [2]
            assert c.get("/v1/models").json() == {"models": ["iris"]}
            # The router advertises the binary tensor extension, and it works through it.
            assert c.get("/v2").json()["extensions"] == ["binary_tensor_data"]
            tensor = np.array([[6.7, 3.0, 5.2, 2.3]], dtype="<f8").tobytes()
            head = orjson.dumps(
                {
                    "inputs": [
                        {
                            "name": "x",
                            "shape": [1, 4],
                            "datatype": "FP64",
                            "parameters": {"binary_data_size": len(tensor)},
                        }
                    ],
                    "parameters": {"binary_data_output": True},
                }
            )
            r = c.post(
                "/v2/models/iris/infer",
                content=head + tensor,
                headers={
                    "content-type": "application/octet-stream",
                    "Inference-Header-Content-Length": str(len(head)),
                },
            )
            assert r.status_code == 200, r.text
            json_len = int(r.headers["inference-header-content-length"])
            assert np.frombuffer(r.content[json_len:], dtype="<i8").tolist() == [2]
    finally:
        proc.send_signal(signal.SIGINT)  # the terminal's Ctrl-C goes to the runner only
        out, _ = proc.communicate(timeout=30)
    text = out.decode()
    pids = [int(p) for p in re.findall(r"started replica pid (\d+)", text)]
    assert len(pids) >= 2, text
    assert proc.returncode == 0, text
    assert "iris" in text and "canary" in text and "50%" in text  # the status table
    wait_until(lambda: not any(_alive(p) for p in pids), timeout=10)


def test_non_loopback_requires_token(tmp_path: Path, model_dir: Path) -> None:
    (tmp_path / "v1.yaml").write_text(ISVC.format(extra="", uri="./model"))
    args = hyperflow_cmd("serve", "run", "-f", str(tmp_path / "v1.yaml"), "--host", "0.0.0.0")
    proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "requires --token" in proc.stdout + proc.stderr


def test_invalid_file_exits_2_with_field_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(ISVC.format(extra="    minReplicas: -1\n", uri="./model"))
    proc = run_hyperflow("serve", "run", "-f", str(bad))
    assert proc.returncode == 2
    assert "minReplicas" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_what_cannot_run_locally_is_refused_at_start(tmp_path: Path) -> None:
    # It started a router and a replica that failed to load, and kept running.
    remote = tmp_path / "remote.yaml"
    remote.write_text(ISVC.format(extra="", uri="gs://kfserving-examples/models/sklearn/1.0/model"))
    proc = run_hyperflow("serve", "run", "-f", str(remote))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    said = proc.stdout + proc.stderr
    assert "cannot run locally" in said and "gs://" in said
    assert "Traceback" not in said


def test_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    proc = run_hyperflow("serve", "run", "-f", str(missing))
    assert proc.returncode == 2
    assert f"error: {missing}: file not found" in proc.stdout + proc.stderr


def _serve_piped(tmp_path: Path, yaml_text: str, *extra: str) -> tuple[list[str], Path, int]:
    (tmp_path / "isvc.yaml").write_text(yaml_text)
    port = free_port()
    args = hyperflow_cmd(
        "serve", "run", "-f", str(tmp_path / "isvc.yaml"), "--port", str(port), *extra
    )
    return args, tmp_path / "out.txt", port


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    assert proc.returncode == 0


def _ready_row(line: str) -> bool:
    return "│" in line and "sklearn-iris:predict" in line and "│ 1 ready" in line


def test_piped_status_table_is_wide(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not a terminal and no COLUMNS: 160 columns, so no cell of the table wraps.
    monkeypatch.delenv("COLUMNS", raising=False)
    yaml_text = ISVC.format(extra="", uri="./model").replace("name: iris", "name: sklearn-iris")
    args, out, port = _serve_piped(tmp_path, yaml_text)
    with (
        out.open("wb") as sink,
        running(args, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT) as proc,
    ):
        url = f"http://127.0.0.1:{port}/v2/models/sklearn-iris/ready"
        wait_http_ok(url, timeout=60, proc=proc)
        # A table row, not an event line (":40121 ready in 4.1s" also contains "1 ready").
        wait_until(lambda: any(_ready_row(line) for line in out.read_text().splitlines()))
        _stop(proc)
    lines = out.read_text().splitlines()
    assert any("endpoints / status" in line for line in lines), lines
    row = [line for line in lines if "/v1/models/sklearn-iris:predict" in line]
    assert any("sklearn-iris" in r.split("/v1/")[0] and "1 ready" in r for r in row), lines
    assert max(len(line) for line in lines) <= 160


def test_stop_line_names_only_the_replicas_it_stopped(tmp_path: Path, model_dir: Path) -> None:
    # Scale to zero after a 6 s window, then a cold start: two replicas started, the
    # first already stopped by the autoscaler; the stop line names the second only.
    yaml_text = ISVC.format(extra="    minReplicas: 0\n", uri="./model").replace(
        "  name: iris\n",
        "  name: iris\n  annotations:\n"
        "    autoscaling.knative.dev/window: 6s\n"
        "    autoscaling.knative.dev/scale-to-zero-pod-retention-period: 0s\n",
    )
    args, out, port = _serve_piped(tmp_path, yaml_text, "--tick", "0.2")
    env = {"COLUMNS": "200"}
    with (
        out.open("wb") as sink,
        running(args, env=env, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT) as proc,
    ):
        wait_http_ok(f"http://127.0.0.1:{port}/v2/health/live", timeout=60, proc=proc)
        scaled_down = re.compile(r"stopped replica pid (\d+)")
        wait_until(lambda: scaled_down.search(out.read_text()) is not None, timeout=60)
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/models/iris:predict",
            json={"instances": [[5.1, 3.5, 1.4, 0.2]]},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        _stop(proc)
    text = out.read_text()
    first, second = (int(p) for p in re.findall(r"started replica pid (\d+)", text))
    match = scaled_down.search(text)
    assert match is not None and int(match.group(1)) == first, text
    assert f"stopped; 1 replica stopped now: pid {second}\n" in text, text
    wait_until(lambda: not _alive(first) and not _alive(second), timeout=10)


def test_console_width_when_piped(monkeypatch: pytest.MonkeyPatch) -> None:
    # pytest's stdout is not a terminal: COLUMNS wins if set, else 160 columns.
    monkeypatch.setenv("COLUMNS", "100")
    assert terminal.console().width == 100
    assert terminal.console(stderr=True).width == 100
    monkeypatch.delenv("COLUMNS")
    assert terminal.console().width == 160
    assert terminal.console(stderr=True).width == 160


def test_replicas_answer_only_their_router(tmp_path: Path, model_dir: Path) -> None:
    # A replica listens on loopback: without its own token any local user could call the
    # model past the router's --token (or the server's namespace check). The router sends
    # the replicas' token in place of the client's.
    args, out, port = _serve_piped(tmp_path, ISVC.format(extra="", uri="./model"))
    env = {"COLUMNS": "200", "HYPERFLOW_SERVE_TOKEN": "s3cret"}
    row = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
    with (
        out.open("wb") as sink,
        running(args, env=env, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT) as proc,
    ):
        url = f"http://127.0.0.1:{port}"
        client = {"authorization": "Bearer s3cret"}
        wait_http_ok(f"{url}/v2/health/live", timeout=60, proc=proc)
        wait_until(
            lambda: httpx.get(f"{url}/v2/models/iris/ready", headers=client).status_code == 200,
            timeout=60,
        )
        r = httpx.post(f"{url}/v1/models/iris:predict", json=row, headers=client)
        assert r.status_code == 200, r.text
        assert httpx.post(f"{url}/v1/models/iris:predict", json=row).status_code == 401
        started = re.search(r"started replica pid \d+ on :(\d+)", out.read_text())
        assert started is not None, out.read_text()
        replica = f"http://127.0.0.1:{started.group(1)}"
        for headers in ({}, client):
            r = httpx.post(f"{replica}/v1/models/iris:predict", json=row, headers=headers)
            assert r.status_code == 401, r.text
        # The probes stay open, as a kubelet's would.
        assert httpx.get(f"{replica}/v2/health/ready").status_code == 200
        _stop(proc)
