"""No failure reported as success: experiments whose trials all fail end Failed, saying why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.e2e.test_experiments import _categorical, _experiment, _programs, _run, _script
from tests.util import run_hyperflow
from tuner.sdk import search, tune


def test_no_trial_succeeded_fails_the_experiment_and_run_exits_1(tmp_path: Path) -> None:
    _script(
        tmp_path, "train.py", "import sys\nprint('reading data', file=sys.stderr)\nsys.exit(2)\n"
    )
    data = _experiment(
        "all-fail",
        ["python", "train.py", "${trialParameters.x}"],
        [_categorical("x", ["a", "b", "c", "d", "e", "f"])],
        maxTrialCount=6,
    )
    path = tmp_path / "experiment.yaml"
    path.write_text(json.dumps(data))
    done = run_hyperflow("experiment", "run", "-f", str(path), "--no-mlflow")
    assert done.returncode == 1, done.stderr[-3000:]
    assert "all-fail: Failed (ExperimentFailed)" in done.stderr, done.stderr[-3000:]
    assert (
        "Experiment has failed because no trial succeeded: 6 Failed "
        "(last: exit code 2: reading data)"
    ) in done.stderr
    assert "trials: 6 Failed" in done.stderr


def test_a_metric_name_typo_is_named(tmp_path: Path) -> None:
    _script(tmp_path, "train.py", "print('epoch=1 Loss=0.25')\n")
    data = _experiment(
        "typo",
        ["python", "train.py", "${trialParameters.x}"],
        [_categorical("x", ["a", "b", "c"])],
        maxTrialCount=3,
    )
    record, trials = _run(data, tmp_path)
    assert record.phase.value == "Failed" and record.reason == "ExperimentFailed"
    assert record.message == (
        "Experiment has failed because no trial succeeded: 3 MetricsUnavailable "
        "(trials reported 'Loss', 'epoch'; objectiveMetricName is 'loss')"
    )
    assert {t.phase.value for t in trials} == {"MetricsUnavailable"}
    assert trials[0].message == (
        "Metrics are not available: no 'loss' was reported (it reported 'Loss', 'epoch')"
    )


def test_max_failed_trial_count_counts_metrics_unavailable_and_is_reached_at_the_max(
    tmp_path: Path,
) -> None:
    _script(tmp_path, "crash", "#!/bin/sh\necho out of cheese\nexit 3\n")
    _script(tmp_path, "silent", "#!/bin/sh\necho accuracy=0.9\n")
    _script(tmp_path, "good", "#!/bin/sh\necho loss=0.5\n")
    data = _programs(
        "max-failed",
        ["./crash", "./silent", "./good"],
        parallelTrialCount=1,
        maxTrialCount=3,
        maxFailedTrialCount=2,
    )
    data["spec"]["algorithm"] = {"algorithmName": "grid"}
    record, trials = _run(data, tmp_path)
    assert record.phase.value == "Failed", record.message
    assert record.reason == "ExperimentFailed"
    assert record.message == (
        "Experiment has failed because max failed count has reached: "
        "1 Failed (last: exit code 3: out of cheese); 1 MetricsUnavailable (trials reported "
        "'accuracy'; objectiveMetricName is 'loss')"
    )
    assert [t.phase.value for t in trials] == ["Failed", "MetricsUnavailable"]


def test_the_max_failed_message_does_not_count_the_trials_it_killed(tmp_path: Path) -> None:
    # It said "1 Failed (...); 1 Killed": the Killed one was killed because of the failure.
    _script(tmp_path, "crash", "#!/bin/sh\necho out of cheese >&2\nexit 3\n")
    _script(tmp_path, "slow", "#!/bin/sh\nsleep 30\necho loss=0.5\n")
    data = _programs(
        "max-failed-killed",
        ["./slow", "./crash"],
        parallelTrialCount=2,
        maxTrialCount=2,
        maxFailedTrialCount=1,
    )
    data["spec"]["algorithm"] = {"algorithmName": "grid"}
    record, trials = _run(data, tmp_path)
    assert record.message == (
        "Experiment has failed because max failed count has reached: "
        "1 Failed (last: exit code 3: out of cheese)"
    )
    assert sorted(t.phase.value for t in trials) == ["Failed", "Killed"]


def test_a_metrics_file_never_written_is_named(tmp_path: Path) -> None:
    # The trial wrote m.log into its working folder (the experiment's), not its trial
    # folder, where a relative path points: "no 'loss' was reported" said nothing of it.
    _script(tmp_path, "train.py", "open('m.log', 'w').write('loss=0.5\\n')\n")
    data = _experiment(
        "file-missing",
        ["python", "train.py", "${trialParameters.x}"],
        [_categorical("x", ["a"])],
        maxTrialCount=1,
        parallelTrialCount=1,
        metricsCollectorSpec={
            "source": {"fileSystemPath": {"path": "m.log", "kind": "File"}},
            "collector": {"kind": "File"},
        },
    )
    _, [trial] = _run(data, tmp_path)
    assert trial.phase.value == "MetricsUnavailable"
    expected = Path(trial.trial_dir) / "m.log"
    assert trial.message == (
        f"Metrics are not available: no 'loss' was reported (its metrics file {expected} "
        "does not exist)"
    )


def test_sdk_functions_returning_other_names_end_failed_with_the_names(tmp_path: Path) -> None:
    def objective(parameters: dict[str, Any]) -> dict[str, float]:
        return {"Loss": (parameters["x"] - 0.5) ** 2}

    result = tune(
        name="sdk-typo",
        objective=objective,
        parameters={"x": search.double(min=0, max=1)},
        objective_metric_name="loss",
        objective_type="minimize",
        max_trial_count=2,
        parallel_trial_count=1,
        track=False,
    )
    assert not result.succeeded
    assert result.experiment.reason == "ExperimentFailed"
    assert "trials reported 'Loss'; objectiveMetricName is 'loss'" in result.experiment.message
