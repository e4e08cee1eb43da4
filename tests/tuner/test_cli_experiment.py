"""``hyperflow experiment run|list|get|describe|trials|best|logs|delete`` on a real store.

``run`` is a real ``hyperflow`` process; the read-only commands go through the same typer
app in-process (typer's CliRunner) to keep the suite quick, plus one real process to check
that an unknown name fails cleanly.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from hyperflow.cli import app
from tests.util import (
    REPO,
    free_port,
    hyperflow_cmd,
    run_hyperflow,
    running,
    wait_http_ok,
    write_script,
)

TRIAL = textwrap.dedent(
    """
    import sys
    x = float(sys.argv[1])
    print(f"trial says hello x={x}", flush=True)
    print(f"loss={(x - 0.3) ** 2:.6f}")
    print(f"loss={(x - 0.3) ** 2 / 2:.6f}")
    """
)


def _spec(name: str = "cli-exp", max_trials: int = 3) -> dict[str, Any]:
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": "loss"},
            "algorithm": {
                "algorithmName": "random",
                "algorithmSettings": [{"name": "random_state", "value": "7"}],
            },
            "parallelTrialCount": 2,
            "maxTrialCount": max_trials,
            "parameters": [
                {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}
            ],
            "trialTemplate": {
                "trialParameters": [{"name": "x", "reference": "x"}],
                "command": ["python", "trial.py", "${trialParameters.x}"],
            },
        },
    }


def _write(folder: Path, spec: dict[str, Any], name: str = "experiment.yaml") -> Path:
    write_script(folder / "trial.py", TRIAL)
    path = folder / name
    path.write_text(yaml.safe_dump(spec))
    return path


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return run_hyperflow("experiment", *args, timeout=timeout)


def _cli(*args: str) -> Any:
    result = CliRunner().invoke(app, ["experiment", *args])
    # A clean failure is typer.Exit (SystemExit); anything else is a crash.
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception,
        result.output,
    )
    return result


def test_run_json_then_every_read_command(tmp_path: Path) -> None:
    path = _write(tmp_path, _spec())
    done = _run("run", "-f", str(path), "--json", "--no-mlflow")
    assert done.returncode == 0, done.stderr[-3000:]
    obj = json.loads(done.stdout)
    assert obj["kind"] == "Experiment" and obj["metadata"]["name"] == "cli-exp"
    status = obj["status"]
    assert status["trials"] == 3 == status["trialsSucceeded"]
    assert len(status["succeededTrialList"]) == 3
    assert status["trialsFailed"] == 0
    types = {c["type"]: c for c in status["conditions"]}
    assert types["Succeeded"]["status"] == "True"
    assert types["Succeeded"]["reason"] == "ExperimentMaxTrialsReached"
    assert types["Created"]["status"] == "True" and types["Running"]["status"] == "False"
    assert status["startTime"] and status["completionTime"]
    optimal = status["currentOptimalTrial"]
    best_name = optimal["bestTrialName"]
    assert best_name in status["succeededTrialList"]
    [x] = optimal["parameterAssignments"]
    assert x["name"] == "x" and isinstance(x["value"], str)
    [metric] = optimal["observation"]["metrics"]
    assert metric["name"] == "loss"
    assert all(isinstance(metric[k], str) for k in ("min", "max", "latest"))
    xv = float(x["value"])
    assert float(metric["max"]) == round((xv - 0.3) ** 2, 6)
    assert float(metric["min"]) == float(metric["latest"]) == round((xv - 0.3) ** 2 / 2, 6)

    listed = _cli("list")
    assert listed.exit_code == 0 and "cli-exp" in listed.output and "Succeeded" in listed.output
    listed_json = json.loads(_cli("list", "-o", "json").output)
    assert listed_json["kind"] == "List"
    assert [i["status"] for i in listed_json["items"]] == [status]
    assert yaml.safe_load(_cli("list", "-o", "yaml").output) == listed_json
    assert _cli("list", "-o", "name").output.split() == ["experiment.kubeflow.org/cli-exp"]

    as_json = _cli("get", "cli-exp", "-o", "json")
    assert as_json.exit_code == 0
    assert json.loads(as_json.output)["status"] == status
    as_yaml = _cli("get", "cli-exp", "-o", "yaml")
    assert as_yaml.exit_code == 0
    assert yaml.safe_load(as_yaml.output)["status"] == status
    table = _cli("get", "cli-exp")
    assert table.exit_code == 0 and best_name in table.output

    described = _cli("describe", "cli-exp")
    assert described.exit_code == 0
    for word in ("Conditions", "ExperimentMaxTrialsReached", *status["succeededTrialList"]):
        assert word in described.output

    trials = _cli("trials", "cli-exp", "-o", "json")
    assert trials.exit_code == 0
    objs = json.loads(trials.output)
    assert sorted(t["metadata"]["name"] for t in objs) == sorted(status["succeededTrialList"])
    assert all(t["kind"] == "Trial" for t in objs)
    assert all(t["status"]["conditions"][0]["type"] == "Succeeded" for t in objs)

    best = _cli("best", "cli-exp")
    assert best.exit_code == 0 and best_name in best.output and "loss" in best.output
    best_json = _cli("best", "cli-exp", "-o", "json")
    assert json.loads(best_json.output) == optimal

    logs = _cli("logs", "cli-exp")
    assert logs.exit_code == 0 and f"x={xv}" in logs.output, logs.output
    other = next(n for n in status["succeededTrialList"] if n != best_name)
    other_logs = _cli("logs", "cli-exp", other)
    assert other_logs.exit_code == 0 and "trial says hello" in other_logs.output

    # Running the finished experiment again returns the stored result at once.
    started = time.monotonic()
    again = _cli("run", "-f", str(path), "--json", "--no-mlflow")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["status"] == status
    assert time.monotonic() - started < 10

    # The same name with a different spec is refused (but for the counts Katib lets
    # users edit: see test_raising_max_trial_count_continues_a_finished_experiment).
    other_spec = _spec()
    other_spec["spec"]["objective"]["type"] = "maximize"
    changed = _write(tmp_path, other_spec, "changed.yaml")
    refused = _cli("run", "-f", str(changed), "--no-mlflow")
    assert refused.exit_code == 1
    assert "already exists with a different spec" in refused.stderr

    deleted = _cli("delete", "cli-exp")
    assert deleted.exit_code == 0 and "deleted" in deleted.output
    assert "cli-exp" not in _cli("list").output
    gone = _cli("get", "cli-exp")
    assert gone.exit_code == 1 and "not found" in gone.output


def test_piped_output_is_not_cut_at_80_columns(tmp_path: Path) -> None:
    """Into a file or a CI log (no terminal, no COLUMNS): 160 columns, as ``serve run``."""
    path = _write(tmp_path, _spec("a-rather-long-experiment-name-to-fill-the-line"))
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    done = subprocess.run(
        hyperflow_cmd("experiment", "run", "-f", str(path), "--no-mlflow"),
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    [bar] = [line for line in done.stderr.splitlines() if "3/3" in line]
    assert "best loss=" in bar and "…" not in bar, bar
    # The read commands too: a row is one line with every column, names whole.
    name = "a-rather-long-experiment-name-to-fill-the-line"

    def piped(*args: str) -> list[str]:
        result = subprocess.run(
            hyperflow_cmd("experiment", *args), capture_output=True, text=True, timeout=60, env=env
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()

    [row] = [line for line in piped("list") if name in line]
    assert row.split()[1:5] == [name, "Succeeded", "ExperimentMaxTrialsReached", "3"], row
    assert len(row.split()) == 6, row  # and the age
    trial_rows = [line for line in piped("trials", name) if line.startswith(f"{name}-")]
    assert len(trial_rows) == 3 and all("Succeeded" in r for r in trial_rows), trial_rows
    assert sum(r.split()[1] == "*" for r in trial_rows) == 1, trial_rows


def test_unknown_names_fail_cleanly(tmp_path: Path) -> None:
    for args in (
        ["get", "nope"],
        ["get", "nope", "-o", "json"],
        ["describe", "nope"],
        ["trials", "nope"],
        ["best", "nope"],
        ["logs", "nope"],
        ["delete", "nope"],
    ):
        result = _cli(*args)
        assert result.exit_code == 1, (args, result.output)
        assert "not found" in result.output, (args, result.output)

    path = _write(tmp_path, _spec(max_trials=2))
    ran = _cli("run", "-f", str(path), "--no-mlflow")
    assert ran.exit_code == 0, ran.output
    unknown_trial = _cli("logs", "cli-exp", "cli-exp-nosuchtrial")
    assert unknown_trial.exit_code == 1 and "not found" in unknown_trial.output
    for args in (["get", "cli-exp"], ["trials", "cli-exp"], ["best", "cli-exp"]):
        bad_format = _cli(*args, "-o", "xml")
        assert bad_format.exit_code == 1 and "unknown output format" in bad_format.output

    # and in a real process: a message on stderr, no traceback
    real = _run("describe", "nope")
    assert real.returncode == 1
    assert "not found" in real.stderr and "Traceback" not in real.stderr


def test_run_with_suggestion_service(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    path = _write(tmp_path, _spec(name="remote-suggest", max_trials=3))
    # The service is not up yet: one clean error before anything is stored (it left an
    # Interrupted experiment of no trials behind).
    down = _cli("run", "-f", str(path), "--suggestion-url", url)
    assert down.exit_code == 1, down.output
    [line] = down.stderr.strip().splitlines()
    assert line.startswith(f"error: suggestion service unreachable at {url}"), line
    assert line.endswith("; nothing was run or stored"), line
    assert _cli("get", "remote-suggest").exit_code == 1  # not found
    with running(
        hyperflow_cmd("suggestion", "serve", "--port", str(port)),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as server:
        wait_http_ok(f"{url}/api/v1/suggestion/healthz", timeout=30, proc=server)
        done = _cli("run", "-f", str(path), "--json", "--no-mlflow", "--suggestion-url", url)
    assert done.exit_code == 0, done.output
    status = json.loads(done.stdout)["status"]
    assert status["trials"] == 3 == status["trialsSucceeded"]
    # Finished: the same command shows the stored result; the service, gone, is not asked.
    shown = _cli("run", "-f", str(path), "--no-mlflow", "--suggestion-url", url)
    assert shown.exit_code == 0 and "had already finished" in shown.stderr, shown.output


def test_failed_trials_show_why_in_the_tables(tmp_path: Path) -> None:
    spec = _spec("cli-failing", max_trials=2)
    spec["spec"]["maxFailedTrialCount"] = 1
    # (A command that does not exist at all fails the experiment at start instead.)
    spec["spec"]["trialTemplate"]["command"] = [
        "python",
        "-c",
        "import sys; sys.exit('no data for ' + sys.argv[1][:1])",
        "${trialParameters.x}",
    ]
    path = _write(tmp_path, spec)
    run = _run("run", "--no-mlflow", "-f", str(path))
    shown = run.stdout + run.stderr  # the live view and table go to the terminal (stderr)
    assert run.returncode == 1, shown
    assert "reason" in shown and "exit code 1: no data for" in shown, shown
    listed = _cli("trials", "cli-failing")
    assert "exit code 1: no data for" in listed.output, listed.output
    # A table of trials that all succeeded has no reason column.
    ok = _write(tmp_path, _spec("cli-fine", max_trials=2), "fine.yaml")
    assert _run("run", "--no-mlflow", "-f", str(ok)).returncode == 0
    assert "reason" not in _cli("trials", "cli-fine").output


def test_raising_max_trial_count_continues_a_finished_experiment(tmp_path: Path) -> None:
    """Katib's way to resume: edit maxTrialCount (or the other two counts) and apply again."""
    spec = _spec("cli-more", max_trials=2)
    path = _write(tmp_path, spec)
    assert _run("run", "--no-mlflow", "-f", str(path)).returncode == 0
    spec["spec"]["maxTrialCount"] = 4
    path.write_text(yaml.safe_dump(spec))
    again = _run("run", "--no-mlflow", "--json", "-f", str(path))
    assert again.returncode == 0, again.stderr[-2000:]
    assert "already finished" not in again.stderr
    status = json.loads(again.stdout)["status"]
    assert (status["trials"], status["trialsSucceeded"]) == (4, 4)
    conditions = {c["type"]: c for c in status["conditions"]}  # one per type, as Katib
    assert conditions["Restarting"]["reason"] == "ExperimentRestarting"
    assert conditions["Restarting"]["status"] == "False"
    assert conditions["Succeeded"]["status"] == "True"
    assert (
        conditions["Succeeded"]["lastTransitionTime"]
        >= conditions["Restarting"]["lastTransitionTime"]
    )
    # A restart removes Succeeded, as Katib's does: the one reached again comes last.
    assert [c["type"] for c in status["conditions"]][-2:] == ["Restarting", "Succeeded"]
    assert json.loads(again.stdout)["spec"]["maxTrialCount"] == 4

    # maxTrialCount at or below the trials it has: one line, exit 1.
    spec["spec"]["maxTrialCount"] = 3
    path.write_text(yaml.safe_dump(spec))
    lower = _run("run", "--no-mlflow", "-f", str(path))
    assert lower.returncode == 1
    assert lower.stderr.strip() == (
        "error: experiment default/cli-more: spec.maxTrialCount must be greater than the 4 "
        "trials it already has; got 3"
    )
    # Any other field: Katib forbids the edit, naming the fields.
    spec["spec"]["maxTrialCount"] = 6
    spec["spec"]["algorithm"]["algorithmName"] = "tpe"
    path.write_text(yaml.safe_dump(spec))
    other = _run("run", "--no-mlflow", "-f", str(path))
    assert other.returncode == 1
    assert (
        "already exists with a different spec (spec.algorithm changed; only "
        "spec.parallelTrialCount, spec.maxTrialCount, spec.maxFailedTrialCount may change)"
    ) in other.stderr
    assert "Traceback" not in other.stderr


def test_an_experiment_that_reached_its_goal_is_not_continued(tmp_path: Path) -> None:
    spec = _spec("cli-goal", max_trials=2)
    spec["spec"]["objective"]["goal"] = 10.0  # every trial reaches it
    path = _write(tmp_path, spec)
    assert _run("run", "--no-mlflow", "-f", str(path)).returncode == 0
    spec["spec"]["maxTrialCount"] = 5
    path.write_text(yaml.safe_dump(spec))
    again = _run("run", "--no-mlflow", "-f", str(path))
    assert again.returncode == 1
    assert (
        "has finished (Succeeded: ExperimentGoalReached); only an experiment that ended by "
        "reaching maxTrialCount can be continued"
    ) in again.stderr


def test_list_never_cuts_a_name() -> None:
    # Piped (80 columns here), it printed "a-bayesianoptimiz…": not a name get can take.
    from tuner.sdk import search, tune

    name = "a-rather-long-experiment-name-for-bayesianoptimization-trials"
    tune(
        name,
        lambda p: {"loss": p["x"]},
        {"x": search.double(min=0, max=1)},
        objective_metric_name="loss",
        objective_type="minimize",
        max_trial_count=1,
        track=False,
    )
    assert name in _cli("list").output.split()
