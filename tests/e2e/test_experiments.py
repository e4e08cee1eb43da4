"""Experiments end to end: real trial processes, the real store, the real collectors.

Each test writes tiny trial scripts into ``tmp_path`` and runs a Katib Experiment through
:func:`tuner.runner.run_experiment` (what ``hyperflow experiment run`` calls), then reads
the outcome back from the SQLite store.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.util import REPO, pid_running, run_hyperflow, wait_until
from tuner.runner import run_experiment
from tuner.settings import TunerSettings
from tuner.spec import parse_experiment
from tuner.store import ExperimentRecord, Store, TrialRecord

EXAMPLES = REPO / "examples" / "experiments"


def _experiment(
    name: str,
    command: list[str],
    parameters: list[dict[str, Any]],
    *,
    algorithm: str = "grid",
    metric: str = "loss",
    objective_type: str = "minimize",
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "objective": {"type": objective_type, "objectiveMetricName": metric},
        "algorithm": {"algorithmName": algorithm},
        "parallelTrialCount": 2,
        "parameters": parameters,
        "trialTemplate": {
            "trialParameters": [{"name": p["name"], "reference": p["name"]} for p in parameters],
            "command": command,
        },
    }
    body.update(spec)
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": body,
    }


def _categorical(name: str, values: list[str]) -> dict[str, Any]:
    return {"name": name, "parameterType": "categorical", "feasibleSpace": {"list": values}}


def _programs(name: str, progs: list[str], **spec: Any) -> dict[str, Any]:
    """An experiment whose trials each run one of ``progs`` (grid: in that order)."""
    return _experiment(name, ["${trialParameters.prog}"], [_categorical("prog", progs)], **spec)


def _script(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip())
    path.chmod(0o755)
    return path


def _run(
    data: dict[str, Any], base_dir: Path, **kw: Any
) -> tuple[ExperimentRecord, list[TrialRecord]]:
    experiment = parse_experiment(data, base_dir=base_dir)
    outcome = run_experiment(experiment, track=kw.pop("track", False), **kw)
    return outcome.record, _trials(outcome.record.uid)


def _trials(uid: str) -> list[TrialRecord]:
    store = Store(TunerSettings().store_url)
    try:
        return store.trials(uid)
    finally:
        store.close()


def _observations(trial: TrialRecord) -> list[Any]:
    store = Store(TunerSettings().store_url)
    try:
        return store.observations(trial.id)
    finally:
        store.close()


def _by(trials: list[TrialRecord], param: str) -> dict[str, TrialRecord]:
    return {str(t.assignments[param]): t for t in trials}


def _phases(trials: list[TrialRecord]) -> list[tuple[str, dict[str, Any], str, str]]:
    return [(t.name, t.assignments, t.phase.value, t.message) for t in trials]


# -- 1. failures -------------------------------------------------------------------


def test_failed_trials_are_recorded_and_the_experiment_goes_on(tmp_path: Path) -> None:
    _script(tmp_path, "good", "#!/bin/sh\necho loss=0.25\n")
    _script(tmp_path, "good2", "#!/bin/sh\necho loss=0.5\n")
    _script(tmp_path, "crash", "#!/bin/sh\necho 'boom: out of cheese' >&2\nexit 3\n")
    _script(tmp_path, "silent", "#!/bin/sh\necho accuracy=0.9\n")
    progs = ["./good", "./crash", "./silent", "./nope", "./good2"]
    data = _programs("failures", progs, maxFailedTrialCount=5)
    record, trials = _run(data, tmp_path)
    assert record.phase.value == "Succeeded", (record.reason, record.message)
    assert record.reason == "ExperimentSuggestionEndReached"
    by = _by(trials, "prog")
    assert sorted(by) == sorted(progs), _phases(trials)
    assert by["./good"].phase.value == "Succeeded" and by["./good"].objective_value == 0.25
    assert by["./good2"].phase.value == "Succeeded"
    nope = by["./nope"]
    assert nope.phase.value == "Failed" and "command not found" in nope.message, nope.message
    crash = by["./crash"]
    assert crash.phase.value == "Failed" and crash.exit_code == 3
    assert "exit code 3" in crash.message and "out of cheese" in crash.message, crash.message
    silent = by["./silent"]
    assert silent.phase.value == "MetricsUnavailable", silent.message
    assert "loss" in silent.message


def test_too_many_failures_fail_the_experiment_and_run_exits_1(tmp_path: Path) -> None:
    _script(tmp_path, "crash", "#!/bin/sh\nexit 2\n")
    data = _experiment(
        "too-many-failures",
        ["./crash", "${trialParameters.x}"],
        [_categorical("x", ["a", "b", "c", "d", "e", "f"])],
        parallelTrialCount=1,
        maxFailedTrialCount=1,
    )
    path = tmp_path / "experiment.yaml"
    path.write_text(json.dumps(data))
    done = run_hyperflow("experiment", "run", "-f", str(path), "--json", "--no-mlflow")
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    status = json.loads(done.stdout)["status"]
    [failed] = [c for c in status["conditions"] if c["type"] == "Failed"]
    # Katib's reason and message (experiment status util); the trials' story after it.
    assert failed["status"] == "True" and failed["reason"] == "ExperimentFailed"
    assert failed["message"].startswith(
        "Experiment has failed because max failed count has reached: 1 Failed (last: exit code 2"
    ), failed["message"]
    # Katib: the experiment fails as soon as failures *reach* maxFailedTrialCount.
    assert status["trialsFailed"] == 1 and status["trials"] == 1


# -- 2. goal ----------------------------------------------------------------------


def test_goal_reached_kills_the_running_trials(tmp_path: Path) -> None:
    _script(tmp_path, "fast", "#!/bin/sh\necho loss=0.01\n")
    # The slow ones would run for a minute; their shell waits on a child sleep.
    _script(tmp_path, "slow", "#!/bin/sh\necho loss=5\nsleep 60\necho loss=4\n")
    _script(tmp_path, "slow2", "#!/bin/sh\nsleep 60\n")
    data = _programs("goal", ["./slow", "./slow2", "./fast"], parallelTrialCount=3, maxTrialCount=3)
    data["spec"]["objective"]["goal"] = 0.1
    record, trials = _run(data, tmp_path)
    assert record.phase.value == "Succeeded"
    assert record.reason == "ExperimentGoalReached", record.message
    by = _by(trials, "prog")
    assert by["./fast"].phase.value == "Succeeded"
    for slow in ("./slow", "./slow2"):
        assert by[slow].phase.value == "Killed", _phases(trials)
        pid = int(Path(by[slow].trial_dir, "pid").read_text().split()[0])
        assert not pid_running(pid), f"{slow} (pid {pid}) outlived the experiment"
    assert len(trials) == 3


# -- 3. grid -----------------------------------------------------------------------


GRID_PARAMS = [
    {"name": "a", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "3"}},
    _categorical("b", ["p", "q"]),
]


def test_grid_runs_each_combination_once(tmp_path: Path) -> None:
    _script(tmp_path, "t", '#!/bin/sh\necho "loss=$1"\n')
    data = _experiment(
        "grid",
        ["./t", "${trialParameters.a}", "${trialParameters.b}"],
        GRID_PARAMS,
        maxTrialCount=6,
    )
    record, trials = _run(data, tmp_path)
    assert record.phase.value == "Succeeded" and record.reason == "ExperimentMaxTrialsReached"
    combos = [(str(t.assignments["a"]), str(t.assignments["b"])) for t in trials]
    assert sorted(combos) == sorted((str(a), b) for a in (1, 2, 3) for b in "pq"), combos
    assert all(t.phase.value == "Succeeded" for t in trials)


def test_grid_without_max_trials_ends_when_exhausted(tmp_path: Path) -> None:
    _script(tmp_path, "t", '#!/bin/sh\necho "loss=$1"\n')
    data = _experiment(
        "grid-exhausted", ["./t", "${trialParameters.a}", "${trialParameters.b}"], GRID_PARAMS
    )
    record, trials = _run(data, tmp_path)
    assert record.phase.value == "Succeeded"
    assert record.reason == "ExperimentSuggestionEndReached", record.message
    combos = {(str(t.assignments["a"]), t.assignments["b"]) for t in trials}
    assert len(trials) == 6 == len(combos)


_TIMED_TRIAL = """
import os, sys, time
def mark(what):
    line = f"{what} {os.environ['HYPERFLOW_TRIAL_NAME']} {time.monotonic_ns()}\\n"
    fd = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, line.encode())
    os.close(fd)
