"""``report()``: a trial pushes its metrics to the controller (Katib's Push collector).

Usage inside a trial (a command trial run by hyperflow, or an SDK function trial)::

    from tuner.report import report

    for epoch in range(10):
        ...
        report(step=epoch, loss=loss, accuracy=accuracy)

Each call sends one observation per metric, stamped with the current time, and returns
once the controller has committed them. Exactly once: every call carries its own
``Idempotency-Key``, which the controller commits with the values, so a call retried
after a lost answer (the controller died between committing and answering) is not
stored twice.

Transport, in order:

1. an in-process sink installed with :func:`set_sink` (the function-trial worker);
2. HTTP POST to ``$HYPERFLOW_PUSH_URL/trials/<trial>/observations``: the control
   plane's API route for the trial's experiment (``hyperflow server`` sets it; its
   address does not change across restarts, so no file is needed and a trial on another
   machine can report);
3. otherwise HTTP POST to the push receiver of an ``experiment run`` controller: its URL
   is read from the file named by ``$HYPERFLOW_PUSH_URL_FILE`` (re-read after every
   connection failure, because a restarted controller listens on a new port).

The trial is ``$HYPERFLOW_TRIAL_NAME``, the bearer token ``$HYPERFLOW_PUSH_TOKEN``.
Connection failures and 503s are retried with backoff for up to
``$HYPERFLOW_PUSH_RETRY_SECONDS`` (default 60) seconds.

This module imports only the standard library (and ``http.client`` on first use), so
importing it costs a trial nothing.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    import http.client

    from tuner.types import Observation

__all__ = ["PushError", "report", "set_sink"]

Sink = Callable[[list["Observation"]], None]

_sink: Sink | None = None
_lock = threading.Lock()
_conn: http.client.HTTPConnection | None = None
_conn_url: str | None = None

_TIMEOUT = 60.0  # per request; the controller answers after committing to its store


class PushError(RuntimeError):
    """The push receiver refused the observations (bad token, unknown trial, ...)."""


def set_sink(sink: Sink | None) -> None:
    """Route :func:`report` to ``sink`` (a list of Observations per call); None removes it."""
    global _sink
    _sink = sink


def report(step: int | None = None, **metrics: float) -> None:
    """Report ``metrics`` (name=value, finite numbers) at ``step`` (optional, an int).

    Raises ``ValueError`` for a value that is not a finite number (naming the metric) or
    a bad step, ``RuntimeError`` when called outside a trial, :class:`PushError` when the
    receiver refuses or stays unreachable.
    """
    if not metrics:
        raise ValueError("report() needs at least one metric, e.g. report(loss=0.3)")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
        raise ValueError(f"step must be an int or None, not {step!r}")
    values: dict[str, float] = {}
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            try:
                value = float(value)  # numpy scalars and other numbers
            except (TypeError, ValueError):
                raise ValueError(f"metric {name!r} must be a number, not {value!r}") from None
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"metric {name!r} must be a finite number, not {number}")
        values[name] = number
    now = time.time()
    sink = _sink
    if sink is not None:
        from tuner.types import Observation

        sink([Observation(name, v, step, now) for name, v in values.items()])
        return
    _post(
        [{"name": name, "value": v, "step": step, "timestamp": now} for name, v in values.items()]
    )


def _post(observations: list[dict[str, Any]]) -> None:
    push_url = os.environ.get("HYPERFLOW_PUSH_URL")
    url_file = os.environ.get("HYPERFLOW_PUSH_URL_FILE")
    trial = os.environ.get("HYPERFLOW_TRIAL_NAME")
    if not (push_url or url_file) or not trial:
        raise RuntimeError(
            "tuner.report.report() called outside a hyperflow trial: "
            "HYPERFLOW_PUSH_URL (or HYPERFLOW_PUSH_URL_FILE) and HYPERFLOW_TRIAL_NAME are not "
            "set (set the experiment's metricsCollectorSpec collector kind to Push)"
        )
    token = os.environ.get("HYPERFLOW_PUSH_TOKEN", "")
    body = json.dumps({"observations": observations}).encode()
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {token}",
        "Idempotency-Key": uuid.uuid4().hex,  # the same on every retry of this call
    }
    if push_url:
        base = push_url.rstrip("/")
        path = f"{urlsplit(base).path}/trials/{quote(trial, safe='')}/observations"
        source: str | None = None
    else:
        base, source = "", url_file
        path = f"/v1/trials/{quote(trial, safe='')}/observations"
    deadline = time.monotonic() + float(os.environ.get("HYPERFLOW_PUSH_RETRY_SECONDS", "60"))
    delay = 0.02
    with _lock:
        while True:
            try:
                status, text = _send(base, source, path, body, headers)
            except OSError as exc:  # refused, reset, timed out, no URL file yet
                _drop_connection()
                if time.monotonic() + delay > deadline:
                    raise PushError(f"push receiver unreachable: {exc}") from exc
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            if status == 200:
                return
            if status == 503 and time.monotonic() + delay <= deadline:
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            raise PushError(f"push receiver answered {status}: {_error_text(text)}")


def _send(
    base: str, url_file: str | None, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    """POST to ``base`` (or the URL in ``url_file``, read when connecting)."""
    global _conn, _conn_url
    import http.client

    if _conn is None:
        url = base
        if url_file is not None:
            with open(url_file, encoding="utf-8") as f:
                url = f.read().strip()
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise OSError(f"bad push URL {url!r}" + (f" in {url_file}" if url_file else ""))
        _conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=_TIMEOUT)
        _conn_url = url
    try:
        _conn.request("POST", path, body=body, headers=headers)
        response = _conn.getresponse()
        text = response.read()
    except http.client.HTTPException as exc:  # e.g. RemoteDisconnected, BadStatusLine
        raise OSError(str(exc)) from exc
    if response.will_close:
        _drop_connection()
    return response.status, text


def _drop_connection() -> None:
    global _conn, _conn_url
    if _conn is not None:
        _conn.close()
    _conn, _conn_url = None, None


def _error_text(text: bytes) -> str:
    try:
        return str(json.loads(text)["error"])
    except (ValueError, KeyError, TypeError):
        return text[:200].decode("utf-8", errors="replace")
