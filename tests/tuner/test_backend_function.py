"""FunctionBackend against real worker processes."""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.tuner import test_backend_function_objectives as objectives
from tests.util import REPO, pid_running, wait_until
from tuner.backends.base import TrialExit, TrialRun
from tuner.backends.function import FunctionBackend
from tuner.spec.models import (
    CollectorSpec,
    FileSystemPath,
    MetricsCollectorKind,
    MetricsCollectorSpec,
    SourceSpec,
)
from tuner.types import Observation

pytestmark = pytest.mark.timeout(60)

Factory = Callable[..., FunctionBackend]


@pytest.fixture(params=["spawn", "fork"])
def make_backend(request: pytest.FixtureRequest) -> Iterator[Factory]:
    """Every backend test runs with spawned workers and with forked ones."""
    backends: list[FunctionBackend] = []

    def make(fn: Callable[..., Any], workers: int = 1, **kw: Any) -> FunctionBackend:
        backend = FunctionBackend(fn, workers, **{"start": request.param, **kw})
        backends.append(backend)
        return backend

    yield make
    for backend in backends:
        backend.close()


@pytest.fixture(scope="module")
def shared() -> Iterator[FunctionBackend]:
    """One warm worker for tests of single-trial behaviour (a worker boot costs 0.3-1 s)."""
    backend = FunctionBackend(objectives.dispatch, 1)
    yield backend
    backend.close()


def shared_run(objective: str, *args: Any, **kw: Any) -> TrialRun:
    """A trial of ``objectives.<objective>`` on the ``shared`` backend."""
    return trial_run(*args, **{**kw, "objective": objective})


def trial_run(
    tmp_path: Path,
    name: str,
    assignments: dict[str, float | int | str] | None = None,
    metric_names: tuple[str, ...] = ("loss",),
    env: dict[str, str] | None = None,
    kind: MetricsCollectorKind = MetricsCollectorKind.STDOUT,
    source: SourceSpec | None = None,
    objective: str | None = None,
) -> TrialRun:
    """A function trial; ``objective`` picks the function of the ``shared`` backend."""
    trial_dir = tmp_path / "trials" / name
    assignments = dict(assignments if assignments is not None else {"x": 1.5})
    if objective is not None:
        assignments["objective"] = objective
    return TrialRun(
        experiment_name="exp",
        trial_name=name,
        command=None,
        env=env or {},
        cwd=tmp_path,
        trial_dir=trial_dir,
        assignments=assignments,
        collector=MetricsCollectorSpec(source=source, collector=CollectorSpec(kind=kind)),
        metric_names=list(metric_names),
    )


def finish(backend: FunctionBackend, name: str, timeout: float = 20.0) -> TrialExit:
    """Wait for the trial's exit the way a controller does: ``wait`` then ``poll``."""
    deadline = time.monotonic() + timeout
    while (exit_ := backend.poll(name)) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"trial {name} did not finish within {timeout}s")
        backend.wait(0.5)
    return exit_


def values(observations: list[Observation]) -> list[tuple[str, float, int | None]]:
    return [(o.name, o.value, o.step) for o in observations]


def test_returned_dict_keeps_only_the_experiments_metrics(
    shared: FunctionBackend, tmp_path: Path
) -> None:
    backend = shared
    backend.launch(shared_run("doubled", tmp_path, "t1"))
    exit_ = finish(backend, "t1")
    assert exit_ == TrialExit(succeeded=True, exit_code=0, message="completed")
    assert values(backend.collect("t1")) == [("loss", 3.0, None)]
    assert backend.collect("t1") == []
    assert backend.log_path("t1") == tmp_path / "trials" / "t1" / "trial.log"


def test_keyword_convention_and_a_returned_number_is_the_objective(
    make_backend: Factory, tmp_path: Path
) -> None:
    backend = make_backend(objectives.added)
    backend.launch(trial_run(tmp_path, "t1", {"x": 1, "y": 2.5}, ("loss", "other")))
    assert finish(backend, "t1").succeeded
    assert values(backend.collect("t1")) == [("loss", 3.5, None)]


