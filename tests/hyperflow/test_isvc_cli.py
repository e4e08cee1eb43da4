"""Inference services through kubectl's verbs and the Python client (KServeClient's
names), against a real server with real replicas."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from hyperflow.client import ApiError, Client
from tests.hyperflow.conftest import V1_BODY, Running, isvc
from tests.util import REPO, hyperflow_cmd, run_hyperflow, wait_until


def cli(server: Running, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_hyperflow(*args, "--server", server.url, timeout=timeout)


def _rows(out: str) -> dict[str, list[str]]:
    """A table's rows by name, cut at the header's columns (cells may be empty)."""
    header, *rows = out.splitlines()
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    return {r.split()[0]: [r[a:b].strip() for a, b in bounds] for r in rows}


def test_create_get_watch_describe_apply_delete(
    server: Running, iris_models: Path, tmp_path: Path
) -> None:
    shutil.copytree(iris_models / "model", tmp_path / "model")
    doc = isvc("iris", None, "./model/v1")  # relative to the file: the CLI sends its folder
    path = tmp_path / "iris.yaml"
    path.write_text(yaml.safe_dump(doc))
    watch = subprocess.Popen(
        hyperflow_cmd("get", "isvc", "-w", "--server", server.url),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        created = cli(server, "create", "-f", str(path))
        assert created.returncode == 0, created.stderr
        assert created.stdout.strip() == "inferenceservice.serving.kserve.io/iris created"
        assert watch.stdout is not None
        seen = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = watch.stdout.readline()
            seen.append(line)
            if line.split()[:1] == ["iris"] and line.split()[2] == "True":
                break
        ready_rows = [line for line in seen if line.split()[:1] == ["iris"]]
        assert ready_rows and ready_rows[-1].split()[2] == "True", seen
        # Rows only when something shown changed: no two alike in a row.
        assert all(a != b for a, b in itertools.pairwise(ready_rows)), ready_rows
        # As kubectl: an empty list prints no header; the first watched row comes with it,
        # and every row lines up under it (whatever the blank PREV column holds).
        header = seen[0] if seen[0].startswith("NAME") else ""
        assert header.split() == ["NAME", "URL", "READY", "PREV", "LATEST", "REPLICAS", "AGE"]
        for row in ready_rows:
            ready = row[header.index("READY") :].split()[0]
            assert ready in ("True", "False"), (header, row)
            # (A row from before the deployer took the service up has no traffic yet: LATEST
            # is blank there, as kubectl shows a new InferenceService's.)
            if ready == "True":
                assert row[header.index("LATEST") :].split()[0] == "100", (header, row)
    finally:
        watch.kill()
        watch.wait(10)

    table = cli(server, "get", "isvc")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split() == [
        "NAME",
        "URL",
        "READY",
        "PREV",
        "LATEST",
        "REPLICAS",
        "AGE",
    ]
    url = server.http.get("/apis/v1/namespaces/default/inferenceservices/iris").json()["status"][
        "url"
    ]
    assert _rows(table.stdout)["iris"][1:6] == [url, "True", "", "100", "1/1"]
    assert httpx.post(url.replace("/v2/", "/v1/") + ":predict", json=V1_BODY).json() == {
        "predictions": [2]
    }
    wide = cli(server, "get", "inferenceservices", "iris", "-o", "wide")
    assert "LATESTREADYREVISION" in wide.stdout and "iris-predictor-00001" in wide.stdout

    described = cli(server, "describe", "isvc", "iris")
    assert described.returncode == 0, described.stderr
    for line in (
        f"URL:          {url}",
        "Model:        sklearn ./model/v1",
        "Ready:        True",
        "Revisions:",
        "Conditions:",
        "Events:",
        "ReplicaStarted",
    ):
        assert line in described.stdout, described.stdout
    assert "iris-predictor-00001 (latest)   Ready   100%" in described.stdout

    assert cli(server, "apply", "-f", str(path)).stdout.strip() == (
        "inferenceservice.serving.kserve.io/iris unchanged"
    )
    doc["spec"]["predictor"]["model"]["storageUri"] = "./model/v2"
    doc["spec"]["predictor"]["canaryTrafficPercent"] = 25
    path.write_text(yaml.safe_dump(doc))
    applied = cli(server, "apply", "-f", str(path))
    assert applied.stdout.strip() == "inferenceservice.serving.kserve.io/iris configured"

    def split() -> bool:
        row = _rows(cli(server, "get", "isvc").stdout)["iris"]
        return row[2:5] == ["True", "75", "25"]

    wait_until(split, timeout=120, interval=0.5)
    assert (
        "Canary:       25% to the latest revision" in cli(server, "describe", "isvc", "iris").stdout
    )

    # Promote, as README shows: get -o yaml | sed /canaryTrafficPercent/d | apply -f -
    current = yaml.safe_load(cli(server, "get", "isvc", "iris", "-o", "yaml").stdout)
    del current["spec"]["predictor"]["canaryTrafficPercent"]
    promoted = subprocess.run(
        hyperflow_cmd("apply", "-f", "-", "--server", server.url),
        input=yaml.safe_dump(current),
        capture_output=True,
        text=True,
        cwd=REPO,  # the object keeps its folder: the current one does not matter
        timeout=60,
    )
    assert promoted.stdout.strip() == "inferenceservice.serving.kserve.io/iris configured", (
        promoted.stderr
    )
    wait_until(lambda: _rows(cli(server, "get", "isvc").stdout)["iris"][3:5] == ["", "100"], 60)

    deleted = cli(server, "delete", "-f", str(path))
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.strip() == 'inferenceservice.serving.kserve.io "iris" deleted'
    assert cli(server, "get", "isvc", "iris").returncode == 1
    missing = cli(server, "delete", "isvc", "iris")
    assert missing.returncode == 1 and "not found" in missing.stderr

    # Created again: its describe shows its own events, not the deleted one's.
    assert cli(server, "create", "-f", str(path)).returncode == 0
    again = cli(server, "describe", "isvc", "iris").stdout
    events = again.split("Events:", 1)[1]
    assert "InferenceServiceDeleted" not in events and "RevisionRolledOut" not in events, again
    assert "InferenceServiceCreated" in events, again
    assert cli(server, "delete", "isvc", "iris").returncode == 0


def test_python_client_with_kserve_names(server: Running, iris_models: Path) -> None:
    with Client(server=server.url) as client:
        text = yaml.safe_dump(isvc("sdk", iris_models))
        created = client.create(text)
        assert created["metadata"]["name"] == "sdk"
        with pytest.raises(ApiError) as exc:
            client.create(text)
        assert exc.value.status == 409
        ready = client.wait_isvc_ready("sdk", timeout_seconds=120, polling_interval=2)
        assert ready["status"]["conditions"][-1]["status"] == "True"
        assert client.is_isvc_ready("sdk")
        assert [i["metadata"]["name"] for i in client.get()["items"]] == ["sdk"]
        assert client.get("sdk")["status"]["url"] == ready["status"]["url"]

        canary = isvc("sdk", iris_models, "./model/v2", canaryTrafficPercent=10)
        replaced = client.replace("sdk", canary, watch=True, timeout_seconds=120)
        traffic = replaced["status"]["components"]["predictor"]["traffic"]
        assert [t["percent"] for t in traffic] == [90, 10]

        broken = isvc("sdk", iris_models, "./model/missing")
        client.replace("sdk", broken)
        with pytest.raises(RuntimeError, match="failed"):
            client.wait_isvc_ready("sdk", timeout_seconds=120, polling_interval=2)
        assert not client.is_isvc_ready("sdk")

        assert client.delete("sdk")["metadata"]["name"] == "sdk"
        assert client.get()["items"] == []
        with pytest.raises(ApiError) as exc:
            client.get("sdk")
        assert exc.value.status == 404
