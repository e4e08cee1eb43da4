"""One test case, every backend: the TrialBackend contract (tuner/backends/base.py) run on
each registered backend with real processes (and a real local Ray for ``ray``)."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

import pytest

from tests.tuner.backends.conftest import HARNESSES, Harness
from tests.tuner.backends.trials import WAIT_FOR, collect_until, make_run, script, wait_exit
from tests.util import pid_running, wait_until
from tuner.backends import BACKENDS, BackendError, TrialExit, TrialRun
from tuner.metrics.push import PushReceiver
from tuner.spec.models import (
    CollectorSpec,
    FileFormat,
    FileSystemPath,
    MetricsCollectorKind,
    MetricsCollectorSpec,
    SourceSpec,
)
from tuner.types import Observation


def test_every_registered_backend_is_in_the_suite() -> None:
    assert set(HARNESSES) == set(BACKENDS)


def test_launch_streams_output_and_metrics_while_running(harness: Harness, tmp_path: Path) -> None:
    backend = harness.make()
    go = tmp_path / "go"
    trial = script(
        tmp_path,
        "trial.py",
        WAIT_FOR
        + """
import json
print(json.dumps({k: v for k, v in os.environ.items() if k.startswith(("HYPERFLOW_", "MY_"))}))
print("argv", json.dumps(sys.argv[2:]))
print("epoch=0 loss=1.5 accuracy=0.2", flush=True)
wait_for(sys.argv[1])
sys.stdout.write("2024-05-01T12:00:00Z loss=0.5")  # no newline: counted at the exit
""",
    )
    argv = ["a b", "$HOME", "'q'", ""]
    run = make_run(
        tmp_path,
        "t1",
        ["python", trial, str(go), *argv],
        env={"MY_VAR": "x y"},
        metric_names=("loss", "accuracy"),
    )
    backend.launch(run)
    seen = collect_until(backend, "t1", 2)
    assert backend.poll("t1") is None  # still running: the metrics streamed
    assert [(o.name, o.value, o.step) for o in seen] == [("loss", 1.5, 0), ("accuracy", 0.2, 0)]
    go.touch()
    assert wait_exit(backend, "t1") == TrialExit(True, 0, "exit code 0")
    (last,) = backend.collect("t1")
    assert (last.name, last.value, last.step, last.timestamp) == ("loss", 0.5, 1, 1714564800.0)
    assert backend.collect("t1") == []
    assert backend.poll("t1") == TrialExit(True, 0, "exit code 0")  # the same, until release
    log = backend.log_path("t1").read_text().splitlines()
    env = json.loads(log[0])
    assert env["MY_VAR"] == "x y"
    assert env["HYPERFLOW_TRIAL_NAME"] == "t1"
    assert env["HYPERFLOW_EXPERIMENT_NAME"] == "exp"
    if harness.local_paths:
        assert env["HYPERFLOW_ARTIFACTS_DIR"] == str(Path(env["HYPERFLOW_TRIAL_DIR"]) / "artifacts")
    else:  # the controller's folders mean nothing where the trial runs
        assert "HYPERFLOW_TRIAL_DIR" not in env and "HYPERFLOW_ARTIFACTS_DIR" not in env
    assert json.loads(log[1].removeprefix("argv ")) == argv
    assert log[-1] == "2024-05-01T12:00:00Z loss=0.5"
    assert backend.log_path("t1").parent == run.trial_dir  # on the controller's disk


def test_exit_codes_and_command_not_found(harness: Harness, tmp_path: Path) -> None:
    backend = harness.make()
    bad = (
        "import sys; print('loss=2'); print('ValueError: bad things', file=sys.stderr); sys.exit(3)"
    )
    backend.launch(make_run(tmp_path, "bad", ["python", "-c", bad]))
    backend.launch(make_run(tmp_path, "ok", ["python", "-c", "print('loss=0.25')"]))
    backend.launch(make_run(tmp_path, "nf", ["no-such-command-xyz", "--flag"]))
    assert wait_exit(backend, "bad") == TrialExit(False, 3, "exit code 3: ValueError: bad things")
    assert [o.value for o in backend.collect("bad")] == [2.0]
    assert wait_exit(backend, "ok") == TrialExit(True, 0, "exit code 0")
    assert [o.value for o in backend.collect("ok")] == [0.25]
    code, message = harness.not_found("no-such-command-xyz")
    assert wait_exit(backend, "nf") == TrialExit(False, code, message)
    if code is None:  # found out here: the reason is in the trial's log too
        assert "command not found" in backend.log_path("nf").read_text()
    with pytest.raises(KeyError):
        backend.poll("never-launched")


def test_kill_stops_the_trial_and_its_process(harness: Harness, tmp_path: Path) -> None:
    backend = harness.make()
    pid_file = tmp_path / "pid"
    trial = script(
        tmp_path,
        "sleeper.py",
        """
