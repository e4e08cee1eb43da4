"""What routes share: the control plane on ``app.state`` and the caller from the
``Authorization`` header."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from hyperflow.handlers.auth import Caller, parse_bearer
from hyperflow.plane import ControlPlane


def plane(request: Request) -> ControlPlane:
    return request.app.state.plane


bearer = parse_bearer


def caller(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Caller:
    return plane(request).tokens.authenticate(bearer(authorization))


CallerDep = Annotated[Caller, Depends(caller)]
PlaneDep = Annotated[ControlPlane, Depends(plane)]