mark("start")
time.sleep(float(sys.argv[1]) * 0.02)
print("loss=" + sys.argv[1])
mark("end")
"""


def _timed_experiment(folder: Path, name: str, trials: int) -> tuple[Path, dict[str, Any]]:
    """Random search of trials that sleep 0-20 ms and log their start and end times."""
    log = folder / "times.log"
    _script(folder, "t.py", _TIMED_TRIAL)
    data = _experiment(
        name,
        [sys.executable, "t.py", "${trialParameters.x}", str(log)],
        [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}],
        algorithm="random",
        maxTrialCount=trials,
    )
    return log, data


def _starts_and_most_at_once(log: Path) -> tuple[dict[str, int], int]:
    """How often each trial started, and the most that ran at the same moment."""
    starts: dict[str, int] = {}
    events = []
    for line in log.read_text().splitlines():
        what, name, at = line.split()
        if what == "start":
            starts[name] = starts.get(name, 0) + 1
        events.append((int(at), 1 if what == "start" else -1))
    running = most = 0
    for _, change in sorted(events, key=lambda e: (e[0], e[1])):  # ends first on a tie
        running += change
        most = max(most, running)
    return starts, most


def test_short_trials_start_one_after_another_never_more_than_parallel(tmp_path: Path) -> None:
    """Random search of short trials: the next trial is handed to the backend ahead
    (``launch_next``) and starts as a running one ends. Each starts once, and never more
    than parallelTrialCount run at once, by the trials' own clocks."""
    log, data = _timed_experiment(tmp_path, "short", 30)
    record, trials = _run(data, tmp_path)
    assert record.reason == "ExperimentMaxTrialsReached", record.message
    assert len(trials) == 30 and all(t.phase.value == "Succeeded" for t in trials)
    starts, most = _starts_and_most_at_once(log)
    assert starts == {t.name: 1 for t in trials}
    assert most == 2


