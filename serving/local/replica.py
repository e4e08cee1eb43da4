"""One replica process: started in its own process group, probed, stopped by its PID.

States: ``starting`` (process up, model not ready yet) -> ``ready`` (``/v2/health/ready``
answered 200) or ``failed`` (the replica answered 503 with an ``{"error": ...}`` reason:
its model could not load; the process is kept so the reason stays visible instead of a
crash loop) -> ``exited`` (the process died; the deployer replaces it with backoff).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import errno
import os
import random
import secrets
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO

import httpx


class ReplicaState(StrEnum):
    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"
    EXITED = "exited"


# The token every replica this process starts wants, and the router of this process sends
# (in place of the client's ``authorization``). Replicas listen on loopback, where any
# local user could otherwise call a model past the router's token and namespace checks.
# One per process: replicas are its children and end with it.
_REPLICA_TOKEN = secrets.token_urlsafe(32)


def replica_authorization() -> bytes:
    """The ``authorization`` header value of a request to this process's replicas."""
    return b"Bearer " + _REPLICA_TOKEN.encode()


def _replica_env(env: dict[str, str] | None) -> dict[str, str]:
    return {**os.environ, **(env or {}), "HYPERFLOW_REPLICA_TOKEN": _REPLICA_TOKEN}


@dataclass(frozen=True)
class Listener:
    """A replica's socket, bound by the deployer and inherited by the replica process as
    file descriptor ``fd`` (``--fd``): no other process can take the port meanwhile."""

    host: str
    port: int
    fd: int


def parse_port_range(text: str) -> range:
    """``"30000-30999"`` (inclusive) -> ``range(30000, 31000)``; ValueError naming it."""
    low, sep, high = text.strip().partition("-")
    try:
        first, last = int(low), int(high if sep else low)
    except ValueError:
        raise ValueError(f"a port range is FIRST-LAST, e.g. 30000-30999, got {text!r}") from None
    if not 1 <= first <= last <= 65535:
        raise ValueError(f"ports must satisfy 1 <= FIRST <= LAST <= 65535, got {text!r}")
    return range(first, last + 1)


def bind_listener(host: str = "127.0.0.1", ports: range | None = None) -> socket.socket:
    """A TCP socket bound (not yet listening) to ``host`` on a free port: one the kernel
    picks, or the first free one of ``ports`` from a random start. Bound without
    SO_REUSEADDR, so the port is this socket's alone until it is closed."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if ports is None:
        candidates: Sequence[int] = [0]
    else:
        start = random.randrange(len(ports))
        candidates = [*ports[start:], *ports[:start]]
    for port in candidates:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.EADDRINUSE, errno.EACCES) and ports is not None:
                continue
            raise
        return sock
    assert ports is not None
    raise OSError(errno.EADDRINUSE, f"no free port in {ports.start}-{ports.stop - 1} on {host}")


def _parent_death_signal() -> Callable[[], None] | None:
    """A pre-exec hook that has Linux SIGTERM the replica if the runner dies.

    A runner that is SIGKILLed cannot stop its replicas; the kernel can
    (``PR_SET_PDEATHSIG``), so even then no replica outlives it. None elsewhere.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    prctl = libc.prctl
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)

    return hook


_PREEXEC = _parent_death_signal()


class ReplicaProcess:
    """A replica's OS process and what its probes last said."""

    def __init__(
        self, argv: Sequence[str], host: str, port: int, log_path: Path | None = None
    ) -> None:
        self.argv = list(argv)
        self.host = host
        self.port = port
        self.log_path = log_path
        self.state = ReplicaState.STARTING
        self.reason: str | None = None
        self.proc: asyncio.subprocess.Process | None = None
        self.started_at = time.monotonic()
        self.ready_at: float | None = None
        self.probe_failures = 0
        # Its model failed to load, and its process was stopped by the deployer: it stays
        # in the revision as a failed replica (not restarted, its reason kept).
        self.stopped_failed = False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    async def start(self, env: dict[str, str] | None = None, pass_fds: Sequence[int] = ()) -> None:
        out: int | IO[bytes] = asyncio.subprocess.DEVNULL
        log = None
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
            out = log
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                # Local replicas want this process's token, which its router sends.
                env=_replica_env(env),
                # Its own group: Ctrl-C in the terminal reaches only the runner, which
                # then stops each replica itself, and a stop reaches the replica's children.
                start_new_session=True,
                preexec_fn=_PREEXEC,
                pass_fds=tuple(pass_fds),  # the listening socket the deployer bound
            )
        finally:
            if log is not None:
                log.close()
        self.started_at = time.monotonic()

    def exited(self) -> bool:
        if self.proc is None or self.proc.returncode is not None:
            if self.state is not ReplicaState.EXITED:
                self.state = ReplicaState.EXITED
                code = self.proc.returncode if self.proc is not None else None
                self.reason = self.reason or _exit_reason(code)
            return True
        return False

    async def probe(self, client: httpx.AsyncClient) -> ReplicaState:
        """Ask ``/v2/health/ready`` and update the state (no-op once exited)."""
        if self.exited():
            return self.state
        url = f"http://{self.host}:{self.port}/v2/health/ready"
        try:
            r = await client.get(url, timeout=2.0)
        except httpx.HTTPError:
            # Not listening yet while starting; a ready replica that stops answering
            # twice in a row is taken out of rotation until it answers again.
            if self.state is ReplicaState.READY:
                self.probe_failures += 1
                if self.probe_failures >= 2:
                    self.state = ReplicaState.STARTING
            return self.state
        self.probe_failures = 0
        if r.status_code == 200:
            if self.state is not ReplicaState.READY:
                self.ready_at = time.monotonic()
            self.state = ReplicaState.READY
            self.reason = None
            return self.state
        reason = _error_reason(r)
        if reason is not None:
            self.state = ReplicaState.FAILED
            self.reason = reason
        elif self.state is ReplicaState.READY:
            self.state = ReplicaState.STARTING
        return self.state

    async def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM this replica's process group, SIGKILL after ``timeout``; reap it."""
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        self.state = ReplicaState.EXITED
        self.reason = self.reason or "stopped"


def _error_reason(r: httpx.Response) -> str | None:
    """The load-failure reason from a not-ready answer, or None if it is still loading."""
    try:
        body = r.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    err = body.get("error")
    if not isinstance(err, str) or not err:
        return None
    # Replicas answer {"error": "...loading..."} while the model is still loading.
    if "loading" in err.lower() and "fail" not in err.lower():
        return None
    return err


def _exit_reason(code: int | None) -> str:
    """``process exited with code 3``, or ``process was killed by SIGKILL``."""
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"process was killed by {name}"
    return f"process exited with code {code}"