import os, sys, time
open(sys.argv[1] + ".tmp", "w").write(str(os.getpid()))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
print("loss=1", flush=True)
time.sleep(120)
""",
    )
    backend.launch(make_run(tmp_path, "k", ["python", trial, str(pid_file)]))
    wait_until(pid_file.exists, 180)
    pid = int(pid_file.read_text())
    assert collect_until(backend, "k", 1)[0].value == 1.0
    backend.kill("k")
    exit_ = wait_exit(backend, "k")
    assert (exit_.succeeded, exit_.message) == (False, "killed")
    wait_until(lambda: not pid_running(pid), 60)
    backend.kill("k")  # killing a finished trial is a no-op
    backend.kill("unknown")
    assert backend.poll("k") == exit_


def test_release_forgets_and_stops_what_still_runs(harness: Harness, tmp_path: Path) -> None:
    backend = harness.make()
    backend.launch(make_run(tmp_path, "done", ["python", "-c", "print('loss=1')"]))
    assert wait_exit(backend, "done").succeeded
    backend.release("done")
    with pytest.raises(KeyError):
        backend.poll("done")
    backend.release("done")  # twice: a no-op
    pid_file = tmp_path / "pid"
    trial = script(
        tmp_path,
        "sleeper.py",
        """
import os, sys, time
open(sys.argv[1] + ".tmp", "w").write(str(os.getpid()))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(120)
""",
    )
    backend.launch(make_run(tmp_path, "running", ["python", trial, str(pid_file)]))
    wait_until(pid_file.exists, 180)
    pid = int(pid_file.read_text())
    backend.release("running")
    wait_until(lambda: not pid_running(pid), 60)
    # The name is free again.
    backend.launch(make_run(tmp_path, "running", ["python", "-c", "print('loss=3')"]))
    assert wait_exit(backend, "running").succeeded
    assert [o.value for o in backend.collect("running")] == [3.0]


def test_adopt_after_a_controller_restart(harness: Harness, tmp_path: Path) -> None:
    first = harness.make()
    go = tmp_path / "go"
    trial = script(
        tmp_path,
        "trial.py",
        WAIT_FOR
        + """
