"""What routes share: the control plane on ``app.state`` and the caller from the
``Authorization`` header (or the web UI's login cookie)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from hyperflow.handlers.auth import Caller, parse_bearer
from hyperflow.handlers.errors import Forbidden
from hyperflow.plane import ControlPlane


def plane(request: Request) -> ControlPlane:
    return request.app.state.plane


bearer = parse_bearer


# The web UI's login keeps the token in this HttpOnly cookie (see hyperflow.ui.routes).
COOKIE = "hyperflow_token"
# A change made with the cookie must carry this header: a page of another site can make
# the browser send the cookie (SameSite aside) but not a custom header without CORS.
UI_HEADER = "x-requested-with"
_SAFE = ("GET", "HEAD", "OPTIONS")


def caller(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Caller:
    if authorization is None:
        token = request.cookies.get(COOKIE)
        if token:
            if request.method not in _SAFE and request.headers.get(UI_HEADER) != "hyperflow-ui":
                raise Forbidden(
                    f"a change made with the login cookie needs the header {UI_HEADER}: hyperflow-ui"
                )
            return plane(request).tokens.authenticate(token)
    return plane(request).tokens.authenticate(bearer(authorization))


CallerDep = Annotated[Caller, Depends(caller)]
PlaneDep = Annotated[ControlPlane, Depends(plane)]
