"""The push receiver: an HTTP endpoint on loopback where trials ``report()`` metrics.

``POST /v1/trials/<trial>/observations`` with ``Authorization: Bearer <token>`` and
``{"observations": [{"name": str, "value": number, "step": int | null,
"timestamp": number | null}, ...]}``. Answers:

* 200 ``{"accepted": n}`` only after ``on_observations(trial, observations, key)``
  returned (the controller commits them to its store inside it), so a 200 means
  committed; ``{"accepted": 0, "duplicate": true}`` when it returned False: a request
  with this ``Idempotency-Key`` header was stored before (a retry whose first answer was
  lost, e.g. in a controller crash), so nothing is stored twice;
* 400 bad JSON, bad observations (non-finite values included) or a bad
  ``Idempotency-Key`` (1-64 letters, digits, ``-``, ``_``), 401 bad token, 404 unknown
  trial or path, 405 other methods, 411/413 missing length or a body over ``max_body``
  (1 MiB), 503 if ``on_observations`` raised (not stored: retry) — always a JSON
  ``{"error": ...}`` body.

Tokens are per trial; :meth:`PushReceiver.register` accepts a token the controller
persisted, so trials keep working after the controller restarts on a new port (it then
rewrites the URL file the trials read the URL from).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import math
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from tuner.types import Observation

# (trial, observations, idempotency key or None) -> False if the key was seen before.
OnObservations = Callable[[str, list[Observation], str | None], bool]
_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")

MAX_BODY = 1 << 20
READ_TIMEOUT = 60.0  # seconds without a byte from a client before its connection closes
_NAME_MAX = 253
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1  # what the store's INTEGER column holds
_PREFIX = "/v1/trials/"
_SUFFIX = "/observations"


class PushReceiver:
    def __init__(
        self, on_observations: OnObservations, host: str = "127.0.0.1", max_body: int = MAX_BODY
    ) -> None:
        self.on_observations = on_observations
        self.host = host
        self.max_body = max_body
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url: str | None = None

    def register(self, trial_name: str, token: str | None = None) -> str:
        """Accept pushes for ``trial_name`` with ``token`` (a new random one if None)."""
        token = token or secrets.token_hex(16)
        with self._lock:
            self._tokens[trial_name] = token
        return token

    def unregister(self, trial_name: str) -> None:
        with self._lock:
            self._tokens.pop(trial_name, None)

    def start(self, port: int = 0) -> str:
        """Listen (on a free port unless ``port``) in a daemon thread; return the base URL."""
        if self._server is not None:
            raise RuntimeError("push receiver already started")
        server = _Server((self.host, port), _Handler)
        server.receiver = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.2},
            daemon=True,
            name="hyperflow-push-receiver",
        )
        self._thread.start()
        bound_port = server.server_address[1]
        self.url = f"http://{self.host}:{bound_port}"
        return self.url

    def stop(self) -> None:
        """Stop listening and close open connections; nothing is accepted afterwards."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def write_url_file(self, path: Path) -> None:
        """Write the URL atomically (trials may read it at any moment)."""
        if self.url is None:
            raise RuntimeError("push receiver not started")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(self.url + "\n", encoding="utf-8")
        os.replace(tmp, path)

    def _check_token(self, trial_name: str, token: str) -> int | None:
        """None if accepted, else the HTTP status to answer."""
        with self._lock:
            expected = self._tokens.get(trial_name)
        if expected is None:
            return 404
        if not hmac.compare_digest(expected.encode(), token.encode()):
            return 401
        return None


