"""The control plane's settings: one typed object (``HYPERFLOW_`` environment variables
and the ``hyperflow server`` options)."""

from __future__ import annotations

import ipaddress
import os

from pydantic import Field

from tuner.settings import TunerSettings


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServerSettings(TunerSettings):
    host: str = "127.0.0.1"
    port: int = 8080
    serving_port: int = 8081
    max_running_trials: int = Field(default_factory=lambda: os.cpu_count() or 1)
    # Request bodies above this are refused with 413 (pushed metrics: 1 MiB).
    max_body_bytes: int = 3 * 1024 * 1024
    # Log MLflow runs of the experiments the server runs (HYPERFLOW_TRACK=false: none).
    track: bool = True
    # The serving router's address as clients reach it (``status.url`` of a service, as
    # KServe's external URL; ``status.address.url`` stays the local one). Default:
    # http://HOST:SERVING_PORT, with this machine's host name on a wildcard bind.
    serving_url: str | None = None
    # Where users open the MLflow UI (``mlflow ui`` / ``mlflow server``): the web UI links
    # runs there. Default: the tracking URI when it is an http(s) server, else no link.
    mlflow_ui_url: str | None = None
    # The API's URL as trials reach it (the Push collector's ``report()``): default this
    # machine's loopback URL (``local_url``); a server whose trials run elsewhere
    # (Kubernetes Jobs, a Ray cluster) sets its Service's, e.g. http://hyperflow-server:8080.
    push_base_url: str | None = None

    def mlflow_ui(self) -> str | None:
        url = self.mlflow_ui_url or self.tracking_uri
        return url.rstrip("/") if url.startswith(("http://", "https://")) else None

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    def public_serving_url(self) -> str:
        """The serving router's base URL for clients (``--serving-url``, else from the bind)."""
        if self.serving_url:
            return self.serving_url.rstrip("/")
        host = self.host
        if host in ("0.0.0.0", "", "::"):
            import socket

            host = socket.gethostname() or ("::1" if host == "::" else "127.0.0.1")
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.serving_port}"

    def trial_url(self) -> str:
        """The URL trials reach the API at (their push route's base)."""
        return (self.push_base_url or self.local_url()).rstrip("/")

    def local_url(self) -> str:
        """The URL processes on this machine (trials) reach the API at."""
        host = self.host
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"
