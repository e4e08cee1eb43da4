"""LocalBackend with real processes, real files and a real controller crash (SIGKILL)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.tuner.backends.trials import WAIT_FOR, make_run, script, wait_exit
from tests.util import wait_until
from tuner.backends.base import TrialExit, TrialRun
from tuner.backends.local import LocalBackend, group_has_live_members

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def backend() -> Iterator[LocalBackend]:
    b = LocalBackend(kill_grace=0.5)
    yield b
    b.close()


def test_environment_cwd_and_python_resolution(tmp_path: Path, backend: LocalBackend) -> None:
    code = (
        "import json, os, sys; print(json.dumps({'exe': sys.executable, 'cwd': os.getcwd(),"
        " 'env': {k: v for k, v in os.environ.items() if k.startswith(('HYPERFLOW_', 'MY_'))}}))"
    )
    run = make_run(tmp_path, "env", ["python3", "-c", code], env={"MY_VAR": "a b 'c'"})
    backend.launch(run)
    assert wait_exit(backend, "env").succeeded
    info = json.loads(backend.log_path("env").read_text())
    assert info["exe"] == sys.executable
    assert Path(info["cwd"]) == tmp_path
    # (The rest of the environment: the conformance suite.)
    assert Path(info["env"]["HYPERFLOW_TRIAL_DIR"]) == run.trial_dir
    assert Path(info["env"]["HYPERFLOW_ARTIFACTS_DIR"]) == run.trial_dir / "artifacts"


def test_argv_is_passed_through_unparsed(tmp_path: Path, backend: LocalBackend) -> None:
    argv = ["$HOME", "a b", "'q'", '"; echo pwned', "*", ""]
    run = make_run(tmp_path, "argv", ["/bin/echo", *argv])
    backend.launch(run)
    assert wait_exit(backend, "argv").succeeded
    assert backend.log_path("argv").read_text() == " ".join(argv) + "\n"


def test_relative_and_not_executable_commands(tmp_path: Path, backend: LocalBackend) -> None:
    # (A command not on $PATH: the conformance suite.)
    backend.launch(make_run(tmp_path, "nf-rel", ["./missing.sh"]))
    (tmp_path / "ok.sh").write_text("#!/bin/sh\necho loss=0.25\n")
    (tmp_path / "ok.sh").chmod(0o755)
    (tmp_path / "noexec.sh").write_text("#!/bin/sh\n")
    backend.launch(make_run(tmp_path, "rel", ["./ok.sh"]))
    backend.launch(make_run(tmp_path, "noexec", ["./noexec.sh"]))
    assert backend.poll("nf-rel") == TrialExit(False, None, "command not found: ./missing.sh")
    assert backend.poll("noexec") == TrialExit(False, None, "command not executable: ./noexec.sh")
    assert wait_exit(backend, "rel").succeeded
    assert [o.value for o in backend.collect("rel")] == [0.25]
    assert "command not found" in backend.log_path("nf-rel").read_text()


def test_kill_stops_the_whole_process_group(tmp_path: Path, backend: LocalBackend) -> None:
    child_pid = tmp_path / "child.pid"
    trial = script(
        tmp_path,
        "stubborn.py",
        """
import os, signal, subprocess, sys, time
# A child that ignores SIGTERM: only the SIGKILL after the grace period stops it.
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"],
    stdout=subprocess.PIPE)