def test_an_interrupt_withdraws_the_trial_handed_ahead_or_kills_it(tmp_path: Path) -> None:
    """Stopped mid-run: the trial on deck, handed to the backend, never starts (no row) or,
    if it had started, is Killed as the running ones are; no trial runs without a row."""
    import threading

    from tuner.controller import ExperimentController

    log, data = _timed_experiment(tmp_path, "stopped", 1000)
    controllers: list[ExperimentController] = []
    outcome: list[ExperimentRecord] = []
    thread = threading.Thread(
        target=lambda: outcome.extend(_run(data, tmp_path, on_controller=controllers.append)[:1])
    )
    thread.start()
    try:
        wait_until(lambda: log.exists() and log.read_text().count("end ") >= 12, timeout=60)
    finally:
        wait_until(lambda: bool(controllers), timeout=30)
        controllers[0].stop()
        thread.join(60)
    assert not thread.is_alive() and outcome
    trials = _trials(outcome[0].uid)
    assert {t.phase.value for t in trials} <= {"Succeeded", "Killed"}
    starts, most = _starts_and_most_at_once(log)
    assert set(starts) <= {t.name for t in trials}  # every trial that ran has its row
    assert all(count == 1 for count in starts.values()) and most <= 2
    started_dirs = {p.parent.name for p in tmp_path.glob("**/pid")}
    assert started_dirs and started_dirs <= {t.name for t in trials}