def test_calling_conventions(make_backend: Factory, tmp_path: Path) -> None:
    # One required parameter named like an experiment parameter: a keyword call.
    backend = make_backend(objectives.single_keyword)
    backend.launch(trial_run(tmp_path, "kw", {"x": 4.0}))
    assert finish(backend, "kw").succeeded
    assert values(backend.collect("kw")) == [("loss", 4.0, None)]
    # One required parameter with another name (and optional ones): the dict.
    backend = make_backend(objectives.config_dict)
    backend.launch(trial_run(tmp_path, "dict", {"x": 5.0}))
    assert finish(backend, "dict").succeeded
    assert values(backend.collect("dict")) == [("loss", 5.0, None)]


def test_printed_metrics_are_parsed_from_the_trial_log(
    shared: FunctionBackend, tmp_path: Path
) -> None:
    backend = shared
    backend.launch(shared_run("printer", tmp_path, "t1", {"x": 0.25}, ("loss", "accuracy")))
    assert finish(backend, "t1").succeeded
    assert values(backend.collect("t1")) == [("loss", 0.25, 0), ("accuracy", 0.75, 0)]
    assert "noise that is not a metric" in backend.log_path("t1").read_text()
    # With another collector kind the prints are only logged.
    backend.launch(
        shared_run(
            "printer", tmp_path, "t2", {"x": 0.25}, ("loss",), kind=MetricsCollectorKind.PUSH
        )
    )
    assert finish(backend, "t2").succeeded
    assert backend.collect("t2") == []


def test_file_collector_reads_the_file_the_trial_writes(
    shared: FunctionBackend, tmp_path: Path
) -> None:
    backend = shared
    source = SourceSpec(file_system_path=FileSystemPath(path="metrics.txt"))
    run = shared_run(
        "file_writer", tmp_path, "t1", {"x": 2.0}, kind=MetricsCollectorKind.FILE, source=source
    )
    backend.launch(run)
    assert finish(backend, "t1").succeeded
    assert values(backend.collect("t1")) == [("loss", 2.0, 0), ("loss", 0.5, 1)]


def test_printed_metrics_stream_while_the_trial_runs(
    shared: FunctionBackend, tmp_path: Path
) -> None:
    backend = shared
    run = shared_run("print_streamer", tmp_path, "t1")
    backend.launch(run)
    seen: list[Observation] = []

    def streamed() -> bool:
        backend.wait(0.5)
        seen.extend(backend.collect("t1"))
        return bool(seen)

    wait_until(streamed, timeout=20)
    assert backend.poll("t1") is None
    assert [(o.name, o.value) for o in seen] == [("loss", 3.0)]
    (run.trial_dir / "go").touch()
    assert finish(backend, "t1").succeeded
    assert [(o.name, o.value) for o in backend.collect("t1")] == [("loss", 1.0)]


def test_file_descriptor_output_lands_in_the_trial_log(
    shared: FunctionBackend, tmp_path: Path
) -> None:
    backend = shared
    backend.launch(shared_run("fd_writer", tmp_path, "t1"))
    assert finish(backend, "t1").succeeded
    log = backend.log_path("t1").read_text()
    assert "raw fd line" in log
    assert "from a child process" in log


def test_report_streams_intermediate_values_while_the_trial_runs(
    shared: FunctionBackend, tmp_path: Path
) -> None:
    backend = shared
    run = shared_run("streamer", tmp_path, "t1")
    backend.launch(run)
    seen: list[Observation] = []

    def streamed() -> bool:
        backend.wait(0.5)
        seen.extend(backend.collect("t1"))
        return len(seen) == 2

    wait_until(streamed, timeout=20)
    assert backend.poll("t1") is None
    assert values(seen) == [("loss", 3.0, 1), ("loss", 2.0, 2)]
    (run.trial_dir / "go").touch()
    assert finish(backend, "t1").succeeded
    assert values(backend.collect("t1")) == [("loss", 1.0, None)]


def test_an_exception_fails_the_trial_and_the_worker_survives(
    shared: FunctionBackend, tmp_path: Path
) -> None:
    backend = shared
    backend.launch(shared_run("failing", tmp_path, "t1", {"x": 7}))
    exit_ = finish(backend, "t1")
    assert exit_ == TrialExit(succeeded=False, exit_code=1, message="ValueError: bad x 7")
    log = backend.log_path("t1").read_text()
    assert "Traceback (most recent call last)" in log
    assert "ValueError: bad x 7" in log
    (pid,) = backend.worker_pids()
    backend.launch(shared_run("failing", tmp_path, "t2", {"x": 8}))
    assert finish(backend, "t2").message == "ValueError: bad x 8"
    assert backend.worker_pids() == [pid]
    # Messages stay one short line; the log keeps the whole text.
    backend.launch(shared_run("failing", tmp_path, "t3", {"x": -1}))
    assert finish(backend, "t3").message == "RuntimeError: first line ..."
    assert "details details" in backend.log_path("t3").read_text()


