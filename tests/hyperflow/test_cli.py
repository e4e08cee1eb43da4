"""kubectl's verbs and the Python client against a real server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from hyperflow.client import ApiError, Client
from tests.hyperflow.conftest import Running, experiment
from tests.util import REPO, feeding_fifo, free_port, hyperflow_cmd, run_hyperflow, wait_until


def cli(server: Running, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_hyperflow(*args, "--server", server.url, timeout=timeout)


def _file(tmp_path: Path, *docs: dict) -> Path:
    for doc in docs:
        doc["metadata"].pop("annotations", None)  # the CLI adds the file's folder
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump_all(list(docs)))
    return path


def _wait_done(server: Running, name: str) -> None:
    def done() -> bool:
        got = server.http.get(f"/apis/v1/namespaces/default/experiments/{name}").json()
        return bool(got["status"].get("completionTime"))

    wait_until(done, timeout=60, interval=0.05)


def test_create_get_describe_logs_delete(server: Running, tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        experiment("cli-a", tmp_path, max_trials=2),
        experiment("cli-b", tmp_path, max_trials=2),
    )
    created = cli(server, "create", "-f", str(path))
    assert created.returncode == 0, created.stderr
    assert created.stdout.splitlines() == [
        "experiment.kubeflow.org/cli-a created",
        "experiment.kubeflow.org/cli-b created",
    ]
    again = cli(server, "create", "-f", str(path))
    assert again.returncode == 1 and "already exists" in again.stderr
    for name in ("cli-a", "cli-b"):
        _wait_done(server, name)

    table = cli(server, "get", "experiments")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["NAME", "STATUS", "SUCCEEDED"]
    assert [r.split()[:3] for r in rows] == [
        ["cli-a", "Succeeded", "2/2"],
        ["cli-b", "Succeeded", "2/2"],
    ]
    wide = cli(server, "get", "exp", "cli-a", "-o", "wide")
    assert "ALGORITHM" in wide.stdout and "random" in wide.stdout
    as_json = cli(server, "get", "exp", "cli-a", "-o", "json")
    import json

    assert json.loads(as_json.stdout)["status"]["trialsSucceeded"] == 2
    as_yaml = yaml.safe_load(cli(server, "get", "exp", "-o", "yaml").stdout)
    assert [i["metadata"]["name"] for i in as_yaml["items"]] == ["cli-a", "cli-b"]
    everywhere = cli(server, "get", "exp", "-A")
    assert everywhere.stdout.splitlines()[0].startswith("NAMESPACE")

    trials = cli(server, "get", "trials", "-e", "cli-a")
    assert trials.returncode == 0 and trials.stdout.count("Succeeded") == 2
    trial = trials.stdout.splitlines()[1].split()[0]
    assert cli(server, "get", "trials").returncode == 1

    described = cli(server, "describe", "exp", "cli-a")
    assert "Conditions:" in described.stdout and "Best trial:" in described.stdout

    log = cli(server, "logs", "cli-a", trial)
    assert log.returncode == 0 and log.stdout.startswith("loss=")
    followed = cli(server, "logs", "cli-a", trial, "-f")
    assert followed.stdout == log.stdout

    missing = cli(server, "get", "exp", "nope")
    assert missing.returncode == 1 and 'experiments "nope" not found' in missing.stderr
    assert "resource type" in cli(server, "get", "pods").stderr

    deleted = cli(server, "delete", "exp", "cli-a")
    assert deleted.stdout.strip() == 'experiment.kubeflow.org "cli-a" deleted'
    assert cli(server, "delete", "-f", str(path)).returncode == 1  # cli-a is gone already
    assert cli(server, "get", "exp").stderr.startswith("No resources found")


def test_describe_counts_every_trial(server: Running, tmp_path: Path) -> None:
    """The goal reached, the running trials are killed: ``describe``'s counts add up."""
    from tests.e2e.test_experiments import _programs, _script

    _script(tmp_path, "fast", "#!/bin/sh\necho loss=0.01\n")
    _script(tmp_path, "slow", "#!/bin/sh\nsleep 60\n")
    _script(tmp_path, "slow2", "#!/bin/sh\nsleep 60\n")
    # Grid order: the slow one starts first, beside the fast one (the server runs 2 at once).
    data = _programs(
        "counts", ["./slow", "./fast", "./slow2"], parallelTrialCount=2, maxTrialCount=3
    )
    data["spec"]["objective"]["goal"] = 0.1
    assert cli(server, "create", "-f", str(_file(tmp_path, data))).returncode == 0
    _wait_done(server, "counts")
    described = cli(server, "describe", "exp", "counts").stdout
    assert (
        "Trials:       2 (max 3, parallel 2): 1 succeeded, 0 running, 0 pending, 0 failed, "
        "1 killed\n" in described
    ), described


