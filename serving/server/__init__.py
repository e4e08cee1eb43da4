"""The model server: ``create_app`` builds the ASGI app a replica (or a test) serves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from serving.dataplane.plane import DataPlane
from serving.runtimes.base import Model
from serving.server.app import ModelServerApp
from serving.server.body import DEFAULT_MAX_BODY_BYTES


def create_app(
    model: Model | Sequence[Model],
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    batcher: Any | None = None,
    container_concurrency: int = 0,
    inline: bool | None = None,
    load_on_startup: bool = True,
    token: str | None = None,
) -> ModelServerApp:
    """An ASGI app serving ``model`` over V1 and V2.

    ``batcher``: anything with ``max_batch_size`` and ``max_latency`` (milliseconds), e.g.
    the spec's predictor batcher; batches :class:`ArrayModel` requests. ``container_concurrency``
    > 0 bounds concurrent predicts. ``inline``: run sync predicts on the event loop (True),
    in threads (False) or decide by measured latency (None, see serving.dataplane.runner).
    Models not yet ready are loaded in a background thread on ASGI lifespan startup when
    ``load_on_startup``; in-process tests without lifespan pass loaded models.
    ``token``: when set, every request but the health probes needs
    ``Authorization: Bearer <token>`` (else a 401).
    """
    models = [model] if isinstance(model, Model) else list(model)
    plane = DataPlane(
        models, batcher=batcher, container_concurrency=container_concurrency, inline=inline
    )
    return ModelServerApp(
        plane, max_body_bytes=max_body_bytes, load_on_startup=load_on_startup, token=token
    )


__all__ = ["DEFAULT_MAX_BODY_BYTES", "ModelServerApp", "create_app"]