_INDEXED_TRIAL = """
import os, sys, time
folder, k = sys.argv[2], 1
while True:  # the trial's number, in start order
    try:
        os.close(os.open(os.path.join(folder, f"n-{k}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        break
    except FileExistsError:
        k += 1
def mark(what):
    fd = os.open(os.path.join(folder, "times.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, f"{what} {k} {time.monotonic_ns()}\\n".encode())
    os.close(fd)
mark("start")
time.sleep(3.0 if k in (13, 14) else 0.6 if k == 15 else 0.05)
print("loss=" + sys.argv[1])
mark("end")
"""


def test_a_lower_parallel_trial_count_takes_back_the_trial_handed_ahead(tmp_path: Path) -> None:
    """parallelTrialCount 3 lowered to 1 while trials 13-15 run and the next is handed to
    the reaper for their end: when 15 ends, nothing starts beside 13 and 14 (it did, and
    the controller then spun on the exit of a trial it had not launched)."""
    import resource
    import threading

    from tuner.controller import ExperimentController

    _script(tmp_path, "t.py", _INDEXED_TRIAL)
    data = _experiment(
        "lowered",
        [sys.executable, "t.py", "${trialParameters.x}", str(tmp_path)],
        [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}],
        algorithm="random",
        maxTrialCount=20,
        parallelTrialCount=3,
    )
    controllers: list[ExperimentController] = []
    thread = threading.Thread(target=lambda: _run(data, tmp_path, on_controller=controllers.append))
    thread.start()
    try:
        wait_until(lambda: (tmp_path / "n-15").exists(), timeout=60)
        wait_until(lambda: any(s.handed for s, _ in controllers[0]._deck.values()), timeout=10)
        controllers[0].set_trial_counts(
            max_trial_count=20, parallel_trial_count=1, max_failed_trial_count=None
        )
        lowered = time.monotonic_ns()
        before = resource.getrusage(resource.RUSAGE_SELF)
        time.sleep(2.0)  # 15 ends meanwhile; 13 and 14 run on
        after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        thread.join(120)
    assert not thread.is_alive()
    busy = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    assert busy < 1.0, f"the controller spun: {busy:.2f} s of CPU in 2 s"
    running: set[int] = set()
    for line in sorted(
        (tmp_path / "times.log").read_text().splitlines(), key=lambda entry: int(entry.split()[2])
    ):
        what, k, at = line.split()
        if what == "end":
            running.discard(int(k))
            continue
        if int(at) > lowered:
            assert not running, f"trial {k} started beside {sorted(running)} at parallel 1"
        running.add(int(k))


# -- 4. push -------------------------------------------------------------------------


def test_push_collector_stores_steps(tmp_path: Path) -> None:
    _script(
        tmp_path,
        "push.py",
        """
        import sys
        from tuner.report import report

        x = float(sys.argv[1])
        for i in range(4):
            report(loss=x / (i + 1), step=i)
        print("loss=12345")  # stdout is not the collector here
        """,
    )
    data = _experiment(
        "push",
        ["python", "push.py", "${trialParameters.x}"],
        [_categorical("x", ["1", "2"])],
        metricsCollectorSpec={"collector": {"kind": "Push"}},
    )
    record, trials = _run(data, tmp_path)
    assert record.phase.value == "Succeeded", record.message
    assert len(trials) == 2
    for t in trials:
        assert t.phase.value == "Succeeded", t.message
        obs = _observations(t)
        x = float(t.assignments["x"])
        assert [(o.step, o.value) for o in obs if o.name == "loss"] == [
            (i, x / (i + 1)) for i in range(4)
        ]
        assert t.objective_value == x / 4  # Katib's default strategy for minimize: min


# -- 5. file collector -------------------------------------------------------------


def test_file_collector_example_json(tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "hartmann_file.py", tmp_path)
    data = yaml.safe_load((EXAMPLES / "file-collector.yaml").read_text())
    # Two trials are both in bayesianoptimization's random phase: the example's algorithm
    # runs as written (no torch; its model is exercised in tests/tuner/test_bayesopt.py).
    data["spec"]["maxTrialCount"] = 2
    record, trials = _run(data, tmp_path)
    assert record.phase.value == "Succeeded", record.message
    assert len(trials) == 2 and all(t.phase.value == "Succeeded" for t in trials), _phases(trials)
    for t in trials:
        steps = [o.step for o in _observations(t) if o.name == "loss"]
        assert len(steps) >= 2 and steps == sorted(steps), steps