child.stdout.readline()
open(sys.argv[1] + ".tmp", "w").write(str(child.pid))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(60)
""",
    )
    backend.launch(make_run(tmp_path, "k", ["python", trial, str(child_pid)]))
    wait_until(child_pid.exists)
    pgid = backend.pid("k")
    assert pgid is not None and group_has_live_members(pgid)
    start = time.monotonic()
    backend.kill("k")
    exit_ = wait_exit(backend, "k")
    assert exit_.succeeded is False and exit_.message == "killed"
    assert time.monotonic() - start >= backend.kill_grace  # the child needed the SIGKILL
    assert not group_has_live_members(pgid)
    backend.kill("k")  # killing a finished trial is a no-op
    assert backend.poll("k") == exit_


def test_wait_returns_when_a_trial_exits(tmp_path: Path, backend: LocalBackend) -> None:
    run = make_run(tmp_path, "quick", ["/bin/true"])
    backend.launch(run)
    start = time.monotonic()
    backend.wait(20.0)
    assert time.monotonic() - start < 10.0
    assert wait_exit(backend, "quick").succeeded
    assert backend.log_path("quick") == run.trial_dir / "trial.log"
    # The exit status the wrapper recorded (what adopt reads after a crash).
    assert (run.trial_dir / "pid").read_text().splitlines()[-1] == "exit 0"
    backend.release("quick")
    with pytest.raises(KeyError):
        backend.poll("quick")


CONTROLLER = """
import sys
from pathlib import Path
from tuner.backends.base import TrialRun
from tuner.backends.local import LocalBackend
tmp, trial, go = sys.argv[1:4]
run = TrialRun("exp", "crash", ["python", trial, go], {}, Path(tmp), Path(tmp) / "trials" / "crash", {})
backend = LocalBackend()
backend.launch(run)
print(backend.pid("crash"), flush=True)
sys.stdin.read()  # wait to be SIGKILLed
"""


def test_adopt_after_controller_is_sigkilled(tmp_path: Path) -> None:
    go = tmp_path / "go"
    trial = script(
        tmp_path,
        "long.py",
        WAIT_FOR
        + """
