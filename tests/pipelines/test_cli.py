"""``hyperflow pipeline ...``: run from a file, resume after kill -9, read commands."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.util import REPO

PIPELINE = textwrap.dedent(
    """
    from kfp import dsl


    @dsl.component
    def first(folder: str) -> str:
        import os

        with open(os.path.join(folder, "first-runs"), "a") as f:
            f.write("x")
        return "first done"


    @dsl.component
    def slow(folder: str, upstream: str) -> str:
        import os
        import time

        with open(os.path.join(folder, "slow-starts"), "a") as f:
            f.write("x")
        while not os.path.exists(os.path.join(folder, "release")):
            time.sleep(0.05)
        return upstream + ", slow done"


    @dsl.pipeline
    def resumable(folder: str) -> str:
        return slow(folder=folder, upstream=first(folder=folder).output).output


    @dsl.pipeline
    def other(folder: str):
        first(folder=folder)
    """
)


def _hyperflow(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hyperflow", *args],
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,  # type: ignore[arg-type]
    )


def _wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@pytest.fixture
def pipeline_file(tmp_path: Path) -> Path:
    path = tmp_path / "resumable.py"
    path.write_text(PIPELINE)
    return path


def test_kill_9_then_the_same_command_resumes(pipeline_file: Path, tmp_path: Path):
    folder = tmp_path / "work"
    folder.mkdir()
    command = [
        sys.executable, "-m", "hyperflow", "pipeline", "run", "-f", str(pipeline_file),
        "--pipeline", "resumable", "--arg", f"folder={folder}", "--no-track", "-p", "2",
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        # Its "x", not just the file: ``open`` creates it, the write lands at the close.
        _wait_for(lambda: _read(folder / "slow-starts") == "x")
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    run = json.loads(_cli("pipeline", "get", _only_run_name()).stdout)
    tasks = {t["path"]: t["state"] for t in run["status"]["tasks"]}
    assert run["status"]["state"] == "RUNNING" and run["status"]["interrupted"] is True
    assert tasks == {"first": "SUCCEEDED", "slow": "RUNNING"}
    # Tables say what it is: no process runs it (it said RUNNING for good).
    listed = _cli("pipeline", "list").stdout
    assert "INTERRUPTED" in listed and "RUNNING" not in listed, listed
    described = _cli("pipeline", "describe", run["metadata"]["name"]).stdout
    assert "resumes it" in described
    # Its running task died with it: shown so, without a clock that goes on.
    [slow_row] = [line for line in described.splitlines() if " slow " in f" {line} "]
    assert "INTERRUPTED" in slow_row and "RUNNING" not in slow_row, slow_row
    assert not re.search(r"\d+\.\ds", slow_row), slow_row
    [task] = [t for t in run["status"]["tasks"] if t["path"] == "slow"]
    assert task["state"] == "RUNNING" and task["interrupted"] is True  # KFP's state kept

    (folder / "release").touch()
    again = _hyperflow(*command[3:])
    assert again.returncode == 0, again.stderr
    assert f"resumed run {run['metadata']['name']}" in again.stderr
    assert (folder / "first-runs").read_text() == "x"  # finished: not run again
    assert (folder / "slow-starts").read_text() == "xx"  # was running: run again
    done = json.loads(_cli("pipeline", "get", run["metadata"]["name"]).stdout)
    assert done["status"]["state"] == "SUCCEEDED" and "interrupted" not in done["status"]
    assert done["status"]["outputs"]["parameters"] == {"Output": "first done, slow done"}
    # Times are RFC 3339 (UTC, microseconds), as KFP's API and every other object give them.
    import datetime as dt

    for when in (
        done["metadata"]["creationTimestamp"],
        done["status"]["startedAt"],
        done["status"]["finishedAt"],
        *(t["finishedAt"] for t in done["status"]["tasks"]),
    ):
        assert isinstance(when, str) and when.endswith("Z"), when
        assert dt.datetime.fromisoformat(when.replace("Z", "+00:00")).tzinfo is not None
    described = _cli("pipeline", "describe", run["metadata"]["name"]).stdout
    assert re.search(r"slow .*SUCCEEDED .*\d+\.\ds", described), described  # a duration


def test_ctrl_c_cancels_the_run_and_its_running_tasks(pipeline_file: Path, tmp_path: Path):
    folder = tmp_path / "work"
    folder.mkdir()
    command = [
        sys.executable, "-m", "hyperflow", "pipeline", "run", "-f", str(pipeline_file),
        "--pipeline", "resumable", "--arg", f"folder={folder}", "--no-track",
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        _wait_for(lambda: (folder / "slow-starts").exists())
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, stderr
    assert b"CANCELED" in stderr
    run = json.loads(_cli("pipeline", "get", _only_run_name()).stdout)
    assert run["status"]["state"] == "CANCELED"
    assert {t["path"]: t["state"] for t in run["status"]["tasks"]} == {
        "first": "SUCCEEDED",
        "slow": "CANCELED",
    }


def test_without_kfp_one_line_says_how_to_install_it(pipeline_file: Path, tmp_path: Path):
    # As where only the core is installed (`make run`): `import kfp` fails.
    hide_kfp = textwrap.dedent(
        """
        import sys

        class NoKfp:
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] == "kfp":
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)

        sys.meta_path.insert(0, NoKfp())
        from hyperflow.entry import main

        main()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", hide_kfp, "pipeline", "run", "-f", str(pipeline_file),
         "--pipeline", "other", "--arg", f"folder={tmp_path}", "--no-track"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: kfp (the Kubeflow Pipelines SDK) is not installed: "
        "pip install 'hyperflow[pipelines]'"
    ]
    assert not (tmp_path / "first-runs").exists()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def _only_run_name() -> str:
    from pipelines.store import PipelineStore
    from tuner.settings import TunerSettings

    store = PipelineStore(TunerSettings().store_url)
    try:
        runs = store.list_runs()
    finally:
        store.close()
    assert len(runs) == 1
    return runs[0].name


