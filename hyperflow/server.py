"""``hyperflow server``: the control plane in one process.

The API (FastAPI on uvicorn) on ``--host``/``--port``; the KServe-style serving router on
``--serving-port`` (no services in it until inference services are added to the control
plane); one controller thread per running experiment; the machine-wide trial queue.
On start it upgrades the store's schema and resumes every experiment it was running when
it stopped or was killed. Stopping it (SIGINT/SIGTERM) detaches the controllers: running
trials go on and the next start adopts them.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
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


def _warm_up(track: bool) -> None:
    """Import what the first experiment needs in the background, so a submission does not
    wait for optuna (and the MLflow tracker for mlflow)."""
    try:
        import optuna  # noqa: F401

        import tuner.backends.local  # noqa: F401

        if track:
            import mlflow  # noqa: F401
    except Exception:  # a failure shows up where it matters, when an experiment starts
        log.debug("warm-up import failed", exc_info=True)


class TokenGate:
    """Bearer tokens in front of the serving router on a non-loopback bind (the router
    itself knows one static token; the control plane's tokens live in the store)."""

    def __init__(self, app: Any, plane: ControlPlane) -> None:
        self.app = app
        self.plane = plane

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] not in ("/v2/health/live", "/v2/health/ready"):
            from hyperflow.api.deps import bearer
            from hyperflow.handlers.errors import HandlerError

            auth = None
            for name, value in scope["headers"]:
                if name == b"authorization":
                    auth = value.decode("latin-1")
            try:
                self.plane.tokens.authenticate(bearer(auth))
            except HandlerError as exc:
                import orjson

                body = orjson.dumps(exc.body())
                await send(
                    {
                        "type": "http.response.start",
                        "status": exc.status,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def make_app(plane: ControlPlane) -> FastAPI:
    """The API app with a lifespan that resumes experiments and runs the serving router."""
    app = create_app(plane)
    settings = plane.settings

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        from serving.router import Router

        threading.Thread(target=_warm_up, args=(settings.track,), daemon=True).start()
        router = Router()
        plane.router = router
        serving: Any
        if settings.loopback:
            from serving.router.server import router_server

            serving = router_server(router, settings.host, settings.serving_port)
            await serving.start()
        else:
            from serving.server.http import uvicorn_config

            config = uvicorn_config(
                TokenGate(router, plane),
                settings.host,
                settings.serving_port,
                lifespan="off",
                access_log=False,
                log_level="warning",
            )
            serving = uvicorn.Server(config)
            await serving.startup()
        plane.start()
        resumed = [f"{r.namespace}/{r.name}" for r in plane.manager.resumed]
        print(
            f"hyperflow server: API on {settings.local_url()}, serving on port "
            f"{settings.serving_port}, at most {settings.max_running_trials} trials at once, "
            f"store {settings.store_url}"
            + (f"; resumed {len(resumed)} experiments: {', '.join(resumed)}" if resumed else ""),
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
                "trials go on and are adopted on the next start)",
                flush=True,
            )
            if settings.loopback:
                await serving.close()
            else:
                await serving.shutdown()

    app.router.lifespan_context = lifespan
    return app


async def _run_blocking(fn: Any) -> None:
    import asyncio

    await asyncio.to_thread(fn)


def check_bind(settings: ServerSettings, plane: ControlPlane) -> None:
    if not settings.loopback and not plane.tokens.store.any():
        raise ServerError(
            f"binding to {settings.host} (not loopback) needs API tokens: create one first with "
            "`hyperflow token create --namespace NAMESPACE` (or --admin)"
        )


def serve(settings: ServerSettings) -> None:
    """Run until SIGINT/SIGTERM."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
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