print("loss=3"); print("loss=2")
wait_for(sys.argv[1])
print("loss=1")
sys.exit(5)
""",
    )
    controller = subprocess.Popen(
        [sys.executable, "-c", CONTROLLER, str(tmp_path), trial, str(go)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=REPO,
    )
    try:
        assert controller.stdout is not None
        trial_pid = int(controller.stdout.readline())
        log = tmp_path / "trials" / "crash" / "trial.log"
        wait_until(lambda: log.exists() and log.read_text().count("loss=") == 2)
    finally:
        controller.send_signal(signal.SIGKILL)
        controller.wait()
    os.kill(trial_pid, 0)  # the trial survived its controller

    run = make_run(tmp_path, "crash", ["python", trial, str(go)])
    backend = LocalBackend(kill_grace=0.5)
    try:
        backend.adopt(run, skip_observations=2)
        assert backend.collect("crash") == []  # the two stored ones are not returned again
        assert backend.poll("crash") is None
        go.touch()
        exit_ = wait_exit(backend, "crash")
        assert exit_ == TrialExit(False, 5, "exit code 5: loss=1")
        assert [(o.value, o.step) for o in backend.collect("crash")] == [(1.0, 2)]
    finally:
        backend.close()


def test_adopt_finished_lost_and_killed_trials(tmp_path: Path) -> None:
    first = LocalBackend(kill_grace=0.5)
    done = make_run(tmp_path, "done", ["python", "-c", "print('loss=7')"])
    first.launch(done)
    sleeper = make_run(tmp_path, "sleeper", ["sleep", "60"])
    first.launch(sleeper)
    missing = make_run(tmp_path, "missing", ["no-such-command-xyz"])
    first.launch(missing)
    # (The reaper creates the file: launch does not wait for it.)
    pid_file = done.trial_dir / "pid"
    wait_until(lambda: pid_file.exists() and "exit 0" in pid_file.read_text())
    del first  # the "controller" goes away without killing anything

    # A trial whose shell died without writing its exit code (e.g. killed with the machine).
    lost = make_run(tmp_path, "lost", ["whatever"])
    lost.trial_dir.mkdir(parents=True)
    gone = subprocess.Popen(["/bin/true"])
    gone.wait()
    (lost.trial_dir / "pid").write_text(f"{gone.pid} -\n")

    # It ended a while before the next controller looked: it says when.
    ended = pid_file.stat().st_mtime - 30
    os.utime(pid_file, (ended, ended))

    second = LocalBackend(kill_grace=0.5)
    try:
        second.adopt(done, skip_observations=0)
        second.adopt(sleeper, skip_observations=0)
        second.adopt(missing, skip_observations=0)
        second.adopt(lost, skip_observations=0)
        assert second.poll("done") == TrialExit(True, 0, "exit code 0", ended_at=ended)
        assert [o.value for o in second.collect("done")] == [7.0]
        assert second.poll("missing") == TrialExit(
            False, None, "command not found: no-such-command-xyz"
        )
        lost_exit = second.poll("lost")
        assert lost_exit is not None and lost_exit.message.startswith("lost")
        assert second.poll("sleeper") is None
        pgid = second.pid("sleeper")
        assert pgid is not None
        second.kill("sleeper")
        assert wait_exit(second, "sleeper").message == "killed"
        assert not group_has_live_members(pgid)
    finally:
        second.close()


def test_a_trial_whose_start_was_not_answered_yet_is_adopted(tmp_path: Path) -> None:
    """A controller killed right after it asked the reaper to start a trial, before it took
    the answer (the PID: ``launch`` does not wait for it).

    The restarted controller launches again only trials without a ``pid`` file: the
    running trial must have one, with its PID and start time, or it would run twice.
    """
    from tuner.backends.local import _read_pid_file

    go = tmp_path / "go"
    trial = script(
        tmp_path, "trial.py", WAIT_FOR + "print('loss=3', flush=True)\nwait_for(sys.argv[1])\n"
    )
    run = make_run(tmp_path, "t1", ["python", trial, str(go)])
    first = LocalBackend(kill_grace=0.5)
    first.launch(run)
    # The controller dies: its ends of the reaper's pipes close, the answer unread.
    reaper = first._reaper
    assert reaper is not None and reaper.stdin is not None and reaper.stdout is not None
    reaper.stdin.close()
    reaper.stdout.close()
    log = run.trial_dir / "trial.log"
    pid: int | None = None
    try:
        wait_until(lambda: log.exists() and "loss=3" in log.read_text(), timeout=20)
        pid, start_time, code = _read_pid_file(run.trial_dir)
        assert pid is not None and start_time is not None and code is None
        second = LocalBackend(kill_grace=0.5)
        try:
            assert second.may_have_started(run), "the restart would launch the trial again"
            second.adopt(run, skip_observations=0)
            assert second.pid("t1") == pid
            assert second.poll("t1") is None
            assert [o.value for o in second.collect("t1")] == [3.0]
            go.touch()
            assert wait_exit(second, "t1") == TrialExit(True, 0, "exit code 0")
        finally:
            second.close()
    finally:
        pid = _read_pid_file(run.trial_dir)[0]
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        reaper.wait(timeout=10)  # it ends with its last trial, its input closed


def test_pid_file_keeps_the_start_time_whatever_order_the_lines_land_in(tmp_path: Path) -> None:
    from tuner.backends.local import _read_pid_file

    (tmp_path / "pid").write_text("42 12345\n42 -\nexit 3\n")
    assert _read_pid_file(tmp_path) == (42, "12345", 3)
    (tmp_path / "pid").write_text("42 -\n42 12345\n")
    assert _read_pid_file(tmp_path) == (42, "12345", None)


def test_no_shell_per_trial_and_the_reaper_ends_with_the_backend(tmp_path: Path) -> None:
    """The command is the reaper's child (no /bin/sh between them); a script without a
    ``#!`` line still runs (through /bin/sh, as a shell runs it); the reaper exits when
    the backend is closed."""
    backend = LocalBackend(kill_grace=0.5)
    go = tmp_path / "go"
    trial = script(
        tmp_path, "t.py", WAIT_FOR + "print('loss=1', flush=True)\nwait_for(sys.argv[1])\n"
    )
    plain = tmp_path / "plain.sh"
    plain.write_text("echo loss=2\nexit 4\n")
    plain.chmod(0o755)
    try:
        backend.launch(make_run(tmp_path, "a", ["python", trial, str(go)]))
        backend.launch(make_run(tmp_path, "b", [str(plain)]))
        pid = backend.pid("a")
        assert pid is not None
        with open(f"/proc/{pid}/stat") as f:
            ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        with open(f"/proc/{ppid}/cmdline", "rb") as f:
            assert b"_reaper.py" in f.read()  # not a shell
        reaper = ppid
        assert os.getsid(pid) == pid  # its own session and process group
        assert wait_exit(backend, "b") == TrialExit(False, 4, "exit code 4: loss=2")
        assert "exit 4" in (tmp_path / "trials" / "b" / "pid").read_text().splitlines()
        go.touch()
        assert wait_exit(backend, "a") == TrialExit(True, 0, "exit code 0")
    finally:
        backend.close()
    wait_until(lambda: not os.path.exists(f"/proc/{reaper}"), timeout=10)


def test_trials_that_end_together_each_get_their_own_complete_record(tmp_path: Path) -> None:
    """Forty trials started at once, each with its own exit status, a fifth of them files
    without a ``#!`` line (their exec fails; ``posix_spawn`` reaps that child itself and
    the file runs through /bin/sh): each one's ``pid`` file holds its PID with its start
    time, the reaper's line, then its own exit status, in that order, and each exit is
    reported for its own trial."""
    plain = tmp_path / "plain.sh"
    plain.write_text('exit "$1"\n')
    plain.chmod(0o755)
    backend = LocalBackend(kill_grace=0.5)
    try:
        for i in range(40):
            command = [str(plain), str(i)] if i % 5 == 0 else ["/bin/sh", "-c", f"exit {i}"]
            backend.launch(make_run(tmp_path, f"t{i}", command))
        for i in range(40):
            want = (
                TrialExit(True, 0, "exit code 0")
                if i == 0
                else TrialExit(False, i, f"exit code {i}")
            )
            assert wait_exit(backend, f"t{i}") == want, i
            lines = (tmp_path / "trials" / f"t{i}" / "pid").read_text().splitlines()
            assert len(lines) == 3, lines
            pid, start = lines[0].split()
            assert pid.isdigit() and start.isdigit(), lines
            assert lines[1].startswith("reaper "), lines
            assert lines[2] == f"exit {i}", lines
    finally:
        backend.close()


def test_prestart_boots_the_reaper_that_runs_the_trials_and_close_reaps_it(
    tmp_path: Path,
) -> None:
    """``prestart`` starts the reaper before any launch (it boots while the controller sets
    up); the first trial runs under that same reaper; ``close`` returns once it has exited
    and been reaped (no zombie left behind)."""
    backend = LocalBackend(kill_grace=0.5)
    try:
        backend.prestart(2)
        reaper = backend._reaper
        assert reaper is not None and reaper.poll() is None
        backend.launch(make_run(tmp_path, "a", ["/bin/echo", "loss=1"]))
        assert wait_exit(backend, "a") == TrialExit(True, 0, "exit code 0")
        assert backend._reaper is reaper
        assert f"reaper {reaper.pid} " in (tmp_path / "trials" / "a" / "pid").read_text()
    finally:
        backend.close()
    assert reaper.returncode == 0
    assert not os.path.exists(f"/proc/{reaper.pid}")


def test_a_dead_reaper_loses_its_running_trials_and_is_replaced(tmp_path: Path) -> None:
    """Whoever kills the reaper takes the trials' exit statuses with it: a trial that then
    ends is lost (never reported as succeeded); the next launch gets a new reaper."""
    backend = LocalBackend(kill_grace=0.5)
    go = tmp_path / "go"
    trial = script(tmp_path, "t.py", WAIT_FOR + "wait_for(sys.argv[1])\nprint('loss=1')\n")
    try:
        backend.launch(make_run(tmp_path, "a", ["python", trial, str(go)]))
        pid = backend.pid("a")
        assert pid is not None
        with open(f"/proc/{pid}/stat") as f:
            reaper = int(f.read().rsplit(")", 1)[1].split()[1])
        os.kill(reaper, signal.SIGKILL)
        wait_until(lambda: backend.poll("a") is None and backend._reaper is None, timeout=10)
        go.touch()
        lost = wait_exit(backend, "a")
        assert not lost.succeeded and lost.message.startswith("lost"), lost
        backend.launch(make_run(tmp_path, "b", ["python", "-c", "print('loss=2')"]))
        assert wait_exit(backend, "b") == TrialExit(True, 0, "exit code 0")
    finally:
        backend.close()


def test_a_reaper_gone_during_a_launch_leaves_a_started_trial_watched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reaper started the command, then died before it answered: the trial is not
    reported as a failed launch (it runs); it is watched through its files, and its end
    without a recorded status is "lost"."""
    backend = LocalBackend(kill_grace=0.5)
    go = tmp_path / "go"
    trial = script(tmp_path, "t.py", WAIT_FOR + "wait_for(sys.argv[1])\n")
    original = LocalBackend._take

    def reaper_dies(self: LocalBackend, frame: tuple[object, ...]) -> None:
        if frame[0] == "pid":  # the answer is lost with the reaper
            assert self._reaper is not None
            self._reaper.kill()
            self._reaper.wait()
            return
        original(self, frame)

    monkeypatch.setattr(LocalBackend, "_take", reaper_dies)
    run = make_run(tmp_path, "a", ["python", trial, str(go)])
    try:
        backend.launch(run)
        pid = backend.pid("a")  # waits for the answer; finds the reaper gone instead
        monkeypatch.undo()
        assert backend._reaper is None
        assert pid is not None and backend.poll("a") is None
        assert not (run.trial_dir / "launch_error").exists()
        go.touch()
        lost = wait_exit(backend, "a")
        assert not lost.succeeded and lost.message.startswith("lost"), lost
    finally:
        backend.close()