def test_apply_creates_then_changes_the_budget(server: Running, tmp_path: Path) -> None:
    doc = experiment(
        "applied", tmp_path, max_trials=2, parallel=1, seconds=0.5, resume_policy="LongRunning"
    )
    path = _file(tmp_path, doc)
    assert (
        cli(server, "apply", "-f", str(path)).stdout.strip()
        == "experiment.kubeflow.org/applied created"
    )
    assert (
        cli(server, "apply", "-f", str(path)).stdout.strip()
        == "experiment.kubeflow.org/applied unchanged"
    )
    doc["spec"]["maxTrialCount"] = 3
    path.write_text(yaml.safe_dump(doc))
    assert (
        cli(server, "apply", "-f", str(path)).stdout.strip()
        == "experiment.kubeflow.org/applied configured"
    )
    _wait_done(server, "applied")
    got = server.http.get("/apis/v1/namespaces/default/experiments/applied").json()
    assert got["status"]["trials"] == 3
    # Another field than the budget is refused naming it, never dropped as "unchanged"
    # (with the budget beside it, nothing of it is applied either).
    doc["spec"]["algorithm"] = {"algorithmName": "tpe"}
    doc["spec"]["maxTrialCount"] = 5
    path.write_text(yaml.safe_dump(doc))
    refused = cli(server, "apply", "-f", str(path))
    assert refused.returncode == 1, refused.stdout
    assert "spec.algorithm: may not change" in refused.stderr, refused.stderr
    got = server.http.get("/apis/v1/namespaces/default/experiments/applied").json()
    assert got["spec"]["algorithm"]["algorithmName"] == "random"
    assert got["spec"]["maxTrialCount"] == 3


def test_a_file_with_a_key_given_twice_creates_nothing(server: Running, tmp_path: Path) -> None:
    """``create -f``/``apply -f`` and the Python client read files as ``experiment
    validate`` does: a key given twice is an error naming it, not the last value kept."""
    text = _file(tmp_path, experiment("twice", tmp_path)).read_text()
    assert "  maxTrialCount: 4\n" in text
    text = text.replace("  maxTrialCount: 4\n", "  maxTrialCount: 4\n  maxTrialCount: 5\n")
    path = tmp_path / "twice.yaml"
    path.write_text(text)
    for verb in ("create", "apply"):
        result = cli(server, verb, "-f", str(path))
        assert result.returncode == 1, result.stdout
        [line] = result.stderr.strip().splitlines()
        assert line.startswith(
            f"error: {path}: invalid YAML: duplicate key 'maxTrialCount' at line"
        )
    with Client(server=server.url) as client:
        try:
            client.create_experiment(text)
        except ValueError as exc:
            assert "duplicate key 'maxTrialCount'" in str(exc)
        else:
            raise AssertionError("the client must refuse it")
    assert server.http.get("/apis/v1/namespaces/default/experiments/twice").status_code == 404


def test_a_pipeline_python_file_says_how_it_runs(hyperflow_home: Path, tmp_path: Path) -> None:
    # It said only "invalid YAML: mapping values are not allowed here".
    for text in ("from kfp import dsl\n\n@dsl.pipeline(name='p')\ndef p():\n    pass\n", "x = 1\n"):
        path = tmp_path / "pipeline.py"
        path.write_text(text)
        result = run_hyperflow("create", "-f", str(path))
        assert result.returncode == 1
        assert f"`hyperflow pipeline run -f {path}`" in result.stderr, result.stderr
        assert "kfp.compiler.Compiler().compile" in result.stderr


def test_a_name_is_one_url_segment(server: Running, tmp_path: Path) -> None:
    """A name with ``/`` or ``..`` cannot reach another resource (httpx resolves dot
    segments): refused in kubectl's words, before anything is sent."""
    from hyperflow.client import InvalidName

    data = experiment("victim", tmp_path, max_trials=1, parallel=1)
    assert cli(server, "create", "-f", str(_file(tmp_path, data))).returncode == 0
    traversal = "../experiments/victim"
    result = cli(server, "delete", "isvc", traversal)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: invalid resource name \"{traversal}\": [may not contain '/']"
    )
    result = cli(server, "get", "exp", "-n", "../../etc")
    assert result.returncode == 1
    assert 'invalid namespace "../../etc"' in result.stderr
    with Client(server=server.url) as client:
        for call in (
            lambda: client.delete("victim#x"),  # "#": the rest a fragment, "victim" deleted
            lambda: client.delete("victim?x"),
            lambda: client.delete_experiment(".."),
            lambda: client.delete(traversal),
            lambda: client.get_experiment("victim", namespace=".."),
        ):
            try:
                call()
            except InvalidName as exc:
                assert exc.status == 400 and "may not" in exc.message
            else:
                raise AssertionError("a dot segment must be refused")
    assert server.http.get("/apis/v1/namespaces/default/experiments/victim").status_code == 200


