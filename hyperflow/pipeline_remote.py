"""``hyperflow pipeline list|get|describe|logs|delete`` through the control plane.

:func:`connect` is what :func:`pipelines.cli.use_server` calls: the server's runs when a
server answers at ``--server`` / ``HYPERFLOW_SERVER`` / http://127.0.0.1:8080, else None
(the commands then read the local store). Whether one answers is one TCP connect
(milliseconds; httpx is imported only when it does).
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit


def _answers(url: str, timeout: float = 0.3) -> bool:
    parts = urlsplit(url)
    if not parts.hostname:
        return False
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


class ServerRuns:
    """The API's pipeline runs, as the read commands want them."""

    def __init__(self, server: str, token: str | None) -> None:
        from hyperflow.client import Client

        self.client = Client(server=server, token=token)

    def _call(self, fn: Any, *args: Any) -> Any:
        from hyperflow.client import ApiError

        try:
            return fn(*args)
        except ApiError as exc:
            if exc.status == 404:
                raise LookupError(exc.message) from None
            raise

    def list(self, namespace: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call(self.client.list_runs, namespace)
        return result

    def get(self, name: str, namespace: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call(self.client.get_run, name, namespace)
        return result

    def logs(self, name: str, task: str | None, namespace: str) -> bytes:
        result: bytes = self._call(self.client.run_logs, name, task, namespace)
        return result

    def delete(self, name: str, namespace: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call(self.client.delete_run, name, namespace)
        return result


def connect(server: str | None, token: str | None) -> ServerRuns | None:
    from hyperflow.client.client import server_url  # httpx: only for the commands that read

    url = server_url(server)  # InvalidServer (one line) for an address that is no URL
    if not _answers(url):
        return None
    return ServerRuns(url, token)