def test_a_start_the_reaper_refuses_fails_its_trial_and_not_the_next(
    tmp_path: Path, backend: LocalBackend
) -> None:
    """``launch`` does not wait for the reaper: a command it cannot start (its working
    directory is gone) is reported by ``poll`` as a failed launch, written down for a
    controller that adopts the trial, and the next trial starts as usual."""
    import dataclasses

    gone = tmp_path / "gone"
    run = dataclasses.replace(make_run(tmp_path, "a", ["python", "-c", "pass"]), cwd=gone)
    backend.launch(run)
    exit_ = wait_exit(backend, "a")
    assert not exit_.succeeded and exit_.exit_code is None
    assert exit_.message == f"cannot start: [Errno 2] No such file or directory: '{gone}'"
    assert (run.trial_dir / "launch_error").read_text() == exit_.message + "\n"
    assert not (run.trial_dir / "pid").exists()  # never started: a restart may launch it
    backend.launch(make_run(tmp_path, "b", ["python", "-c", "print('loss=2')"]))
    assert wait_exit(backend, "b") == TrialExit(True, 0, "exit code 0")
    assert [o.value for o in backend.collect("b")] == [2.0]


def _echo_experiment(name: str) -> dict[str, Any]:
    """A Katib Experiment of two `/bin/echo` trials (grid over x = 1, 2, two at a time)."""
    from tests.e2e.test_experiments import _categorical, _experiment

    return _experiment(
        name, ["/bin/echo", "loss=${trialParameters.x}"], [_categorical("x", ["1", "2"])]
    )


