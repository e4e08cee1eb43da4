"""Pipeline runs as a resource of the control plane, against a real server: kubectl's
verbs, the Python client, ``hyperflow pipeline ...`` through the server, bad input,
events, and a run that survives ``kill -9`` of the server."""

# No `from __future__ import annotations`: kfp reads the components' annotations.

import copy
import os
import signal
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from hyperflow.client import Client
from tests.hyperflow.conftest import Running, serve_plane, server_settings
from tests.util import REPO, free_port, hyperflow_cmd, running, wait_http_ok, wait_until

warnings.filterwarnings("ignore", category=FutureWarning, module=r"kfp(\.|$)")

RUNS = "/apis/v1/namespaces/default/pipelineruns"


def _compile(pipeline: Any, path: Path) -> Path:
    from kfp import compiler

    compiler.Compiler().compile(pipeline, str(path))
    return path


def add_pipeline(path: Path) -> Path:
    from kfp import dsl

    @dsl.component(base_image="python:3.11")
    def add(a: int, b: int) -> int:
        print(f"adding {a} and {b}")
        return a + b

    @dsl.pipeline(name="add-twice")
    def add_twice(a: int, b: int = 2) -> int:
        first = add(a=a, b=b)
        return add(a=first.output, b=b).output

    return _compile(add_twice, path)


def waiting_pipeline(path: Path) -> Path:
    """``first`` writes to the ledger; ``second`` writes, waits for the file ``go``, writes."""
    from kfp import dsl

    @dsl.component(base_image="python:3.11")
    def first(ledger: str) -> str:
        with open(ledger, "a") as f:
            f.write("first\n")
        return "one"

    @dsl.component(base_image="python:3.11")
    def second(ledger: str, go: str, before: str) -> str:
        import os
        import time

        with open(ledger, "a") as f:
            f.write("second-start\n")
        while not os.path.exists(go):
            time.sleep(0.05)
        with open(ledger, "a") as f:
            f.write("second-end\n")
        return before + "+two"

    @dsl.pipeline(name="waits")
    def waits(ledger: str, go: str) -> str:
        one = first(ledger=ledger)
        return second(ledger=ledger, go=go, before=one.output).output

    return _compile(waits, path)


@pytest.fixture
def server(hyperflow_home: Path) -> Iterator[Running]:
    with serve_plane(server_settings(hyperflow_home)) as running_server:
        try:
            yield running_server
        finally:
            running_server.plane.pipeline_manager.shutdown()


def hyperflow(
    server: Running | str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    url = server if isinstance(server, str) else server.url
    return subprocess.run(
        hyperflow_cmd(*args),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "300", "HYPERFLOW_SERVER": url, **(env or {})},
    )


def _finished(server: Running, name: str) -> dict[str, Any]:
    def done() -> bool:
        state = server.http.get(f"{RUNS}/{name}").json()["status"]["state"]
        return state in ("SUCCEEDED", "FAILED", "CANCELED")

    wait_until(done, timeout=120, interval=0.05)
    obj: dict[str, Any] = server.http.get(f"{RUNS}/{name}").json()
    return obj