def test_sys_exit_ends_the_trial_like_a_process_exit(
    shared: FunctionBackend, tmp_path: Path
) -> None:
    backend = shared
    backend.launch(shared_run("exits", tmp_path, "ok", {"code": 0}))
    assert finish(backend, "ok") == TrialExit(succeeded=True, exit_code=0, message="exited")
    assert values(backend.collect("ok")) == [("loss", 0.5, 0)]
    backend.launch(shared_run("exits", tmp_path, "bad", {"code": 2}))
    assert finish(backend, "bad") == TrialExit(False, 2, "exit code 2")
    assert "Traceback" not in backend.log_path("bad").read_text()  # as a process's exit
    # sys.exit("why"): status 1, and the text printed to the log, as the interpreter does.
    backend.launch(shared_run("exits_saying_why", tmp_path, "why", {"code": 0}))
    assert finish(backend, "why") == TrialExit(False, 1, "exit code 1: out of cheese")
    assert backend.log_path("why").read_text().splitlines()[-1] == "out of cheese"
    assert len(backend.worker_pids()) == 1


def test_return_values_that_are_no_metrics_are_ignored_with_a_note(
    shared: FunctionBackend, tmp_path: Path
) -> None:
    backend = shared
    backend.launch(shared_run("returns_junk", tmp_path, "dict", {"x": 1}, ("loss", "accuracy")))
    assert finish(backend, "dict").succeeded
    assert values(backend.collect("dict")) == [("accuracy", 0.5, None)]
    assert "ignoring returned metric 'loss'" in backend.log_path("dict").read_text()
    backend.launch(shared_run("returns_junk", tmp_path, "tuple", {"x": 0}))
    assert finish(backend, "tuple").succeeded
    assert backend.collect("tuple") == []
    assert "ignoring the objective's return value of type tuple" in (
        backend.log_path("tuple").read_text()
    )


def test_non_finite_return_values_are_ignored_with_a_note(
    shared: FunctionBackend, tmp_path: Path
) -> None:
    # SQLite keeps NaN as NULL: one such value reaching the store failed every commit after.
    backend = shared
    run = shared_run("returns_non_finite", tmp_path, "dict", {"x": 1}, ("loss", "accuracy", "big"))
    backend.launch(run)
    assert finish(backend, "dict").succeeded
    assert values(backend.collect("dict")) == [("accuracy", 0.5, None)]
    log = backend.log_path("dict").read_text()
    assert "ignoring returned metric 'loss': inf is not finite" in log
    assert "ignoring returned metric 'big'" in log
    backend.launch(shared_run("returns_non_finite", tmp_path, "one", {"x": 0}))
    assert finish(backend, "one").succeeded
    assert backend.collect("one") == []
    assert "ignoring the returned loss: nan is not finite" in backend.log_path("one").read_text()


def test_workers_are_reused_across_trials(make_backend: Factory, tmp_path: Path) -> None:
    backend = make_backend(objectives.pid, workers=2)
    pids: set[int] = set()
    for i in range(4):
        backend.launch(trial_run(tmp_path, f"t{i}", metric_names=("pid",)))
        assert finish(backend, f"t{i}").succeeded
        pids.update(int(o.value) for o in backend.collect(f"t{i}"))
    assert len(pids) == 1
    assert backend.worker_pids() == list(pids)


def test_prestarted_workers_take_the_first_trials(make_backend: Factory, tmp_path: Path) -> None:
    backend = make_backend(objectives.pid, workers=2)
    backend.prestart()
    started = backend.worker_pids()
    assert len(started) == 2
    backend.prestart()  # already at the limit: nothing more
    assert backend.worker_pids() == started
    for name in ("a", "b"):
        backend.launch(trial_run(tmp_path, name, metric_names=("pid",)))
    for name in ("a", "b"):
        assert finish(backend, name).succeeded
        assert int(backend.collect(name)[0].value) in started
    assert backend.worker_pids() == started


