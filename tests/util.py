"""Test utilities: free ports, readiness waits, and processes stopped by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from tuner.pids import process_state

REPO = Path(__file__).resolve().parent.parent
# Katib's and KServe's own sample files, beside the repository on CI; a user's clone has
# none, so tests that read them skip (``needs_shared``) instead of failing.
SHARED = REPO.parent / "shared"


def needs_shared(folder: str) -> pytest.MarkDecorator:
    """Skip the test when ``../shared/<folder>`` is absent (a fresh clone), saying why."""
    return pytest.mark.skipif(
        not (SHARED / folder).is_dir(),
        reason=f"{SHARED / folder} is absent (the shared example folders are not in a clone)",
    )


def pid_running(pid: int) -> bool:
    """Whether ``pid`` runs: a zombie nobody reaped yet counts as gone.

    Uses ``tuner.pids.process_state``, which also treats a process reaped between the
    open and the read of ``/proc/<pid>/stat`` (ESRCH) as gone.
    """
    return process_state(pid) not in (None, "Z", "X")


def write_script(path: Path, text: str) -> None:
    """Write a trial script that trials may be starting from right now (an experiment
    helper called again for a second experiment in the same folder): unchanged, it is
    left alone; changed, it is replaced whole (``os.replace``), never truncated under a
    ``python`` that is reading it (which would run an empty script and exit 0)."""
    if path.exists() and path.read_text() == text:
        return
    fresh = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fresh.write_text(text)
    os.replace(fresh, path)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    predicate: Callable[[], bool], timeout: float = 30.0, interval: float = 0.02
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout}s")


def wait_http_ok(
    url: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll ``url`` until it answers 200; fail fast if ``proc`` exits first."""

    def ready() -> bool:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} was ready")
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, timeout=timeout, interval=0.05)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Stop exactly this process (and its process group if it leads one)."""
    if proc.poll() is not None:
        return
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        return
    sig_target = pgid if pgid == proc.pid else None
    with contextlib.suppress(ProcessLookupError):
        if sig_target:
            os.killpg(sig_target, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            if sig_target:
                os.killpg(sig_target, signal.SIGKILL)
            else:
                proc.kill()
        proc.wait(timeout=timeout)


@contextlib.contextmanager
def running(
    args: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None, **kw: object
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``args`` in its own process group; always stop it (by PID) on exit."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.Popen(
        list(args),
        env=full_env,
        cwd=cwd,
        start_new_session=True,
        **kw,  # type: ignore[arg-type]
    )
    try:
        yield proc
    finally:
        stop_process(proc)


def hyperflow_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "hyperflow", *args]


def run_hyperflow(
    *args: str, timeout: float = 60, columns: int = 400
) -> subprocess.CompletedProcess[str]:
    """``hyperflow ARGS`` run from the repository to the end, output as text. rich wraps at
    80 columns when not on a terminal: ``COLUMNS`` keeps each message on one line."""
    return subprocess.run(
        hyperflow_cmd(*args),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": str(columns)},
    )


class Feed:
    """A FIFO being filled: ``path``, and how many bytes the reader took (``written``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.written = 0


@contextlib.contextmanager
def feeding_fifo(path: Path, size: int) -> Iterator[Feed]:
    """A FIFO at ``path`` that a thread fills with ``size`` bytes of YAML comment lines: a
    file whose size (0) says nothing, as a device's. A finite one, so code that reads to
    the end (unlike ``/dev/zero``) still ends. Whatever the reader did, the writer ends."""
    os.mkfifo(path)
    feed = Feed(path)
    line = b"#" + b"x" * 1022 + b"\n"

    def fill() -> None:
        try:
            with path.open("wb", buffering=0) as f:
                while feed.written < size:
                    feed.written += f.write(line[: size - feed.written])
        except BrokenPipeError:  # the reader stopped reading: what a cap does
            pass

    writer = threading.Thread(target=fill, daemon=True)
    writer.start()
    try:
        yield feed
    finally:
        deadline = time.monotonic() + 30
        while writer.is_alive() and time.monotonic() < deadline:
            # Not read to the end (or never opened): a reader that leaves at once lets the
            # writer's open return and its next write fail.
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
            writer.join(0.05)
        assert not writer.is_alive()