print("loss=1", flush=True)
wait_for(sys.argv[1])
print("loss=2")
""",
    )
    run = make_run(tmp_path, "a", ["python", trial, str(go)])
    first.launch(run)
    assert [o.value for o in collect_until(first, "a", 1)] == [1.0]  # stored by the first
    # The first controller is gone (never closed: its trials must live on).
    second = harness.make()
    assert second.may_have_started(run) in (True, False)  # answers without failing
    second.adopt(run, skip_observations=1)
    go.touch()
    assert wait_exit(second, "a") == TrialExit(True, 0, "exit code 0")
    assert [o.value for o in second.collect("a")] == [2.0]  # only what was not stored
    assert second.log_path("a").read_text().splitlines() == ["loss=1", "loss=2"]
    # A trial nobody launched cannot be re-attached: failed, saying why.
    never = make_run(tmp_path, "never", ["python", "-c", "print('loss=1')"])
    assert second.may_have_started(never) is False
    second.adopt(never, skip_observations=0)
    lost = wait_exit(second, "never")
    assert lost.succeeded is False and lost.message.startswith("lost")


def _push_receiver(received: list[tuple[str, list[Observation], str | None]]) -> PushReceiver:
    lock = threading.Lock()

    def on_observations(trial: str, observations: list[Observation], key: str | None) -> bool:
        with lock:
            if any(k == key for _, _, k in received):
                return False
            received.append((trial, observations, key))
        return True

    return PushReceiver(on_observations)


@pytest.mark.parametrize("kind", ["StdOut", "File-TEXT", "File-JSON", "Push", "None"])
def test_metrics_through_every_collector(harness: Harness, tmp_path: Path, kind: str) -> None:
    backend = harness.make()
    code = {
        "StdOut": "print('loss=0.5'); print('loss=0.25')",
        "File-TEXT": "open('m.txt', 'w').write('loss=0.5\\nloss=0.25\\n'); print('loss=9')",
        "File-JSON": (
            "import json; f = open('m.json', 'w'); "
            "[f.write(json.dumps({'loss': v, 'step': s}) + '\\n') for s, v in ((4, 0.5), (5, 0.25))]"
        ),
        "Push": (
            "from tuner.report import report; report(loss=0.5, step=0); report(loss=0.25, step=1)"
        ),
        "None": "print('loss=0.5')",
    }[kind]
    env: dict[str, str] = {}
    received: list[tuple[str, list[Observation], str | None]] = []
    receiver = _push_receiver(received)
    if kind == "File-TEXT":
        collector = MetricsCollectorSpec(
            collector=CollectorSpec(kind=MetricsCollectorKind.FILE),
            source=SourceSpec(file_system_path=FileSystemPath(path="m.txt")),
        )
        code = f"import os; os.chdir(os.environ['HYPERFLOW_TRIAL_DIR']); {code}"
    elif kind == "File-JSON":
        collector = MetricsCollectorSpec(
            collector=CollectorSpec(kind=MetricsCollectorKind.FILE),
            source=SourceSpec(
                file_system_path=FileSystemPath(
                    path="$HYPERFLOW_TRIAL_DIR/m.json", format=FileFormat.JSON
                )
            ),
        )
        code = f"import os; os.chdir(os.environ['HYPERFLOW_TRIAL_DIR']); {code}"
    elif kind == "Push":
        collector = MetricsCollectorSpec(collector=CollectorSpec(kind=MetricsCollectorKind.PUSH))
        # As a remote trial reaches the control plane's API route: a URL, no shared file.
        url = receiver.start()
        env = {"HYPERFLOW_PUSH_URL": f"{url}/v1", "HYPERFLOW_PUSH_TOKEN": receiver.register("p")}
    elif kind == "None":
        collector = MetricsCollectorSpec(collector=CollectorSpec(kind=MetricsCollectorKind.NONE))
    else:
        collector = MetricsCollectorSpec()
    try:
        name = "p"
        backend.launch(
            make_run(tmp_path, name, ["python", "-c", code], env=env, collector=collector)
        )
        exit_ = wait_exit(backend, name)
        if kind.startswith("File") and not harness.file_collector:
            # Refused at launch, saying why and what to use instead; nothing ran.
            assert not exit_.succeeded
            assert "reads files inside the trial's pod" in exit_.message
            assert "use StdOut or Push" in exit_.message
            assert backend.collect(name) == []
            return
        assert exit_.succeeded, (exit_, backend.log_path(name).read_text())
        collected = backend.collect(name)
    finally:
        receiver.stop()
    pushed = [o for _, observations, _ in received for o in observations]
    values = {
        "StdOut": ([0.5, 0.25], []),
        "File-TEXT": ([0.5, 0.25], []),
        "File-JSON": ([0.5, 0.25], []),
        "Push": ([], [0.5, 0.25]),
        "None": ([], []),
    }[kind]
    assert ([o.value for o in collected], [o.value for o in pushed]) == values
    if kind == "File-JSON":
        assert [o.step for o in collected] == [4, 5]
    if kind == "Push":
        assert [o.step for o in pushed] == [0, 1]
        assert len({key for _, _, key in received}) == 2  # one idempotency key per call


def objective(parameters: dict[str, float]) -> dict[str, float]:
    import time

    from tuner.report import report

    x = parameters["x"]
    if x < 0:
        raise ValueError("x must not be negative")
    if x > 100:
        time.sleep(120)
    report(step=0, loss=x + 1)
    print(f"loss={x + 0.5}", flush=True)
    return {"loss": x, "other": 7.0}


def test_function_trials(harness: Harness, tmp_path: Path) -> None:
    if not harness.functions:
        with pytest.raises(BackendError, match=r"function trials \(tune\(\)\) run on"):
            harness.make(function=objective, workers=2)
        return
    backend = harness.make(function=objective, workers=2)
    assert backend.runs_functions
    runs = {
        name: TrialRun(
            experiment_name="exp",
            trial_name=name,
            command=None,
            env={},
            cwd=tmp_path,
            trial_dir=tmp_path / "trials" / name,
            assignments={"x": x},
            metric_names=["loss"],
            experiment_uid=f"conformance-fn-{os.getpid()}-{tmp_path.name}",
        )
        for name, x in (("good", 2.0), ("raises", -1.0), ("slow", 1000.0), ("queued", 3.0))
    }
    for run in runs.values():
        backend.launch(run)
    assert wait_exit(backend, "good") == TrialExit(True, 0, "completed")
    assert [(o.name, o.value) for o in backend.collect("good")] == [
        ("loss", 3.0),  # report()
        ("loss", 2.5),  # printed (StdOut)
        ("loss", 2.0),  # returned
    ]
    exit_ = wait_exit(backend, "raises")
    assert (exit_.succeeded, exit_.message) == (False, "ValueError: x must not be negative")
    assert "Traceback" in backend.log_path("raises").read_text()
    assert wait_exit(backend, "queued").succeeded  # ran once a worker was free
    assert backend.poll("slow") is None
    backend.kill("slow")
    assert wait_exit(backend, "slow").message == "killed"
    # Adopting is never possible: the pool died with the controller process.
    assert backend.reattaches is False
    sys.stdout.flush()