def test_kill_ends_the_worker_and_a_new_one_takes_over(
    make_backend: Factory, tmp_path: Path
) -> None:
    backend = make_backend(objectives.sleeper, kill_grace=1.0)
    backend.launch(trial_run(tmp_path, "long", {"seconds": 60}, ("pid",)))
    wait_until(lambda: bool(backend.worker_pids()), timeout=10)
    (old,) = backend.worker_pids()
    backend.kill("long")
    assert backend.poll("long") == TrialExit(succeeded=False, exit_code=None, message="killed")
    wait_until(lambda: not pid_running(old), timeout=10)
    backend.launch(trial_run(tmp_path, "next", {"seconds": 0}, ("pid",)))
    assert finish(backend, "next").succeeded
    (new,) = [int(o.value) for o in backend.collect("next")]
    assert new != old
    assert backend.collect("long") == []


def test_a_dead_worker_fails_its_trial_and_is_replaced(
    make_backend: Factory, tmp_path: Path
) -> None:
    backend = make_backend(objectives.dies)
    backend.launch(trial_run(tmp_path, "t1"))
    assert finish(backend, "t1") == TrialExit(
        succeeded=False, exit_code=3, message="worker died (exit code 3)"
    )
    assert backend.worker_pids() == []
    backend.launch(trial_run(tmp_path, "t2"))
    assert finish(backend, "t2").exit_code == 3


def test_trials_run_in_parallel_up_to_the_worker_count(
    make_backend: Factory, tmp_path: Path
) -> None:
    backend = make_backend(objectives.sleeper, workers=2)
    for name in ("warm-a", "warm-b"):  # start both workers: we measure trials, not boots
        backend.launch(trial_run(tmp_path, name, {"seconds": 0.2}, ("pid",)))
    for name in ("warm-a", "warm-b"):
        assert finish(backend, name).succeeded
    assert len(backend.worker_pids()) == 2
    started = time.monotonic()
    for name in ("a", "b"):
        backend.launch(trial_run(tmp_path, name, {"seconds": 0.5}, ("pid",)))
    assert finish(backend, "a").succeeded and finish(backend, "b").succeeded
    assert time.monotonic() - started < 0.9
    pids = {o.value for n in ("a", "b") for o in backend.collect(n)}
    assert len(pids) == 2
    # A third trial beyond the worker count queues until a worker is free.
    for name in ("c", "d", "e"):
        backend.launch(trial_run(tmp_path, name, {"seconds": 0.1}, ("pid",)))
    for name in ("c", "d", "e"):
        assert finish(backend, name).succeeded
    assert len(backend.worker_pids()) == 2


def test_closures_and_lambdas_travel_by_value(make_backend: Factory, tmp_path: Path) -> None:
    scale = 3.0
    backend = make_backend(lambda parameters: {"loss": parameters["x"] * scale})
    backend.launch(trial_run(tmp_path, "t1", {"x": 2.0}))
    assert finish(backend, "t1").succeeded
    assert values(backend.collect("t1")) == [("loss", 6.0, None)]


def test_an_unpicklable_objective_is_refused_at_once() -> None:
    lock = threading.Lock()

    def objective(parameters: dict[str, float]) -> None:
        with lock:
            pass

    with pytest.raises(TypeError, match="cannot send the objective"):
        FunctionBackend(objective, 1)


