"""A real PostgreSQL server for the tests: Debian's ``postgresql`` package, a cluster made
with ``initdb`` in a temporary folder, started on a free port and stopped by its PID.

One cluster per test session (``postgres_cluster`` in ``tests/conftest.py``); each test
that needs a store gets a database of its own (:meth:`PostgresCluster.new_database`).
``initdb`` refuses to run as root: as root the cluster runs as the ``postgres`` user the
package creates (its folder is handed to that user).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.version import Version

from tests.util import free_port


def find_bindir() -> Path | None:
    """The newest installed PostgreSQL's ``bin`` folder (``/usr/lib/postgresql/N/bin``)."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    if not found:
        return None
    return max(found, key=lambda p: Version(p.parent.name))


class PostgresUnavailable(RuntimeError):
    pass


@dataclass
class PostgresCluster:
    bindir: Path
    root: Path
    port: int
    _proc: subprocess.Popen[bytes] | None = None
    _user: dict[str, Any] = field(default_factory=dict)
    _databases: int = 0

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls) -> PostgresCluster:
        bindir = find_bindir()
        if bindir is None:
            raise PostgresUnavailable(
                "PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb): "
                "`make test` installs Debian's postgresql package (scripts/system-deps.sh)"
            )
        # Not under pytest's tmp_path: as root, that folder is closed to the postgres user.
        root = Path(tempfile.mkdtemp(prefix="hyperflow-pg-"))
        cluster = cls(bindir=bindir, root=root, port=free_port())
        try:
            cluster._init()
            cluster._run()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _init(self) -> None:
        self.socket_dir.mkdir()
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            self._user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
            for path in (self.root, self.socket_dir):
                os.chown(path, user.pw_uid, user.pw_gid)
        subprocess.run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            cwd=self.root,
            **self._user,
        )

    def _run(self) -> None:
        log = open(self.root / "server.log", "wb")  # noqa: SIM115 - closed with the process
        if self._user:
            os.chown(self.root / "server.log", self._user["user"], self._user["group"])
        self._proc = subprocess.Popen(
            [
                str(self.bindir / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self.socket_dir}",
                # A throwaway cluster: durability across an OS crash is not under test
                # (a killed *client* loses nothing acknowledged either way).
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
            start_new_session=True,
            **self._user,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise PostgresUnavailable(
                    f"postgres exited with {self._proc.returncode}: "
                    + (self.root / "server.log").read_text(errors="replace")[-2000:]
                )
            ready = subprocess.run(
                [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise PostgresUnavailable("postgres did not accept connections within 60 s")

    def new_database(self, prefix: str = "test") -> str:
        """A fresh, empty database; its SQLAlchemy URL."""
        import psycopg

        self._databases += 1
        name = f"{prefix}_{os.getpid()}_{self._databases}"
        with psycopg.connect(self.url(driver="postgresql"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        import psycopg

        name = url.rsplit("/", 1)[-1]
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(self.url(driver="postgresql"), autocommit=True) as conn,
        ):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Fast shutdown (SIGINT) of exactly the postmaster this cluster started."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)