def test_the_runner_boots_the_reaper_before_the_controller_unless_the_experiment_is_over(
    tmp_path: Path,
) -> None:
    """``run_experiment`` starts the local backend's reaper as soon as it has the backend,
    so that the interpreter boots while the controller is set up; an experiment that has
    finished (run again: nothing to run) starts none."""
    from tuner.runner import run_experiment
    from tuner.settings import TunerSettings
    from tuner.spec import parse_experiment
    from tuner.types import ExperimentPhase

    data = _echo_experiment("early-reaper")
    settings = TunerSettings(home=tmp_path / "home")
    booted: list[bool] = []

    def look(controller: Any) -> None:
        booted.append(controller.backend._reaper is not None)

    first = run_experiment(
        parse_experiment(data, base_dir=tmp_path),
        settings=settings,
        track=False,
        on_controller=look,
    )
    assert first.record.phase is ExperimentPhase.SUCCEEDED
    again = run_experiment(
        parse_experiment(data, base_dir=tmp_path),
        settings=settings,
        track=False,
        on_controller=look,
    )
    assert again.already_finished
    assert booted == [True, False]


def test_a_run_whose_set_up_fails_stops_the_reaper_it_started(tmp_path: Path) -> None:
    """The reaper started early (above) is stopped when the set-up after it fails: here
    the ``on_controller`` callback raises before the experiment runs."""
    from tuner.runner import run_experiment
    from tuner.settings import TunerSettings
    from tuner.spec import parse_experiment

    data = _echo_experiment("set-up-fails")
    reapers: list[int] = []

    def fail(controller: Any) -> None:
        reaper = controller.backend._reaper
        assert reaper is not None
        reapers.append(reaper.pid)
        raise RuntimeError("set-up failed")

    with pytest.raises(RuntimeError, match="set-up failed"):
        run_experiment(
            parse_experiment(data, base_dir=tmp_path),
            settings=TunerSettings(home=tmp_path / "home"),
            track=False,
            on_controller=fail,
        )
    assert len(reapers) == 1
    assert not os.path.exists(f"/proc/{reapers[0]}")  # stopped and reaped by the close