def test_functions_of_modules_workers_cannot_import_travel_by_value(
    make_backend: Factory, tmp_path: Path
) -> None:
    # Loaded from a path that is not on sys.path, as notebooks and plugin loaders do.
    source = tmp_path / "elsewhere" / "hyperflow_test_unimportable.py"
    source.parent.mkdir()
    source.write_text("def objective(parameters):\n    return {'loss': parameters['x'] + 100}\n")
    spec = importlib.util.spec_from_file_location("hyperflow_test_unimportable", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        backend = make_backend(module.objective)
    finally:
        del sys.modules[spec.name]
    backend.launch(trial_run(tmp_path, "t1", {"x": 1.0}))
    assert finish(backend, "t1").succeeded
    assert values(backend.collect("t1")) == [("loss", 101.0, None)]


def test_trial_environment_cwd_and_their_restoration(
    shared: FunctionBackend, tmp_path: Path
) -> None:
    backend = shared
    for name in ("t1", "t2"):
        cwd = tmp_path / f"cwd-{name}"
        cwd.mkdir()
        run = shared_run(
            "environment", tmp_path, name, metric_names=("leaked",), env={"EXTRA": name}
        )
        run.cwd = cwd
        backend.launch(run)
        assert finish(backend, name).succeeded
        # The variable the previous trial set did not leak into this one.
        assert values(backend.collect(name)) == [("leaked", 0.0, None)]
        assert (cwd / "cwd.txt").read_text() == str(cwd)
        env = (run.trial_dir / "artifacts" / "env.txt").read_text().splitlines()
        assert env == [
            f"HYPERFLOW_TRIAL_DIR={run.trial_dir}",
            f"HYPERFLOW_TRIAL_NAME={name}",
            f"HYPERFLOW_ARTIFACTS_DIR={run.trial_dir / 'artifacts'}",
            f"EXTRA={name}",
        ]


def test_a_trials_sys_path_changes_do_not_reach_the_next(
    make_backend: Factory, tmp_path: Path
) -> None:
    backend = make_backend(objectives.path_changer, workers=1)  # one worker: both trials
    for name in ("p1", "p2"):
        backend.launch(trial_run(tmp_path, name, metric_names=("leaked",)))
        assert finish(backend, name).succeeded
        assert values(backend.collect(name)) == [("leaked", 0.0, None)]


def test_adopted_trials_are_lost(make_backend: Factory, tmp_path: Path) -> None:
    backend = make_backend(objectives.noop)
    backend.adopt(trial_run(tmp_path, "old"), skip_observations=2)
    assert backend.poll("old") == TrialExit(
        succeeded=False, exit_code=None, message="lost: controller restarted"
    )
    assert backend.collect("old") == []
    assert backend.worker_pids() == []


def test_wait_returns_on_news_and_otherwise_times_out(
    make_backend: Factory, tmp_path: Path
) -> None:
    backend = make_backend(objectives.sleeper)
    started = time.monotonic()
    backend.wait(0.2)
    assert time.monotonic() - started >= 0.2
    backend.launch(trial_run(tmp_path, "t1", {"seconds": 0.1}, ("pid",)))
    started = time.monotonic()
    backend.wait(10)
    assert time.monotonic() - started < 5
    assert backend.poll("t1") is not None
    # News stays until consumed by poll and collect.
    backend.wait(10)
    backend.collect("t1")
    started = time.monotonic()
    backend.wait(0.1)
    assert time.monotonic() - started >= 0.1


def test_release_forgets_the_trial(shared: FunctionBackend, tmp_path: Path) -> None:
    backend = shared
    backend.launch(shared_run("noop", tmp_path, "t1"))
    assert finish(backend, "t1").succeeded
    backend.release("t1")
    with pytest.raises(KeyError):
        backend.poll("t1")
    backend.release("t1")  # unknown trials: no-ops
    backend.kill("t1")


def test_close_leaves_no_worker_processes(make_backend: Factory, tmp_path: Path) -> None:
    backend = make_backend(objectives.sleeper, workers=3, kill_grace=1.0)
    backend.launch(trial_run(tmp_path, "idle", {"seconds": 0}, ("pid",)))
    assert finish(backend, "idle").succeeded
    backend.launch(trial_run(tmp_path, "busy-1", {"seconds": 60}, ("pid",)))
    backend.launch(trial_run(tmp_path, "busy-2", {"seconds": 60}, ("pid",)))
    wait_until(lambda: len(backend.worker_pids()) == 2, timeout=10)
    pids = backend.worker_pids()
    backend.close()
    assert not any(pid_running(pid) for pid in pids)
    assert backend.poll("busy-1") == TrialExit(False, None, "killed")
    with pytest.raises(RuntimeError):
        backend.launch(trial_run(tmp_path, "late"))


def test_functions_of_a_main_script_do_not_rerun_the_script(tmp_path: Path) -> None:
    script = tmp_path / "user_script.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, sys
            from pathlib import Path

            # Counts how often this file runs: once, in the parent, never in a worker.
            with open(os.environ["RUNS_FILE"], "a") as f:
                f.write("run\\n")

            from tuner.backends.base import TrialRun
            from tuner.backends.function import FunctionBackend
            from tuner.spec.models import MetricsCollectorSpec

            OFFSET = 10.0

            def objective(parameters):
                return {"loss": parameters["x"] + OFFSET}

            if __name__ == "__main__":
                backend = FunctionBackend(objective, 1)
                tmp = Path(sys.argv[1])
                backend.launch(TrialRun("e", "t", None, {}, tmp, tmp / "t", {"x": 1.0},
                                        MetricsCollectorSpec(), ["loss"]))
                while backend.poll("t") is None:
                    backend.wait(1.0)
                print(backend.poll("t").message, [o.value for o in backend.collect("t")])
                backend.close()
            """
        )
    )
    import subprocess

    runs = tmp_path / "runs.txt"
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        env={**os.environ, "RUNS_FILE": str(runs), "PYTHONPATH": str(REPO)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == "completed [11.0]"
    assert runs.read_text() == "run\n"


def test_workers_die_with_their_parent(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys, time
            from pathlib import Path
            from tuner.backends.base import TrialRun
            from tuner.backends.function import FunctionBackend
            from tuner.spec.models import MetricsCollectorSpec

            def objective(parameters):
                time.sleep(60)

            backend = FunctionBackend(objective, 1)
            tmp = Path(sys.argv[1])
            backend.launch(TrialRun("e", "t", None, {}, tmp, tmp / "t", {},
                                    MetricsCollectorSpec(), ["loss"]))
            while not (tmp / "t" / "trial.log").exists():
                time.sleep(0.01)
            print(backend.worker_pids()[0], flush=True)
            time.sleep(60)
            """
        )
    )
    import subprocess

    with subprocess.Popen(
        [sys.executable, str(script), str(tmp_path)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    ) as parent:
        try:
            assert parent.stdout is not None
            worker = int(parent.stdout.readline())
            assert pid_running(worker)
        finally:
            parent.kill()  # no chance to clean up: the kernel must end the worker
            parent.wait()
    try:
        wait_until(lambda: not pid_running(worker), timeout=10)
    finally:
        if pid_running(worker):  # the test failed: still stop exactly the process it started
            os.kill(worker, signal.SIGKILL)


def test_many_noop_trials_are_cheap(make_backend: Factory, tmp_path: Path) -> None:
    backend = make_backend(objectives.noop, workers=4)

    def run_all(names: list[str]) -> None:
        for name in names:
            backend.launch(trial_run(tmp_path, name))
        pending = set(names)
        while pending:
            backend.wait(1.0)
            for name in list(pending):
                if backend.poll(name) is not None:
                    backend.collect(name)
                    pending.discard(name)

    run_all([f"warm-{i}" for i in range(4)])  # worker boots are paid once per experiment
    started = time.monotonic()
    run_all([f"t{i}" for i in range(100)])
    elapsed = time.monotonic() - started
    # Ray Tune needs ~1.4 s per trial here: 35 s for 100 trials at 4-way. Typically
    # ~0.2 s here; the bound leaves room for a loaded machine.
    assert elapsed < 2.0, elapsed


def test_a_trial_that_cannot_be_set_up_fails_and_the_worker_survives(
    shared: FunctionBackend, tmp_path: Path
) -> None:
    run = shared_run("pid", tmp_path, "t1", metric_names=("pid",))
    run.cwd = tmp_path / "missing"
    shared.launch(run)
    exit_ = finish(shared, "t1")
    assert not exit_.succeeded
    assert exit_.message.startswith("cannot set up the trial: FileNotFoundError")
    (pid,) = shared.worker_pids()
    shared.launch(shared_run("pid", tmp_path, "t2", metric_names=("pid",)))
    assert finish(shared, "t2").succeeded
    assert [o.value for o in shared.collect("t2")] == [pid]


def test_a_forked_worker_holds_no_fd_of_its_parent_and_runs_its_initializer(
    tmp_path: Path,
) -> None:
    import select

    marker = tmp_path / "initialized"
    read_end, write_end = os.pipe()  # as the MLflow writer's or another worker's stdin
    backend = FunctionBackend(
        objectives.dispatch,
        1,
        start="fork",
        initializer=lambda: marker.write_text(str(os.getpid())),
    )
    try:
        backend.prestart(1)
        wait_until(marker.exists, timeout=30)
        assert marker.read_text() == str(backend.worker_pids()[0])
        os.close(write_end)
        # EOF at once: the worker does not hold the write end open.
        ready, _, _ = select.select([read_end], [], [], 10)
        assert ready and os.read(read_end, 1) == b""
    finally:
        backend.close()
        os.close(read_end)