def test_file_collector_text_with_katib_filter(tmp_path: Path) -> None:
    _script(
        tmp_path,
        "train.py",
        """
        import os, sys
        lr = float(sys.argv[1])
        with open(os.path.join(os.environ["HYPERFLOW_TRIAL_DIR"], "train.log"), "w") as f:
            for epoch in range(3):
                f.write(f"epoch {epoch} done\\n")
                f.write("{metricName: accuracy, metricValue: %.4f}\\n" % (0.5 + lr * epoch))
                f.write("{metricName: loss, metricValue: %.4f}\\n" % (1.0 - lr * epoch))
        """,
    )
    data = _experiment(
        "file-text",
        ["python", "train.py", "${trialParameters.lr}"],
        [_categorical("lr", ["0.1", "0.2"])],
        metric="accuracy",
        objective_type="maximize",
        metricsCollectorSpec={
            "source": {
                "filter": {
                    "metricsFormat": ["{metricName: ([\\w|-]+), metricValue: ((-?\\d+)(\\.\\d+)?)}"]
                },
                "fileSystemPath": {"path": "train.log", "kind": "File"},
            },
            "collector": {"kind": "File"},
        },
    )
    data["spec"]["objective"]["additionalMetricNames"] = ["loss"]
    record, trials = _run(data, tmp_path)
    assert record.phase.value == "Succeeded", record.message
    by = _by(trials, "lr")
    assert set(by) == {"0.1", "0.2"}, _phases(trials)
    best = by["0.2"]
    assert best.phase.value == "Succeeded", best.message
    assert best.objective_value == 0.9  # max of 0.5, 0.7, 0.9
    assert best.metrics is not None and best.metrics["loss"]["latest"] == 0.6
    assert [o.value for o in _observations(best) if o.name == "accuracy"] == [0.5, 0.7, 0.9]


# -- 6. early stopping ---------------------------------------------------------------


def test_medianstop_early_stops_bad_trials(tmp_path: Path) -> None:
    _script(
        tmp_path,
        "steps.py",
        """
        import sys, time
        base = {"good": 0.1, "bad1": 5.0, "bad2": 6.0, "bad3": 7.0}[sys.argv[1]]
        for step in range(40 if sys.argv[1] != "good" else 3):
            print(f"loss={base + 0.001 * step}", flush=True)
            time.sleep(0.05 if sys.argv[1] == "good" else 0.25)
        """,
    )
    data = _experiment(
        "medianstop",
        ["python", "steps.py", "${trialParameters.q}"],
        [_categorical("q", ["good", "bad1", "bad2", "bad3"])],
        parallelTrialCount=1,
        earlyStopping={
            "algorithmName": "medianstop",
            "algorithmSettings": [
                {"name": "min_trials_required", "value": "1"},
                {"name": "start_step", "value": "2"},
            ],
        },
    )
    record, trials = _run(data, tmp_path)
    assert record.phase.value == "Succeeded", record.message
    by = _by(trials, "q")
    assert by["good"].phase.value == "Succeeded"
    stopped = [t for t in trials if t.phase.value == "EarlyStopped"]
    # Whatever the order, every bad trial after the good one is worse than the median.
    assert stopped, _phases(trials)
    assert all(t.assignments["q"].startswith("bad") for t in stopped)
    for t in stopped:
        assert "medianstop" in t.message
        # stopped long before its 40 steps
        assert len([o for o in _observations(t) if o.name == "loss"]) < 20
        pid = int(Path(t.trial_dir, "pid").read_text().split()[0])
        assert not pid_running(pid)


# -- 10. the demo experiment -------------------------------------------------------------