def _pid_lines(trial_dir: Path) -> list[str]:
    try:
        return (trial_dir / "pid").read_text().splitlines()
    except FileNotFoundError:
        return []


def _starts(trial_dir: Path) -> int:
    """How many times the trial's command was started (``<pid> <start time>`` lines)."""
    return sum(1 for line in _pid_lines(trial_dir) if line and line.split()[0].isdigit())


def _hold_one(tmp_path: Path, backend: LocalBackend) -> tuple[Path, TrialRun]:
    """Trial "a" runs until ``go`` exists; trial "b" (prints loss=2) is held for it."""
    go = tmp_path / "go"
    trial = script(tmp_path, "t.py", WAIT_FOR + "wait_for(sys.argv[1])\n")
    backend.launch(make_run(tmp_path, "a", ["python", trial, str(go)]))
    assert backend.pid("a") is not None
    held = make_run(tmp_path, "b", ["python", "-c", "print('loss=2')"])
    assert backend.launch_next(held)
    return go, held


def test_the_next_trial_starts_when_a_running_one_ends_without_the_controller(
    tmp_path: Path, backend: LocalBackend
) -> None:
    """``launch_next``: the reaper starts the held trial the moment one of the trials it
    ran at the hand-over has ended (its status written first), with no call of this
    process in between; ``launch`` afterwards starts nothing twice."""
    go, next_run = _hold_one(tmp_path, backend)
    time.sleep(0.3)  # no start before a slot frees (a negative check: nothing to wait for)
    assert _starts(next_run.trial_dir) == 0
    go.touch()
    # Started by the reaper alone: this process takes no frame meanwhile.
    wait_until(lambda: "exit 0" in _pid_lines(next_run.trial_dir))
    a_end = (tmp_path / "trials" / "a" / "pid").stat().st_mtime
    assert (next_run.trial_dir / "pid").stat().st_mtime >= a_end
    backend.launch(next_run)
    assert wait_exit(backend, "b") == TrialExit(True, 0, "exit code 0")
    assert wait_exit(backend, "a").succeeded
    assert _starts(next_run.trial_dir) == 1
    assert [o.value for o in backend.collect("b")] == [2.0]


def test_launch_starts_a_held_trial_at_once_and_withdraw_takes_it_back(
    tmp_path: Path, backend: LocalBackend
) -> None:
    go, held = _hold_one(tmp_path, backend)
    backend.launch(held)  # a slot is free now (the controller's word): no waiting for "a"
    assert wait_exit(backend, "b") == TrialExit(True, 0, "exit code 0")
    assert backend.poll("a") is None

    withdrawn = make_run(tmp_path, "c", ["python", "-c", "print('loss=3')"])
    assert backend.launch_next(withdrawn)
    assert backend.withdraw("c")
    go.touch()
    assert wait_exit(backend, "a").succeeded
    assert not withdrawn.trial_dir.exists()  # never started, and forgotten
    with pytest.raises(KeyError):
        backend.poll("c")
    backend.launch(withdrawn)  # as any new trial
    assert wait_exit(backend, "c") == TrialExit(True, 0, "exit code 0")
    assert _starts(withdrawn.trial_dir) == 1


def test_a_held_trial_that_started_before_its_withdrawal_runs_as_launched(
    tmp_path: Path, backend: LocalBackend
) -> None:
    go, held = _hold_one(tmp_path, backend)
    go.touch()
    wait_until(lambda: _starts(held.trial_dir) == 1)
    assert not backend.withdraw("b")  # too late: it runs, and is watched as launched
    backend.launch(held)
    assert wait_exit(backend, "b") == TrialExit(True, 0, "exit code 0")
    assert _starts(held.trial_dir) == 1


