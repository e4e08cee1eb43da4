"""Router/activator: one ASGI app routing V1/V2 inference by model name to replicas,
splitting canary traffic, holding requests while a revision scales up from zero."""

from __future__ import annotations

from serving.router.app import PATH_PREFIX, Router, prefixed_url, target_namespace
from serving.router.pool import DEFAULT_NAMESPACE, Endpoint, RevisionPool, Unavailable
from serving.router.server import asgi_server, router_server, serve_router
from serving.router.service import CANARY, DEFAULT, RoutedService
from serving.router.split import TrafficSplit
from serving.router.upstream import ConnectError, UpstreamError, UpstreamPool

__all__ = [
    "CANARY",
    "DEFAULT",
    "DEFAULT_NAMESPACE",
    "PATH_PREFIX",
    "ConnectError",
    "Endpoint",
    "RevisionPool",
    "RoutedService",
    "Router",
    "TrafficSplit",
    "Unavailable",
    "UpstreamError",
    "UpstreamPool",
    "asgi_server",
    "prefixed_url",
    "router_server",
    "serve_router",
    "target_namespace",
]