def test_create_get_describe_logs_delete_and_events(server: Running, tmp_path: Path) -> None:
    compiled = add_pipeline(tmp_path / "add.yaml")
    created = hyperflow(server, "create", "-f", str(compiled), "--arg", "a=3")
    assert created.returncode == 0, created.stderr
    line = created.stdout.strip()
    assert line.startswith("pipelinerun.hyperflow.io/add-twice-") and line.endswith(" created")
    name = line.split("/", 1)[1].split()[0]

    run = _finished(server, name)
    assert run["kind"] == "PipelineRun" and run["status"]["state"] == "SUCCEEDED", run
    assert run["status"]["outputs"]["parameters"] == {"Output": 7}
    assert run["spec"]["runtimeConfig"]["parameters"] == {"a": 3, "b": 2}
    assert run["spec"]["source"] == "api:add.yaml"
    assert [t["state"] for t in run["status"]["tasks"] if t["kind"] == "container"] == [
        "SUCCEEDED",
        "SUCCEEDED",
    ]

    listed = hyperflow(server, "get", "pipelineruns")
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()[:2]
    assert header.split()[:4] == ["NAME", "PIPELINE", "STATE", "TASKS"]
    assert row.split()[:4] == [name, "add-twice", "SUCCEEDED", "2/2"]
    as_json = hyperflow(server, "get", "pr", name, "-o", "json")
    assert yaml.safe_load(as_json.stdout)["status"]["outputs"]["parameters"] == {"Output": 7}

    described = hyperflow(server, "describe", "pipelinerun", name)
    assert described.returncode == 0, described.stderr
    assert "State:        SUCCEEDED" in described.stdout
    assert 'Arguments:    {"a": 3, "b": 2}' in described.stdout
    assert "add-2" in described.stdout

    logs = hyperflow(server, "logs", f"pipelinerun/{name}", "add")
    assert logs.returncode == 0, logs.stderr
    assert "adding 3 and 2" in logs.stdout and "adding 5 and 2" not in logs.stdout
    every = hyperflow(server, "logs", f"pipelinerun/{name}")
    assert "==> add (SUCCEEDED) <==" in every.stdout and "adding 5 and 2" in every.stdout
    # A task is named by its path (tasks in loops have no other name): sent, not refused.
    by_path = hyperflow(server, "logs", f"pipelinerun/{name}", "for-loop-2/iteration-0/add")
    assert by_path.returncode == 1 and "invalid resource name" not in by_path.stderr
    assert "for-loop-2/iteration-0/add" in by_path.stderr, by_path.stderr

    # `hyperflow pipeline ...` goes through the server: this home's store is empty.
    elsewhere = {"HYPERFLOW_HOME": str(tmp_path / "other-home")}
    local_list = hyperflow(server, "pipeline", "list", env=elsewhere)
    assert local_list.returncode == 0 and name in local_list.stdout, local_list.stderr
    local_describe = hyperflow(server, "pipeline", "describe", name, env=elsewhere)
    assert "state:     SUCCEEDED" in local_describe.stdout, local_describe.stderr
    local_logs = hyperflow(server, "pipeline", "logs", name, "add-2", env=elsewhere)
    assert "adding 5 and 2" in local_logs.stdout

    deleted = hyperflow(server, "delete", "pipelinerun", name)
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.strip() == f'pipelinerun.hyperflow.io "{name}" deleted'
    assert server.http.get(f"{RUNS}/{name}").status_code == 404
    gone = hyperflow(server, "pipeline", "get", name, env=elsewhere)
    assert gone.returncode == 1 and "not found" in gone.stderr

    events = server.http.get("/apis/v1/namespaces/default/events").json()["items"]
    reasons = [e["reason"] for e in events if e["kind"] == "PipelineRun" and e["name"] == name]
    assert reasons[0] == "Created" and reasons[-1] == "Deleted"
    assert {"Running", "TaskSucceeded", "Succeeded"} <= set(reasons), reasons
    assert [e["type"] for e in events if e["name"] == name][-1] == "DELETED"