def test_a_trial_held_for_one_that_had_ended_already_starts_at_once(
    tmp_path: Path, backend: LocalBackend
) -> None:
    """The trial it was held for ended before the hand-over reached the reaper (its exit
    not taken here yet): that slot is free, so the held trial starts at once."""
    first = make_run(tmp_path, "a", ["/bin/true"])
    backend.launch(first)
    wait_until(lambda: "exit 0" in _pid_lines(first.trial_dir))  # its exit frame unread
    held = make_run(tmp_path, "b", ["python", "-c", "print('loss=2')"])
    assert backend.launch_next(held)
    wait_until(lambda: "exit 0" in _pid_lines(held.trial_dir))
    backend.launch(held)
    assert wait_exit(backend, "b") == TrialExit(True, 0, "exit code 0")
    assert wait_exit(backend, "a").succeeded
    assert _starts(held.trial_dir) == 1


def test_launch_next_declines_without_a_running_trial_of_its_own(
    tmp_path: Path, backend: LocalBackend
) -> None:
    """Only trials this backend's reaper runs end where it sees them: with none running
    (or only adopted ones), the next trial is left to ``launch``; so is one that cannot
    start, whose failure ``launch`` then records."""
    assert not backend.launch_next(make_run(tmp_path, "x", ["/bin/true"]))
    go = tmp_path / "go"
    trial = script(tmp_path, "t.py", WAIT_FOR + "wait_for(sys.argv[1])\n")
    backend.launch(make_run(tmp_path, "a", ["python", trial, str(go)]))
    missing = make_run(tmp_path, "m", ["no-such-command-here"])
    assert not backend.launch_next(missing)
    assert not missing.trial_dir.exists()
    go.touch()
    assert wait_exit(backend, "a").succeeded


def test_a_held_trial_never_starts_once_its_controller_is_gone(tmp_path: Path) -> None:
    """The controller dies (its pipes to the reaper close) while a trial is held: the
    reaper goes on reaping, and the held trial never starts: a restarted controller finds
    it Created, without a ``pid`` file, and launches it itself (once)."""
    go = tmp_path / "go"
    trial = script(tmp_path, "t.py", WAIT_FOR + "wait_for(sys.argv[1])\n")
    run = make_run(tmp_path, "a", ["python", trial, str(go)])
    held = make_run(tmp_path, "b", ["python", "-c", "print('loss=2')"])
    first = LocalBackend(kill_grace=0.5)
    first.launch(run)
    assert first.pid("a") is not None
    assert first.launch_next(held)
    reaper = first._reaper
    assert reaper is not None and reaper.stdin is not None and reaper.stdout is not None
    reaper.stdin.close()
    reaper.stdout.close()
    go.touch()
    reaper.wait(timeout=20)  # it ends with its last trial: "a"
    assert "exit 0" in (run.trial_dir / "pid").read_text()
    second = LocalBackend(kill_grace=0.5)
    try:
        assert not second.may_have_started(held)
        second.launch(held)
        assert wait_exit(second, "b") == TrialExit(True, 0, "exit code 0")
        assert _starts(held.trial_dir) == 1
    finally:
        second.close()