def _cli(*args: str):
    from typer.testing import CliRunner

    from hyperflow.cli import app

    return CliRunner().invoke(app, list(args))


def test_run_failures_and_read_commands(tmp_path: Path):
    """In-process (typer's CliRunner) to stay quick; the test above runs real processes."""
    failing = tmp_path / "failing.py"
    failing.write_text(
        textwrap.dedent(
            """
            from kfp import dsl

            @dsl.component
            def explode(n: int) -> int:
                print("about to explode")
                raise ValueError(f"bad n {n}")

            @dsl.component
            def after(n: int) -> int:
                return n

            @dsl.pipeline(name="exploding")
            def exploding(n: int = 3):
                after(n=explode(n=n).output)
            """
        )
    )
    result = _cli("pipeline", "run", "-f", str(failing), "--no-track", "--name", "boom", "-p", "1")
    assert result.exit_code == 1
    assert "pipeline run boom: FAILED — task explode failed: ValueError: bad n 3" in result.stderr
    again = _cli("pipeline", "run", "-f", str(failing), "--no-track", "--name", "boom", "-p", "1")
    assert again.exit_code == 1  # the stored result, said so
    assert "pipeline run boom had already finished: nothing ran" in again.stderr
    assert "hyperflow pipeline delete boom" in again.stderr

    bad = _cli("pipeline", "run", "-f", str(failing), "--arg", "n=three", "--no-track")
    assert bad.exit_code == 2
    [line] = bad.stderr.strip().splitlines()  # no task table: the run never started
    assert "argument n: 'three' is not an integer" in line
    missing = _cli("pipeline", "run", "-f", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 2
    assert missing.stderr.strip() == f"error: pipeline file {tmp_path / 'nope.yaml'} does not exist"

    described = _cli("pipeline", "describe", "boom")
    assert described.exit_code == 0
    assert "FAILED" in described.stdout and "upstream task explode failed" in described.stdout
    log = _cli("pipeline", "logs", "boom", "explode")
    assert "about to explode" in log.stdout and "ValueError: bad n 3" in log.stdout
    skipped = _cli("pipeline", "logs", "boom", "after")
    assert "(no log: SKIPPED)" in skipped.stdout
    listed = _cli("pipeline", "list")
    assert "boom" in listed.stdout and "exploding" in listed.stdout
    root = json.loads(_cli("pipeline", "get", "boom").stdout)["status"]["pipelineRoot"]
    assert Path(root).is_dir()
    assert _cli("pipeline", "delete", "boom").exit_code == 0
    assert not Path(root).exists()
    gone = _cli("pipeline", "get", "boom")
    assert gone.exit_code == 1
    assert gone.stderr.strip() == "error: pipeline run default/boom not found"


def test_a_compiled_pipeline_with_bad_fields_is_bad_input_naming_them(
    tmp_path: Path, hyperflow_home: Path
):
    """Exit 2 before anything runs (a ``../../etc`` name wrote MLflow artifacts outside
    ``$HYPERFLOW_HOME``; ``command: true`` failed the task with a TypeError)."""
    import yaml

    spec = yaml.safe_load((REPO / "examples" / "pipelines" / "add.yaml").read_text())
    spec["pipelineInfo"]["name"] = "../../etc"
    spec["deploymentSpec"]["executors"]["exec-add"]["container"]["command"] = True
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = _cli("pipeline", "run", "-f", str(path), "--arg", "a=1")
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {path} is not a valid PipelineSpec: ")
    assert "pipelineInfo.name: must not be '.' or '..' nor contain '/'" in line
    assert "deploymentSpec.executors.exec-add.container.command: must be a list of strings" in line
    assert not (hyperflow_home.parent / "etc").exists()
    assert not (hyperflow_home / "pipelines").exists()


@pytest.mark.parametrize(("option", "value"), [("--name", "../.."), ("-n", "../../x")])
def test_a_run_name_or_namespace_that_is_a_path_is_bad_input(
    tmp_path: Path, hyperflow_home: Path, option: str, value: str
):
    """The run's folder is ``pipelines/<namespace>/<name>``: ``--name ../..`` was
    ``$HYPERFLOW_HOME`` itself, which ``pipeline delete`` removes."""
    add = str(REPO / "examples" / "pipelines" / "add.yaml")
    result = _cli("pipeline", "run", "-f", add, "--arg", "a=1", "--no-track", option, value)
    assert result.exit_code == 2, result.output
    what = "run name" if option == "--name" else "namespace"
    assert result.stderr.strip() == (
        f"error: {what} {value!r}: must not be '.' or '..' nor contain '/', '\\' or control "
        "characters"
    )
    assert not (hyperflow_home / "pipelines").exists()
    assert not (hyperflow_home.parent / "x").exists()


def test_read_commands_import_no_heavy_packages(tmp_path: Path):
    script = textwrap.dedent(
        """
        import sys
        from typer.testing import CliRunner
        from hyperflow.cli import app

        for args in (["pipeline", "list"], ["pipeline", "get", "x"], ["pipeline", "describe", "x"],
                     ["pipeline", "logs", "x"]):
            CliRunner().invoke(app, args)
        print(sorted(m for m in ("kfp", "mlflow", "optuna", "sklearn") if m in sys.modules))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


KILLED_BEFORE_MLFLOW = textwrap.dedent(
    """
    import os, signal, sys
    from pipelines.tracking import PipelineTracker

    def task_finished(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)  # the task's end is stored, not yet in MLflow

    PipelineTracker.task_finished = task_finished
    sys.argv = ["hyperflow", "pipeline", "run", *sys.argv[1:]]
    from hyperflow.entry import main
    main()
    """
)


def test_a_task_finished_before_a_kill_9_is_in_mlflow_after_the_resume(
    pipeline_file: Path, tmp_path: Path, mlflow_db: Path
):
    """The resumed run sends its restored tasks to MLflow again (a task that ended just
    before the kill had no MLflow run at all, or one RUNNING for ever)."""
    from mlflow import MlflowClient

    folder, _ = _killed_and_resumed(pipeline_file, tmp_path, KILLED_BEFORE_MLFLOW)
    assert (folder / "first-runs").read_text() == "x"  # not run again
    client = MlflowClient(tracking_uri=f"sqlite:///{mlflow_db}")
    experiment = client.get_experiment_by_name("resumable")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    tasks = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert sorted(r.info.run_name for r in tasks) == ["first", "slow"], [
        (r.info.run_name, r.info.status) for r in tasks
    ]
    assert all(r.info.status == "FINISHED" for r in tasks), [
        (r.info.run_name, r.info.status) for r in tasks
    ]


KILLED_BEFORE_THE_PARENT_RUN = KILLED_BEFORE_MLFLOW.replace(
    "PipelineTracker.task_finished = task_finished",
    "PipelineTracker.task_finished = task_finished\n"
    "from tuner.tracking.mlflow_tracker import MlflowTracker\n"
    "MlflowTracker.start = lambda *args, **kwargs: None  # the parent run never written",
)


def test_a_parent_run_first_written_on_resume_starts_when_the_run_started(
    pipeline_file: Path, tmp_path: Path, mlflow_db: Path
):
    from mlflow import MlflowClient

    _, resumed_at = _killed_and_resumed(pipeline_file, tmp_path, KILLED_BEFORE_THE_PARENT_RUN)
    client = MlflowClient(tracking_uri=f"sqlite:///{mlflow_db}")
    experiment = client.get_experiment_by_name("resumable")
    [parent] = [
        r
        for r in client.search_runs([experiment.experiment_id], max_results=100)
        if "mlflow.parentRunId" not in r.data.tags
    ]
    # Before the resume: when the run started (it said the resume's time).
    assert parent.info.start_time / 1000 < resumed_at
    assert parent.info.status == "FINISHED"


def _killed_and_resumed(pipeline_file: Path, tmp_path: Path, driver: str) -> tuple[Path, float]:
    """``resumable`` run by ``driver`` (which kills itself), then resumed by `pipeline run`:
    its work folder, and when the resume started."""
    folder = tmp_path / "work"
    folder.mkdir()
    args = ["-f", str(pipeline_file), "--pipeline", "resumable", "--arg", f"folder={folder}"]
    script = tmp_path / "killed.py"
    script.write_text(driver)
    killed = _hyperflow_script(script, *args)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    (folder / "release").touch()
    resumed_at = time.time()
    again = _hyperflow("pipeline", "run", *args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resumed run" in again.stderr
    return folder, resumed_at


def _hyperflow_script(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, timeout=120
    )
