"""Run the router on uvicorn (uvloop + httptools, no access log: it is the hot path)."""

from __future__ import annotations

import ipaddress

import uvicorn

from serving.router.app import Router


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def router_server(router: Router, host: str = "127.0.0.1", port: int = 8080) -> uvicorn.Server:
    """A uvicorn server for ``router``; refuses a non-loopback bind without a token."""
    if not is_loopback(host) and router.token is None:
        raise ValueError(f"binding to {host} (not loopback) requires a token")
    config = uvicorn.Config(
        router,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
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
    await router_server(router, host, port).serve()