def test_the_reaper_takes_a_start_request_of_the_version_before(tmp_path: Path) -> None:
    """A server upgraded under its running process starts the new reaper file with the
    old request (7 fields, no ``after``): the trial starts as before."""
    import marshal
    import struct

    from tuner.backends.local import _REAPER

    header = struct.Struct(">I")
    reaper = subprocess.Popen(
        [sys.executable, "-I", "-S", str(_REAPER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert reaper.stdin is not None and reaper.stdout is not None
        trial_dir = tmp_path / "t"
        data = marshal.dumps(
            (1, "/bin/true", ["true"], {}, str(tmp_path), str(trial_dir), str(trial_dir / "log"))
        )
        reaper.stdin.write(header.pack(len(data)) + data)
        reaper.stdin.close()
        out = reaper.stdout.read()
        frames = []
        while out:
            (size,) = header.unpack_from(out)
            frames.append(marshal.loads(out[header.size : header.size + size]))
            out = out[header.size + size :]
        assert [f[0] for f in frames] == ["pid", "exit"] and frames[-1][2] == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            reaper.kill()
        reaper.wait(timeout=10)


def test_a_held_trial_waits_also_for_one_launched_whose_start_is_unanswered(
    tmp_path: Path, backend: LocalBackend
) -> None:
    """A trial given to ``launch_next`` and then to ``launch`` ("c"), its PID not read
    yet, counts as running: the next held trial ("d") starts when "c" ends too."""
    trial = script(tmp_path, "t.py", WAIT_FOR + "wait_for(sys.argv[1])\n")
    go = {name: tmp_path / f"go-{name}" for name in "abc"}
    runs = {name: make_run(tmp_path, name, ["python", trial, str(go[name])]) for name in "abc"}
    backend.launch(runs["a"])
    backend.launch(runs["b"])
    assert backend.pid("a") is not None and backend.pid("b") is not None
    assert backend.launch_next(runs["c"])
    backend.launch(runs["c"])  # a slot came free elsewhere: "c" starts now
    held = make_run(tmp_path, "d", ["python", "-c", "print('loss=4')"])
    assert backend.launch_next(held)  # no frame read since: the PID of "c" is unanswered
    wait_until(lambda: _starts(runs["c"].trial_dir) == 1)
    go["c"].touch()
    wait_until(lambda: "exit 0" in _pid_lines(held.trial_dir))  # "a" and "b" still run
    assert backend.poll("a") is None and backend.poll("b") is None
    go["a"].touch()
    go["b"].touch()
    backend.launch(held)
    assert wait_exit(backend, "d") == TrialExit(True, 0, "exit code 0")
    assert all(wait_exit(backend, name).succeeded for name in "abc")


def test_killing_the_trial_a_held_one_waits_for_takes_the_held_one_back(
    tmp_path: Path, backend: LocalBackend
) -> None:
    """Reaping a killed trial's main process is not its slot coming free (the rest of its
    group may still be stopping): the held trial is taken back, and ``launch`` starts it."""
    _, held = _hold_one(tmp_path, backend)
    backend.kill("a")
    assert wait_exit(backend, "a").message == "killed"
    # Taken back already (had the reaper started it on reaping "a", it would be started
    # by the time this "cancel" comes: the reaper starts it before it reads again).
    assert backend.withdraw("b")
    assert _starts(held.trial_dir) == 0
    backend.launch(held)
    assert wait_exit(backend, "b") == TrialExit(True, 0, "exit code 0")
    assert _starts(held.trial_dir) == 1


def test_close_takes_a_held_trial_back_before_it_kills_the_running_ones(
    tmp_path: Path,
) -> None:
    for i in range(3):
        folder = tmp_path / str(i)
        folder.mkdir()
        backend = LocalBackend(kill_grace=0.5)
        go = folder / "go"
        trial = script(folder, "t.py", WAIT_FOR + "wait_for(sys.argv[1])\n")
        for name in ("a", "c"):
            backend.launch(make_run(folder, name, ["python", trial, str(go)]))
            assert backend.pid(name) is not None
        held = make_run(folder, "b", ["python", "-c", "print('loss=2')"])
        assert backend.launch_next(held)
        backend.close()
        assert _starts(held.trial_dir) == 0


def test_withdraw_does_not_wait_for_a_reaper_that_was_replaced(tmp_path: Path) -> None:
    """The reaper started the held trial and died before its answer was read; a launch
    then started a new reaper: taking the held trial back must not wait for an answer
    the new reaper will never send (the trial had started)."""
    backend = LocalBackend(kill_grace=0.5)
    try:
        go, held = _hold_one(tmp_path, backend)
        go.touch()  # "a" ends: the reaper starts "b"
        wait_until(lambda: _starts(held.trial_dir) == 1)
        old = backend._reaper
        assert old is not None
        os.kill(old.pid, signal.SIGKILL)
        old.wait(timeout=10)
        backend.launch(make_run(tmp_path, "c", ["python", "-c", "print('loss=3')"]))
        assert backend._reaper is not None and backend._reaper is not old
        start = time.monotonic()
        assert not backend.withdraw("b")  # it had started
        assert time.monotonic() - start < 5
    finally:
        backend.close()
