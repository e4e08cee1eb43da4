"""Static files of the web UI: its own scripts and styles (``hyperflow/ui/static``) and
plotly.js read from the installed ``plotly`` package (never copied into the repository).

Each file is read once, gzipped once, and served with an ETag: a page load after the first
costs a 304 per file (plotly.js, whose URL carries its version, is cached for a day).
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from dataclasses import dataclass
from importlib import resources
from importlib.metadata import version

from starlette.requests import Request
from starlette.responses import Response

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
}
PLOTLY = "plotly.min.js"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes
    etag: str
    media_type: str


def plotly_version() -> str:
    return version("plotly")


class Assets:
    """The UI's files by name (only names listed at start are served: no path escapes)."""

    def __init__(self) -> None:
        self._static = resources.files("hyperflow.ui") / "static"
        self._names = {
            entry.name
            for entry in self._static.iterdir()
            if entry.is_file() and any(entry.name.endswith(ext) for ext in _TYPES)
        }
        self._cache: dict[str, Asset] = {}
        self._lock = threading.Lock()

    def names(self) -> set[str]:
        return {*self._names, PLOTLY}

    def get(self, name: str) -> Asset | None:
        with self._lock:
            cached = self._cache.get(name)
        if cached is not None:
            return cached
        if name == PLOTLY:
            body = (resources.files("plotly") / "package_data" / PLOTLY).read_bytes()
        elif name in self._names:
            body = (self._static / name).read_bytes()
        else:
            return None
        ext = name[name.rfind(".") :]
        asset = Asset(
            body,
            gzip.compress(body, compresslevel=9, mtime=0),
            '"' + hashlib.sha256(body).hexdigest()[:20] + '"',
            _TYPES[ext],
        )
        with self._lock:
            self._cache[name] = asset
        return asset

    def fingerprint(self) -> str:
        """Changes when any of the UI's own files does (the page's cache-busting query)."""
        digest = hashlib.sha256()
        for name in sorted(self._names):
            asset = self.get(name)
            assert asset is not None
            digest.update(asset.etag.encode())
        return digest.hexdigest()[:12]

    def response(self, request: Request, name: str) -> Response | None:
        asset = self.get(name)
        if asset is None:
            return None
        cache = "public, max-age=86400, immutable" if name == PLOTLY else "no-cache"
        headers = {"etag": asset.etag, "cache-control": cache, "vary": "accept-encoding"}
        if request.headers.get("if-none-match") == asset.etag:
            return Response(status_code=304, headers=headers)
        body = asset.body
        if "gzip" in request.headers.get("accept-encoding", ""):
            body = asset.gzipped
            headers["content-encoding"] = "gzip"
        return Response(body, media_type=asset.media_type, headers=headers)