class _Server(ThreadingHTTPServer):
    """Tracks its connections so ``stop`` can close kept-alive ones: a stopped receiver
    must not go on accepting observations on a connection opened before."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self.stopped = False

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            if self.stopped:
                self.shutdown_request(request)
                return
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            self.stopped = True
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _BadRequest(ValueError):
    pass


def parse_observations(payload: Any, now: float) -> list[Observation]:
    """Observations of a push body; raises ValueError with a message for the client."""
    if not isinstance(payload, dict) or not isinstance(payload.get("observations"), list):
        raise _BadRequest('body must be {"observations": [...]}')
    out: list[Observation] = []
    for item in payload["observations"]:
        if not isinstance(item, dict):
            raise _BadRequest("each observation must be an object")
        name, value = item.get("name"), item.get("value")
        if not isinstance(name, str) or not name:
            raise _BadRequest("observation name must be a non-empty string")
        # What the store's name column holds on every database (PostgreSQL enforces both).
        if len(name) > _NAME_MAX or "\x00" in name:
            raise _BadRequest(
                f"observation name must be at most {_NAME_MAX} characters, without NUL"
            )
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate ("\ud800"): the store cannot keep it
            raise _BadRequest("observation name must be valid Unicode") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _BadRequest(f"metric {name!r}: value must be a number")
        value = _finite(value, f"metric {name!r}: value")
        step = item.get("step")
        if step is not None and (
            isinstance(step, bool)
            or not isinstance(step, int)
            or not _INT64_MIN <= step <= _INT64_MAX
        ):
            raise _BadRequest(f"metric {name!r}: step must be a 64-bit integer or null")
        timestamp = item.get("timestamp")
        if timestamp is None:
            timestamp = now
        elif isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)):
            raise _BadRequest(f"metric {name!r}: timestamp must be a number")
        else:
            timestamp = _finite(timestamp, f"metric {name!r}: timestamp")
        out.append(Observation(name, value, step, timestamp))
    return out


def _finite(number: float, what: str) -> float:
    """``number`` as a finite float; JSON integers too large for a float are refused."""
    try:
        out = float(number)
    except OverflowError:
        raise _BadRequest(f"{what} must be finite") from None
    if not math.isfinite(out):
        raise _BadRequest(f"{what} must be finite")
    return out


def _reject_constant(name: str) -> float:
    raise _BadRequest(f"{name} is not a number")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: report() reuses its connection
    # A client silent this long (idle between requests, or stalled mid-request) loses its
    # connection and handler thread; report() reconnects on its next call.
    timeout = READ_TIMEOUT
    # An unparsable request line is answered with a status line, not HTTP/0.9 style.
    default_request_version = "HTTP/1.1"
    server_version = "hyperflow-push"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the controller logs what matters; per-request lines would flood stderr

    def do_POST(self) -> None:
        receiver: PushReceiver = self.server.receiver  # type: ignore[attr-defined]
        path = self.path.split("?", 1)[0]
        if not (path.startswith(_PREFIX) and path.endswith(_SUFFIX)):
            self._drain_and_answer(404, {"error": f"no such endpoint: POST {path}"})
            return
        trial = unquote(path[len(_PREFIX) : -len(_SUFFIX)])
        length_header = self.headers.get("Content-Length")
        if length_header is None or not (length_header.isascii() and length_header.isdigit()):
            self._answer(411, {"error": "Content-Length required"}, close=True)
            return
        length = int(length_header)
        if length > receiver.max_body:
            self._answer(413, {"error": f"body over {receiver.max_body} bytes"}, close=True)
            return
        body = self.rfile.read(length)
        key = self.headers.get("Idempotency-Key")
        if key is not None and not _KEY.fullmatch(key):
            self._answer(400, {"error": "Idempotency-Key: 1-64 of A-Z a-z 0-9 - _"})
            return
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        status = receiver._check_token(trial, token)
        if status == 404:
            self._answer(404, {"error": f"unknown trial {trial!r}"})
            return
        if status == 401:
            self._answer(401, {"error": "bad or missing bearer token"})
            return
        try:
            payload = json.loads(body, parse_constant=_reject_constant)
            observations = parse_observations(payload, time.time())
        except _BadRequest as exc:
            self._answer(400, {"error": str(exc)})
            return
        except ValueError as exc:
            self._answer(400, {"error": f"bad JSON: {exc}"})
            return
        except RecursionError:  # [[[[...]]]] nested past the interpreter's stack
            self._answer(400, {"error": "bad JSON: nested too deeply"})
            return
        if self.server.stopped:  # type: ignore[attr-defined]
            self._answer(503, {"error": "push receiver is stopping"}, close=True)
            return
        try:
            stored = receiver.on_observations(trial, observations, key)
        except Exception as exc:  # the controller could not commit: the client retries
            self._answer(503, {"error": f"observations not stored: {exc}"})
            return
        if not stored:
            self._answer(200, {"accepted": 0, "duplicate": True})
            return
        self._answer(200, {"accepted": len(observations)})

    def do_GET(self) -> None:
        self._drain_and_answer(405, {"error": "use POST"})

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own answers (bad request line, 414, 431, unknown method, HTTP/2) are
        JSON like every other here; an unknown method is a 405 (not 501) and an unsupported
        HTTP version a 400 (not 505): both are the client's mistake."""
        if code == HTTPStatus.NOT_IMPLEMENTED:
            code, message = HTTPStatus.METHOD_NOT_ALLOWED, "use POST"
        elif code == HTTPStatus.HTTP_VERSION_NOT_SUPPORTED:
            code = HTTPStatus.BAD_REQUEST
        if message is None:
            message = HTTPStatus(code).phrase
        self._answer(code, {"error": message}, close=True)

    def _drain_and_answer(self, status: int, body: dict[str, Any]) -> None:
        # Without reading the body we cannot keep the connection for the next request.
        self._answer(status, body, close=True)

    def _answer(self, status: int, body: dict[str, Any], close: bool = False) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
