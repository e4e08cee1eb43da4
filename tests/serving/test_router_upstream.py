"""A minimal replica stand-in for router tests (no test functions live here).

Run as ``python tests/serving/test_router_upstream.py --isvc-json J --revision R --host H
--port P [--fd N] [--base-dir D]`` — the same arguments as ``serving.replica`` — so the local
replica manager can spawn it. It is a raw ASGI app on uvicorn that answers the V2 health
endpoints and echoes inference requests with its identity, so tests can see which
replica and revision served. Environment knobs: ``UPSTREAM_READY_DELAY`` (seconds before
ready, a model load), ``UPSTREAM_FAIL`` (stay not ready with this reason),
``UPSTREAM_SLEEP`` (seconds per inference, to build concurrency).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time


def make_app(name: str, revision: str, port: int):  # type: ignore[no-untyped-def]
    started = time.monotonic()
    delay = float(os.environ.get("UPSTREAM_READY_DELAY", "0"))
    fail = os.environ.get("UPSTREAM_FAIL")
    sleep = float(os.environ.get("UPSTREAM_SLEEP", "0"))

    def ready() -> bool:
        return fail is None and time.monotonic() - started >= delay

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            msg = await receive()
            body += msg.get("body", b"")
            more = msg.get("more_body", False)
        path = scope["path"]
        status = 200
        if path == "/v2/health/live":
            out: dict[str, object] = {"live": True}
        elif path in ("/v2/health/ready", f"/v2/models/{name}/ready"):
            status = 200 if ready() else 503
            out = {"ready": ready()} if ready() else {"error": fail or "loading"}
        elif path.startswith(f"/v2/models/{name}") or path.startswith(f"/v1/models/{name}"):
            if sleep:
                await asyncio.sleep(sleep)
            headers = {k.decode(): v.decode() for k, v in scope["headers"]}
            out = {
                "model_name": name,
                "revision": revision,
                "port": port,
                "pid": os.getpid(),
                "method": scope["method"],
                "path": path,
                "query": scope["query_string"].decode(),
                "body_len": len(body),
                "body_sha": __import__("hashlib").sha256(body).hexdigest(),
                "binary_header": headers.get("inference-header-content-length"),
                "has_auth": "authorization" in headers,
            }
        else:
            status = 404
            out = {"error": "not found"}
        data = json.dumps(out).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"x-upstream", b"1")],
            }
        )
        await send({"type": "http.response.body", "body": data})

    return app


if __name__ == "__main__":
    import uvicorn

    ap = argparse.ArgumentParser()
    ap.add_argument("--isvc-json", required=True)
    ap.add_argument("--revision", default="default")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--fd", type=int, default=None)
    ap.add_argument("--base-dir", default=".")
    a = ap.parse_args()
    isvc = json.loads(a.isvc_json)
    app = make_app(isvc["metadata"]["name"], a.revision, a.port)
    config = uvicorn.Config(app, host=a.host, port=a.port, log_level="warning", access_log=False)
    sockets = None if a.fd is None else [__import__("socket").socket(fileno=a.fd)]
    uvicorn.Server(config).run(sockets=sockets)
