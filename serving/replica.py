"""One model-server replica process: ``python -m serving.replica --isvc-json '...' --port N``.

Contract (what the local deployer relies on):
- the InferenceService JSON (camelCase, as KServe) is parsed with :mod:`serving.spec`; an
  invalid spec exits with status 2 and the field errors on stderr, before binding;
- otherwise uvicorn (httptools + uvloop) listens at once, so ``/v2/health/live`` answers
  while the model loads in a background thread: on the socket inherited as ``--fd N``
  (the deployer bound it, so no other process can take the port in between), else on
  ``--host``/``--port``;
  ``/v2/health/ready`` turns 200 when loading succeeds;
- if the model cannot be created or loaded the process stays up, not ready, with the
  error in the ``/v2/health/ready`` and ``/v2/models/{name}/ready`` bodies and in the log;
- a non-loopback ``--host`` needs ``--token`` (exit 2 otherwise); with a token, every
  request but the health probes needs ``Authorization: Bearer <token>``;
- SIGTERM / SIGINT stop it cleanly (exit 0).
The predictor's ``containerConcurrency`` and ``batcher`` apply; ``--revision`` only
labels the log lines (the JSON passed already is that revision's spec).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from serving.runtimes.base import Model
from serving.server import DEFAULT_MAX_BODY_BYTES, create_app

log = logging.getLogger("serving.replica")


class UnavailableModel(Model):
    """Stands in for a model whose runtime could not even be created: every load fails
    with that reason, so the replica reports it as not ready instead of exiting."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(name)
        self.reason = reason

    def load(self) -> bool:
        raise RuntimeError(self.reason)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m serving.replica", description=__doc__.split("\n")[0]
    )
    p.add_argument("--isvc-json", required=True, help="the InferenceService as JSON (camelCase)")
    p.add_argument(
        "--revision",
        default="default",
        help="the revision's name, for the log (default/canary, or NAME-predictor-00001)",
    )
    p.add_argument("--host", default="127.0.0.1", help="anything but loopback needs a token")
    p.add_argument(
        "--token",
        default=os.environ.get("HYPERFLOW_REPLICA_TOKEN") or None,
        help="require 'Authorization: Bearer <token>' (health probes stay open); "
        "default: $HYPERFLOW_REPLICA_TOKEN",
    )
    p.add_argument("--port", type=int, help="port to bind (without --fd); with --fd, a label")
    p.add_argument(
        "--fd",
        type=int,
        default=None,
        help="an inherited, already bound TCP socket to listen on instead of --host/--port",
    )
    p.add_argument("--base-dir", type=Path, default=None, help="root of relative storageUri")
    p.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    p.add_argument("--log-level", default="info")
    return p.parse_args(argv)


def build_app(args: argparse.Namespace) -> Any:
    """The ASGI app for ``args``; raises SpecError/ValueError only for an invalid spec."""
    from serving.runtimes import create_model
    from serving.spec import parse_inference_service

    isvc = parse_inference_service(json.loads(args.isvc_json), base_dir=args.base_dir)
    predictor = isvc.predictor
    base_dir = args.base_dir if args.base_dir is not None else isvc.base_dir
    try:
        model: Model = create_model(isvc.name, predictor, base_dir)
    except Exception as exc:  # unsupported format, missing storage: report, don't die
        log.error("cannot create model %s: %s", isvc.name, exc)
        model = UnavailableModel(isvc.name, f"{type(exc).__name__}: {exc}")
    log.info(
        "replica for %s (revision %s, format %s) on %s:%d",
        isvc.name,
        args.revision,
        predictor.model_format,
        args.host,
        args.port,
    )
    return create_app(
        model,
        max_body_bytes=args.max_body_bytes,
        batcher=predictor.batcher,
        container_concurrency=int(predictor.container_concurrency or 0),
        token=args.token,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from serving.router.server import is_loopback

    sock: socket.socket | None = None
    if args.fd is not None:
        try:
            sock = socket.socket(fileno=args.fd)  # family and type read from the socket
            args.host, args.port = sock.getsockname()[:2]
        except OSError as exc:
            print(f"--fd {args.fd} is not a usable socket: {exc}", file=sys.stderr)
            return 2
    elif args.port is None:
        print("one of --port or --fd is required", file=sys.stderr)
        return 2

    if not is_loopback(args.host) and not args.token:
        print(f"binding to {args.host} (not loopback) requires a token", file=sys.stderr)
        return 2
    try:
        app = build_app(args)
    except (ValueError, json.JSONDecodeError) as exc:  # SpecError is a ValueError
        print(f"invalid InferenceService: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    from serving.server.http import uvicorn_config

    config = uvicorn_config(
        app,
        args.host,
        args.port,
        lifespan="on",
        access_log=False,
        log_level=args.log_level.lower(),
        backlog=2048,
    )
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the
    # handler that was installed before it: make that one a clean exit, not a kill.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    uvicorn.Server(config).run(sockets=[sock] if sock is not None else None)
    return 0


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