def test_get_watch_prints_rows_as_things_change(server: Running, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        hyperflow_cmd("get", "exp", "-w", "--server", server.url),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        time.sleep(0)  # the watch starts from the list's resourceVersion: nothing is missed
        r = server.http.post(
            "/apis/v1/namespaces/default/experiments",
            json=experiment("watched", tmp_path, max_trials=2),
        )
        assert r.status_code == 201
        assert proc.stdout is not None
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            seen.append(line)
            if line.startswith("watched") and "Succeeded" in line:
                break
        assert any(line.startswith("watched") and "Succeeded" in line for line in seen), seen
    finally:
        proc.kill()
        proc.wait(10)


def test_without_a_server_one_line_says_how_to_start_one(hyperflow_home: Path) -> None:
    result = run_hyperflow("get", "exp", "--server", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "no hyperflow server answers" in line and "hyperflow server" in line


def test_a_server_address_that_is_no_url_is_one_line(hyperflow_home: Path) -> None:
    """httpx takes ``localhost:8080`` as the scheme ``localhost``: a traceback before."""
    for args in (("get", "exp"), ("pipeline", "list")):
        for address in ("localhost:8080", "http://host:port"):
            result = run_hyperflow(*args, "--server", address)
            assert result.returncode == 1, result.stdout
            [line] = result.stderr.strip().splitlines()
            assert line == (
                "error: --server / HYPERFLOW_SERVER must be an http:// or https:// URL such as "
                f"http://127.0.0.1:8080; got {address!r}"
            )
    with pytest.raises(ValueError, match="must be an http:// or https:// URL"):
        Client(server="localhost:8080")


def test_every_command_has_a_one_line_summary() -> None:
    """The commands panel of ``--help`` shows the docstring's first paragraph with its line
    breaks: a summary of one line, then the details after a blank line."""
    import inspect

    import typer.main

    from hyperflow.cli import app

    def commands(command, path):  # type: ignore[no-untyped-def]
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from commands(sub, f"{path} {name}")

    broken = [
        path
        for path, command in commands(typer.main.get_command(app), "hyperflow")
        if "\n" in inspect.cleandoc(command.help or "").split("\n\n")[0]
    ]
    assert broken == []
    # The details: paragraphs re-wrapped to the terminal (markdown mode), not cut at the
    # docstring's line ends.
    shown = run_hyperflow("describe", "--help", columns=300).stdout
    assert "an inference service's model, traffic, revisions, conditions" in shown, shown


def test_an_unknown_kind_lists_every_kind(hyperflow_home: Path) -> None:
    result = run_hyperflow("get", "foo", "--server", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        'error: the server doesn\'t have a resource type "foo" '
        "(use experiments|exp, trials, inferenceservices|isvc, pipelineruns|pr)"
    )


def test_get_imports_no_heavy_library_and_starts_fast(server: Running) -> None:
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['hyperflow', 'get', 'exp', '--server', sys.argv[1]]\n"
        "try:\n"
        "    runpy.run_module('hyperflow', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('mlflow', 'optuna', 'sklearn', 'sqlalchemy', 'torch') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, server.url],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr

    def run_once(cmd: list[str]) -> float:
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=REPO, capture_output=True, check=False, timeout=60)
        return time.perf_counter() - t0

    # Alternated, best of 5 each: a change of the machine's speed hits both.
    bases, gets = [], []
    for _ in range(5):
        bases.append(run_once([sys.executable, "-c", "import typer, rich, httpx"]))
        gets.append(run_once(hyperflow_cmd("get", "exp", "--server", server.url)))
    base, get = min(bases), min(gets)
    assert get <= 3 * base, (get, base)


def test_python_client_with_katib_names(server: Running, tmp_path: Path) -> None:
    with Client(server=server.url) as client:
        text = yaml.safe_dump(experiment("sdk", tmp_path, max_trials=3))
        created = client.create_experiment(text)
        assert created["metadata"]["name"] == "sdk"
        try:
            client.create_experiment(text)
        except ApiError as exc:
            assert exc.status == 409
        else:
            raise AssertionError("a second create must fail")
        done = client.wait_for_experiment_condition("sdk", timeout=60, polling_interval=2)
        assert done["status"]["trialsSucceeded"] == 3
        assert client.is_experiment_succeeded("sdk")
        optimal = client.get_optimal_hyperparameters("sdk")
        assert optimal is not None and optimal["bestTrialName"]
        assert [e["metadata"]["name"] for e in client.list_experiments()] == ["sdk"]
        assert len(client.list_trials("sdk", sort="objective")) == 3
        assert len(client.get_success_trial_details("sdk")) == 3
        try:
            client.edit_experiment_budget("sdk", max_trial_count=5)
        except ApiError as exc:
            assert exc.status == 422 and exc.details[0]["path"] == "spec.resumePolicy"
            assert str(exc).splitlines()[1].startswith("  spec.resumePolicy: ")
        client.delete_experiment("sdk")
        assert client.list_experiments() == []


def test_tables_reduce_metrics_by_their_strategy() -> None:
    # `get exp` / `get trials` showed the latest value, the UI and the ranking the max.
    from hyperflow.kubectl import _experiment_row, _trial_row

    metric = {"name": "accuracy", "min": "0.5", "max": "0.85", "latest": "0.8"}
    loss = {"name": "loss", "min": "0.2", "max": "0.9", "latest": "0.3"}
    objective = {
        "type": "maximize",
        "objectiveMetricName": "accuracy",
        "metricStrategies": [{"name": "loss", "value": "latest"}],
    }
    experiment = {
        "metadata": {"name": "e", "creationTimestamp": None},
        "spec": {"objective": objective, "maxTrialCount": 3},
        "status": {"currentOptimalTrial": {"observation": {"metrics": [metric]}}},
    }
    assert _experiment_row(experiment, False)[4] == "0.85"  # maximize: max by default
    trial = {
        "metadata": {"name": "e-1", "creationTimestamp": None},
        "spec": {"objective": objective, "parameterAssignments": []},
        "status": {
            "conditions": [{"type": "Succeeded"}],
            "observation": {"metrics": [metric, loss]},
        },
    }
    assert _trial_row(trial, False)[2] == "accuracy=0.85 loss=0.3"


def test_a_file_without_an_end_is_read_only_to_its_cap(
    hyperflow_home: Path, tmp_path: Path
) -> None:
    """A FIFO's or a device's size is 0, so the size check passed and the whole stream was
    read: `spec.pipelineFile: /dev/zero` took 23 GB before the OOM killer came. A finite
    FIFO of twice the cap stands in for /dev/zero (the code before read it to the end)."""
    from serving.yamlfile import MAX_BYTES

    size = 2 * MAX_BYTES
    nowhere = f"http://127.0.0.1:{free_port()}"  # refused before anything is sent
    too_large = f"too large: more than {MAX_BYTES} bytes"
    with feeding_fifo(tmp_path / "spec.yaml", size) as feed:
        result = run_hyperflow("create", "-f", str(feed.path), "--server", nowhere)
    assert result.returncode == 1 and f"error: {feed.path}: {too_large}" in result.stderr, result
    assert feed.written < size
    with feeding_fifo(tmp_path / "pipeline.yaml", size) as feed:
        run = tmp_path / "pr.yaml"
        run.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "hyperflow.io/v1",
                    "kind": "PipelineRun",
                    "metadata": {"name": "endless"},
                    "spec": {"pipelineFile": str(feed.path)},
                }
            )
        )
        result = run_hyperflow("create", "-f", str(run), "-n", "default", "--server", nowhere)
    assert result.returncode == 1, result
    assert f"spec.pipelineFile: {feed.path}: {too_large}" in result.stderr, result.stderr
    assert feed.written < size
    with feeding_fifo(tmp_path / "experiment.yaml", size) as feed:
        result = run_hyperflow("experiment", "run", "-f", str(feed.path))
    assert result.returncode != 0 and too_large in result.stderr, result
    assert feed.written < size
    piped = subprocess.run(
        hyperflow_cmd("create", "-f", "-", "--server", nowhere),
        cwd=REPO,
        input="#" * (MAX_BYTES + 1),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert piped.returncode == 1 and f"error: -: {too_large}" in piped.stderr, piped


def test_a_file_with_no_objects_is_an_error(hyperflow_home: Path, tmp_path: Path) -> None:
    """As kubectl's "error: no objects passed to create": it exited 0, printing nothing."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    for name, text in (("empty.yaml", ""), ("docs.yaml", "---\n---\n")):
        path = tmp_path / name
        path.write_text(text)
        for verb in ("create", "apply", "delete"):
            result = run_hyperflow(verb, "-f", str(path), "--server", nowhere)
            assert (result.returncode, result.stdout) == (1, ""), (name, verb, result)
            assert result.stderr == f"error: no objects passed to {verb}\n", (name, verb, result)