def test_a_pipelinerun_document_and_the_python_client(server: Running, tmp_path: Path) -> None:
    add_pipeline(tmp_path / "add.yaml")
    (tmp_path / "run.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "hyperflow.io/v1",
                "kind": "PipelineRun",
                "metadata": {"name": "add-ten"},
                "spec": {
                    "pipelineFile": "add.yaml",
                    "runtimeConfig": {"parameters": {"a": 10, "b": 5}},
                    "cache": False,
                },
            }
        )
    )
    created = hyperflow(server, "create", "-f", str(tmp_path / "run.yaml"))
    assert created.stdout.strip() == "pipelinerun.hyperflow.io/add-ten created", created.stderr
    with Client(server=server.url) as client:
        run = client.wait_for_run_completion("add-ten", timeout=120)
        assert (
            run["status"]["outputs"]["parameters"] == {"Output": 20}
            and run["spec"]["cache"] is False
        )
        made = client.create_run_from_pipeline_package(
            tmp_path / "add.yaml", {"a": 1}, run_name="add-one"
        )
        assert made["metadata"]["name"] == "add-one"
        assert client.wait_for_run_completion("add-one")["status"]["outputs"]["parameters"] == {
            "Output": 5
        }
        assert {r["metadata"]["name"] for r in client.list_runs()} == {"add-ten", "add-one"}
        client.delete_run("add-one")
        assert [r["metadata"]["name"] for r in client.list_runs()] == ["add-ten"]


def test_bad_runs_are_refused_naming_the_field(server: Running, tmp_path: Path) -> None:
    compiled = add_pipeline(tmp_path / "add.yaml")
    pipeline = yaml.safe_load(compiled.read_text())

    def post(body: Any) -> httpx.Response:
        return server.http.post(RUNS, json=body)

    def run(**spec: Any) -> dict[str, Any]:
        return {"kind": "PipelineRun", "metadata": {"name": "bad"}, "spec": spec}

    missing = post(run(pipelineSpec=pipeline))
    assert missing.status_code == 422
    detail = missing.json()["details"][0]
    assert detail["path"] == "spec.runtimeConfig.parameters" and "a" in detail["message"]
    wrong = post(run(pipelineSpec=pipeline, runtimeConfig={"parameters": {"a": "three"}}))
    assert wrong.status_code == 422 and "argument a" in wrong.json()["details"][0]["message"]
    unknown = post(run(pipelineSpec=pipeline, runtimeConfig={"parameters": {"a": 1, "zz": 2}}))
    assert unknown.status_code == 422 and "zz" in unknown.text
    not_a_pipeline = post(run(pipelineSpec={"hello": "world"}))
    assert not_a_pipeline.status_code == 422
    assert not_a_pipeline.json()["details"][0]["path"] == "spec.pipelineSpec"
    # A task name is a folder of the run: one that climbs out of it is refused (it made
    # and emptied folders outside the pipeline root, another namespace's too).
    outside = tmp_path / "outside"
    escaping = copy.deepcopy(pipeline)
    tasks = escaping["root"]["dag"]["tasks"]
    first = next(iter(tasks))
    tasks[f"../../../../../../../../../..{outside}"] = tasks.pop(first)
    refused = post(run(pipelineSpec=escaping, runtimeConfig={"parameters": {"a": 1}}))
    assert refused.status_code == 422, refused.text
    [detail] = refused.json()["details"]
    assert detail["path"] == "spec.pipelineSpec" and "not a valid task name" in detail["message"]
    assert not outside.exists()
    several = post(
        {"kind": "Experiment", "metadata": {"name": "Bad_Name"}, "spec": {"parallelism": 0}}
    )
    paths = {d["path"] for d in several.json()["details"]}
    assert several.status_code == 422
    assert {"kind", "metadata.name", "spec.pipelineSpec", "spec.parallelism"} <= paths
    assert post([1, 2]).status_code == 422
    assert server.http.get(f"{RUNS}/nothing").status_code == 404
    assert server.http.delete(f"{RUNS}/nothing").status_code == 404
    assert server.http.get(RUNS, params={"state": "nope"}).status_code == 400

    ok = run(pipelineSpec=pipeline, runtimeConfig={"parameters": {"a": 1}})
    assert post(ok).status_code == 201
    assert post(ok).status_code == 409
    _finished(server, "bad")

    cli = hyperflow(server, "create", "-f", str(compiled), "--arg", "a=notanint")
    assert cli.returncode == 1
    assert "spec.runtimeConfig.parameters" in cli.stderr and "argument a" in cli.stderr


