"""``hyperflow server``: the control plane in one process.

The API (FastAPI on uvicorn) on ``--host``/``--port``; the KServe-style serving router on
``--serving-port`` with every inference service (its own thread and event loop); one
controller thread per running experiment; the machine-wide trial queue. On start it
upgrades the store's schema, resumes every experiment it was running when it stopped or
was killed and runs every stored inference service again (after stopping the replicas a
killed predecessor left). Stopping it (SIGINT/SIGTERM) detaches the controllers (running
trials go on and the next start adopts them) and stops the replicas.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI

from hyperflow.api.app import create_app
from hyperflow.plane import ControlPlane, build
from hyperflow.settings import ServerSettings

log = logging.getLogger("hyperflow.server")


class ServerError(RuntimeError):
    """The server cannot start (another one runs on this store, no tokens off loopback)."""


@contextlib.contextmanager
def single_server(settings: ServerSettings) -> Iterator[None]:
    """One server per hyperflow home: two would both resume the same experiments."""
    settings.ensure_home()
    path = settings.home / "server.lock"
    with open(path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            other = lock.read().strip() or "?"
            raise ServerError(
                f"another hyperflow server (pid {other}) is running on {settings.home}"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _warm_up(track: bool, backend: str = "local") -> None:
    """Import what the first experiment needs in the background, so a submission does not
    wait for optuna (and the MLflow tracker for mlflow)."""
    try:
        import importlib

        import optuna  # noqa: F401

        from tuner.backends import BACKENDS

        importlib.import_module(BACKENDS.get(backend, BACKENDS["local"]))

        if track:
            import mlflow  # noqa: F401
    except Exception:  # a failure shows up where it matters, when an experiment starts
        log.debug("warm-up import failed", exc_info=True)


def make_app(plane: ControlPlane) -> FastAPI:
    """The API app with a lifespan that resumes experiments and runs the serving router."""
    app = create_app(plane)
    settings = plane.settings

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        threading.Thread(
            target=_warm_up, args=(settings.track, settings.backend), daemon=True
        ).start()
        try:
            await _run_blocking(plane.start)
        except OSError as exc:
            message = f"cannot serve inference services on port {settings.serving_port}: {exc}"
            print(f"error: {message}", file=sys.stderr, flush=True)
            raise ServerError(message) from None
        resumed = [f"{r.namespace}/{r.name}" for r in plane.manager.resumed]
        services = len(plane.services.router.namespaced)
        reaped = plane.services.stopped_at_start
        print(
            f"hyperflow server: API on {settings.local_url()}, serving on port "
            f"{settings.serving_port}, at most {settings.max_running_trials} trials at once, "
            f"store {_shown_url(settings.store_url)}"
            + (f"; resumed {len(resumed)} experiments: {', '.join(resumed)}" if resumed else "")
            + (f"; {services} inference services" if services else "")
            + (
                f"; stopped {len(reaped)} replicas of the previous server (pids "
                f"{', '.join(map(str, reaped))})"
                if reaped
                else ""
            ),
            flush=True,
        )
        pipelines = plane.pipeline_manager
        if pipelines is not None and pipelines.resumed:
            names = ", ".join(f"{r.namespace}/{r.name}" for r in pipelines.resumed)
            print(f"hyperflow server: resumed pipeline runs: {names}", flush=True)
        try:
            yield
        finally:
            running = plane.manager.running_count()
            runs = plane.pipeline_manager.running_count() if plane.pipeline_manager else 0
            await _run_blocking(plane.close)
            if runs:
                print(
                    f"hyperflow server: {runs} running pipeline runs detached (resumed on the "
                    "next start)",
                    flush=True,
                )
            print(
                f"hyperflow server: stopped; {running} running experiments detached (their "
                "trials go on and are adopted on the next start); inference services stopped "
                "(they run again on the next start)",
                flush=True,
            )

    app.router.lifespan_context = lifespan
    return app


def _shown_url(url: str) -> str:
    """The store's URL for the log: a PostgreSQL password is shown as ``***``."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


async def _run_blocking(fn: Any) -> None:
    import asyncio

    await asyncio.to_thread(fn)


def check_bind(settings: ServerSettings, plane: ControlPlane) -> None:
    if not settings.loopback and not plane.tokens.store.any():
        raise ServerError(
            f"binding to {settings.host} (not loopback) needs API tokens: create one first with "
            "`hyperflow token create --namespace NAMESPACE` (or --admin)"
        )
    # Said before anything starts, in one line (uvicorn would log its own error for the
    # API's port after the start, and the serving router's start binds its port for good).
    _probe(settings.host, settings.port, "serve the API", "--port")
    _probe(settings.host, settings.serving_port, "serve inference services", "--serving-port")


def _probe(host: str, port: int, what: str, option: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ServerError(
                f"cannot {what} on {host}:{port}: {exc.strerror or exc} (choose another {option})"
            ) from None


def serve(settings: ServerSettings) -> None:
    """Run until SIGINT/SIGTERM."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # One line per replica probe (every 50 ms while a model loads) is not news; the
    # inference services' events (hyperflow get isvc -w, describe isvc) are.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # alembic's set-up of its plugins, one line each at every start; an upgrade it runs
    # (alembic.runtime.migration) is still logged.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    with single_server(settings):
        plane = build(settings)
        check_bind(settings, plane)
        from serving.server.http import uvicorn_config

        config = uvicorn_config(
            make_app(plane),
            settings.host,
            settings.port,
            lifespan="on",
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        server.run()
        if not server.started:
            sys.exit(1)