def test_sklearn_digits_example_logs_the_best_model(
    tmp_path: Path, mlflow_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow
    import numpy as np
    from sklearn.datasets import load_digits
    from typer.testing import CliRunner

    from hyperflow.cli import app
    from serving.runtimes import create_model
    from serving.spec import parse_inference_service

    shutil.copy(EXAMPLES / "train_digits.py", tmp_path)
    data = yaml.safe_load((EXAMPLES / "sklearn-digits.yaml").read_text())
    data["spec"]["maxTrialCount"] = data["spec"]["parallelTrialCount"] = 2
    record, trials = _run(data, tmp_path, track=True)
    assert record.phase.value == "Succeeded", record.message
    assert record.reason in ("ExperimentMaxTrialsReached", "ExperimentGoalReached")
    assert all(t.phase.value in ("Succeeded", "Killed") for t in trials), _phases(trials)
    succeeded = [t for t in trials if t.phase.value == "Succeeded"]
    best = max(succeeded, key=lambda t: t.objective_value)
    assert 0 < best.objective_value <= 1

    client = mlflow.MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name("sklearn-digits")
    [run] = client.search_runs(
        [exp.experiment_id], filter_string=f"attributes.run_name = '{best.name}'"
    )
    assert run.info.status == "FINISHED"
    assert run.data.metrics["accuracy"] == pytest.approx(best.objective_value)
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id, "model")]
    assert artifacts == ["model/model.joblib"], artifacts

    # Tune, then serve: with only HYPERFLOW_HOME set (no MLFLOW_TRACKING_URI), serving
    # finds the run in the store the tuner logged to.
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.chdir(tmp_path)
    # `experiment best` says where the best trial's model is, ready for a storageUri.
    shown = CliRunner().invoke(app, ["experiment", "best", "sklearn-digits"])
    assert shown.exit_code == 0, shown.output
    assert f"MLflow run: {run.info.run_id}" in shown.output, shown.output
    assert f"storageUri: runs:/{run.info.run_id}/model" in shown.output, shown.output
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "digits"},
        "spec": {
            "predictor": {
                "model": {
                    "modelFormat": {"name": "sklearn"},
                    "storageUri": f"runs:/{run.info.run_id}/model",
                }
            }
        },
    }
    model = create_model("digits", parse_inference_service(isvc).predictor, None)
    model.load()
    X, y = load_digits(return_X_y=True)
    predicted = np.asarray(model.predict((X[:50] / 16.0).tolist()))
    assert (predicted == y[:50]).mean() > 0.8
    assert not (tmp_path / "mlflow.db").exists()  # no stray store in the working directory

    # The README's snippet and `mlflow ui` line find this store from HYPERFLOW_HOME alone.
    readme = (REPO / "README.md").read_text()
    snippet = next(
        block
        for block in re.findall(r"```python\n(.*?)```", readme, re.S)
        if "best_run_id" in block
    )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    printed = subprocess.run(
        [sys.executable, "-c", snippet], env=env, capture_output=True, text=True, timeout=120
    )
    assert printed.returncode == 0, printed.stderr[-3000:]
    assert printed.stdout.strip() == f"runs:/{run.info.run_id}/model"
    [ui] = re.findall(r"^mlflow ui --backend-store-uri (.*)$", readme, re.M)
    uri = subprocess.run(
        ["sh", "-c", f"echo {ui}"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert uri == f"sqlite:///{os.environ['HYPERFLOW_HOME']}/mlflow.db"


def test_a_trainjob_trial_spec_runs_its_trainers_command(tmp_path: Path) -> None:
    _script(tmp_path, "train.py", "import sys\nprint('loss=' + sys.argv[1].split('=')[1])\n")
    data = _experiment(
        "trainjob",
        ["unused"],
        [_categorical("x", ["0.5", "0.25"])],
        maxTrialCount=2,
    )
    template = data["spec"]["trialTemplate"]
    del template["command"]
    template["primaryContainerName"] = "node"
    template["trialSpec"] = {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "spec": {
            "runtimeRef": {"name": "torch-distributed"},
            "trainer": {
                "image": "docker.io/me/train:1",
                "command": ["python", "train.py", "--x=${trialParameters.x}"],
            },
        },
    }
    record, trials = _run(data, tmp_path)
    assert record.phase.value == "Succeeded", record.message
    assert sorted(t.objective_value or 0 for t in trials) == [0.25, 0.5]