def test_an_integer_out_of_range_is_refused_naming_it_and_nothing_is_stored(
    server: Running, tmp_path: Path
) -> None:
    """A 2**64 anywhere in a run was stored (201), and then the run and every list of it
    were 500s (orjson writes 64 bits at most); in spec.parallelism it was a 500 at once
    (an OverflowError of the store's INTEGER column)."""
    pipeline = yaml.safe_load(add_pipeline(tmp_path / "add.yaml").read_text())
    executor = "deploymentSpec.executors.exec-add.container.image"
    default = "root.inputDefinitions.parameters.b.defaultValue"
    for where in (
        "spec.parallelism",
        f"spec.pipelineSpec.{executor}",
        f"spec.pipelineSpec.{default}",
    ):
        body: dict[str, Any] = {
            "kind": "PipelineRun",
            "metadata": {"name": "huge"},
            "spec": {
                "pipelineSpec": copy.deepcopy(pipeline),
                "runtimeConfig": {"parameters": {"a": 1}},
            },
        }
        *parents, last = where.split(".")
        node = body
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = 2**64
        r = server.http.post(RUNS, json=body)
        assert r.status_code == 422, (where, r.status_code, r.text)
        [detail] = r.json()["details"]
        assert detail["path"] == where and "int64" in detail["message"], detail
    # Within int64 but not the column's int32: named too.
    body["spec"]["pipelineSpec"], body["spec"]["parallelism"] = pipeline, 2**31
    r = server.http.post(RUNS, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["details"] == [
        {"path": "spec.parallelism", "message": "must be an integer from 1 to 2147483647"}
    ]
    listed = server.http.get(RUNS)
    assert listed.status_code == 200 and listed.json()["items"] == []
    assert server.http.get("/apis/v1/pipelineruns").status_code == 200


def test_a_broken_pipeline_spec_is_a_422_naming_the_field_not_a_500_or_a_failed_run(
    server: Running, tmp_path: Path, hyperflow_home: Path
) -> None:
    """Each body is a valid run with one field changed: they were 500s (TypeError,
    KeyError, AttributeError, IntegrityError), or 201s whose run FAILED with a Python
    error, or (a pipeline named ``../../etc``) a run whose MLflow artifacts were written
    outside ``$HYPERFLOW_HOME/mlartifacts``."""
    pipeline = yaml.safe_load(add_pipeline(tmp_path / "add.yaml").read_text())
    executor = next(iter(pipeline["deploymentSpec"]["executors"]))
    component = next(iter(pipeline["components"]))

    def body(change: Any = None, **top: Any) -> dict[str, Any]:
        spec = copy.deepcopy(pipeline)
        if change is not None:
            change(spec)
        run = {
            "apiVersion": "hyperflow.io/v1",
            "kind": "PipelineRun",
            "metadata": {"name": "broken"},
            "spec": {"pipelineSpec": spec, "runtimeConfig": {"parameters": {"a": 1}}},
        }
        for key, value in top.items():
            where = run["spec"] if key == "pipelineName" else run
            where[key] = value
        return run

    def info(value: Any) -> Any:
        return lambda s: s.update(pipelineInfo=value)

    def name(value: Any) -> Any:
        return lambda s: s["pipelineInfo"].update(name=value)

    def root(value: Any) -> Any:
        return lambda s: s.update(root=value)

    def container(**fields: Any) -> Any:
        return lambda s: s["deploymentSpec"]["executors"][executor]["container"].update(fields)

    def default_b(value: Any, key: str = "defaultValue") -> Any:
        return lambda s: s["root"]["inputDefinitions"]["parameters"]["b"].update({key: value})

    pipeline_spec = "spec.pipelineSpec"
    b = f"{pipeline_spec}.root.inputDefinitions.parameters.b"
    cases = [
        (body(name("../../etc")), f"{pipeline_spec}.pipelineInfo.name"),
        (body(name("a\0b")), f"{pipeline_spec}.pipelineInfo.name"),
        (body(name("x" * 300)), f"{pipeline_spec}.pipelineInfo.name"),
        (body(name(None)), f"{pipeline_spec}.pipelineInfo.name"),
        (body(info(None)), f"{pipeline_spec}.pipelineInfo"),
        (body(info("")), f"{pipeline_spec}.pipelineInfo"),
        (body(info([])), f"{pipeline_spec}.pipelineInfo"),
        (body(info({})), f"{pipeline_spec}.pipelineInfo.name"),
        (body(root(None)), f"{pipeline_spec}.root"),
        (body(root("")), f"{pipeline_spec}.root"),
        (body(root([])), f"{pipeline_spec}.root"),
        (body(root("x" * 300)), f"{pipeline_spec}.root"),
        (body(lambda s: s.update(deploymentSpec=None)), f"{pipeline_spec}.deploymentSpec"),
        (body(lambda s: s.update(components=None)), f"{pipeline_spec}.components"),
        (
            body(container(command=True)),
            f"{pipeline_spec}.deploymentSpec.executors.{executor}.container.command",
        ),
        (
            body(lambda s: s["components"][component].update(executorLabel="")),
            f"{pipeline_spec}.components.{component}.executorLabel",
        ),
        (body(default_b("xxx")), f"{b}.defaultValue"),
        (body(default_b(True, "parameterType")), f"{b}.parameterType"),
        (body(apiVersion=5), "apiVersion"),
        (body(apiVersion="kubeflow.org/v1beta1"), "apiVersion"),
        (body(metadata={"name": "broken", "labels": {"a": 1}}), "metadata.labels"),
        (body(metadata={"name": "broken", "annotations": "x"}), "metadata.annotations"),
        (body(pipelineName=[]), "spec.pipelineName"),
    ]
    for sent, field in cases:
        answer = server.http.post(RUNS, json=sent)
        assert answer.status_code == 422, (field, answer.text)
        assert field in [d["path"] for d in answer.json()["details"]], (field, answer.text)
    assert server.http.get(RUNS).json()["items"] == []
    assert not (hyperflow_home.parent / "etc").exists()
    assert post_ok(server, body())["status"]["state"] == "SUCCEEDED"


def test_a_stored_run_the_checks_now_refuse_fails_saying_what_is_wrong(
    server: Running, tmp_path: Path
) -> None:
    """A run stored before a check existed (resumed at a start) fails with the field, not
    with "the server could not run it: SpecProblems: ..." (Python's name for it)."""
    pipeline = yaml.safe_load(add_pipeline(tmp_path / "add.yaml").read_text())
    component = next(iter(pipeline["components"]))
    pipeline["components"][component]["executorLabel"] = ""
    manager = server.plane.pipeline_manager
    record = manager.store.create_run(
        namespace="default",
        name="stored",
        pipeline_name="add-twice",
        spec=pipeline,
        arguments={"a": 1, "b": 2},
        resume_key="stored",
        source="api",
        parallelism=1,
        cache=False,
        pipeline_root=str(server.plane.settings.home / "pipelines" / "default" / "stored"),
        state="PENDING",
        owner_pid=None,
        owner_started=None,
    )
    manager.created(record)
    manager.start(record)
    status = _finished(server, "stored")["status"]
    assert status["state"] == "FAILED"
    assert status["message"] == (
        "the given spec is not a valid PipelineSpec: components."
        f"{component}.executorLabel: must name an executor of deploymentSpec.executors, got ''"
    )


def post_ok(server: Running, body: dict[str, Any]) -> dict[str, Any]:
    created = server.http.post(RUNS, json=body)
    assert created.status_code == 201, created.text
    return _finished(server, body["metadata"]["name"])


def test_delete_cancels_a_running_run(server: Running, tmp_path: Path) -> None:
    compiled = waiting_pipeline(tmp_path / "waits.yaml")
    ledger, go = tmp_path / "ledger.txt", tmp_path / "go"
    with Client(server=server.url) as client:
        client.create_run_from_pipeline_package(
            compiled, {"ledger": str(ledger), "go": str(go)}, run_name="stuck"
        )
        wait_until(lambda: "second-start" in _read(ledger), timeout=120, interval=0.05)
        deleted = client.delete_run("stuck")
        assert deleted["status"]["state"] == "CANCELED"
        assert [r["metadata"]["name"] for r in client.list_runs()] == []
    assert not (server.plane.settings.home / "pipelines" / "default" / "stuck").exists()


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def test_a_run_survives_kill_9_and_a_stop_of_the_server(
    tmp_path: Path, hyperflow_home: Path
) -> None:
    compiled = waiting_pipeline(tmp_path / "waits.yaml")
    ledger, go = tmp_path / "ledger.txt", tmp_path / "go"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = hyperflow_cmd("server", "--port", str(port), "--serving-port", str(free_port()))
    env = {"HYPERFLOW_TRACK": "false"}
    with running(
        command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as old:
        wait_http_ok(f"{url}/readyz", proc=old, timeout=60)
        with Client(server=url) as client:
            client.create_run_from_pipeline_package(
                compiled, {"ledger": str(ledger), "go": str(go)}, run_name="survivor"
            )
        wait_until(lambda: "second-start" in _read(ledger), timeout=120, interval=0.05)
        os.kill(old.pid, signal.SIGKILL)
        old.wait(10)
    assert _read(ledger).split() == ["first", "second-start"]

    with running(
        command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as new:
        wait_http_ok(f"{url}/readyz", proc=new, timeout=60)
        # Resumed: `second` runs again (it was running), `first` does not.
        wait_until(
            lambda: _read(ledger).split().count("second-start") == 2, timeout=120, interval=0.05
        )
        # Then a graceful stop (SIGTERM) detaches the run: still RUNNING, not CANCELED.
        new.send_signal(signal.SIGTERM)
        new.wait(90)  # uvicorn re-raises SIGTERM after its graceful shutdown: exit -15
    said = new.stdout.read().decode() if new.stdout else ""
    assert "resumed pipeline runs: default/survivor" in said, said
    assert "1 running pipeline runs detached" in said, said

    with running(
        command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as third:
        wait_http_ok(f"{url}/readyz", proc=third, timeout=60)
        with Client(server=url) as client:
            wait_until(
                lambda: _read(ledger).split().count("second-start") == 3,
                timeout=120,
                interval=0.05,
            )
            go.touch()
            run = client.wait_for_run_completion("survivor", timeout=120)
    assert run["status"]["state"] == "SUCCEEDED", run["status"]
    assert run["status"]["outputs"]["parameters"] == {"Output": "one+two"}
    lines = _read(ledger).split()
    assert lines == ["first", "second-start", "second-start", "second-start", "second-end"]


def test_the_compiled_example_is_its_python_file_compiled(tmp_path: Path) -> None:
    import importlib.util

    source = REPO / "examples" / "pipelines" / "add.py"
    spec = importlib.util.spec_from_file_location("add_example", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fresh = yaml.safe_load(_compile(module.add_pipeline, tmp_path / "add.yaml").read_text())
    stored = yaml.safe_load((REPO / "examples" / "pipelines" / "add.yaml").read_text())
    for key in ("pipelineInfo", "root", "components"):
        assert fresh[key] == stored[key], f"recompile examples/pipelines/add.yaml ({key})"
    run = yaml.safe_load((REPO / "examples" / "pipelines" / "add-run.yaml").read_text())
    assert run["kind"] == "PipelineRun" and run["spec"]["pipelineFile"] == "add.yaml"
