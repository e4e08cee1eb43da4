"""Binding the router: the httptools front end (default) or uvicorn for the ASGI app."""

from __future__ import annotations

import ipaddress

import uvicorn

from serving.router.app import Router
from serving.router.http import RouterServer
from serving.server.http import uvicorn_config


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(router: Router, host: str) -> None:
    """Refuse a non-loopback bind without a token."""
    if not is_loopback(host) and router.token is None:
        raise ValueError(f"binding to {host} (not loopback) requires a token")


def router_server(router: Router, host: str = "127.0.0.1", port: int = 8080) -> RouterServer:
    """The router's own HTTP/1.1 server (what ``serve run`` uses); call ``await start()``."""
    check_bind(router, host)
    return RouterServer(router, host, port)


def asgi_server(router: Router, host: str = "127.0.0.1", port: int = 8080) -> uvicorn.Server:
    """The same router as an ASGI app on uvicorn (uvloop + httptools, no access log)."""
    check_bind(router, host)
    config = uvicorn_config(
        router,
        host,
        port,
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=75,
        backlog=4096,
        # The replica's own Date/Server headers pass through; adding ours would double them.
        server_header=False,
        date_header=False,
    )
    return uvicorn.Server(config)


async def serve_router(router: Router, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve until cancelled."""
    import asyncio

    server = router_server(router, host, port)
    await server.start()
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()
