"""The web UI's routes: the page (one HTML shell whose ES modules draw every view from the
API), its static files, and the login that keeps a token in an HttpOnly cookie.

The UI reads and changes everything through the same API routes (and so the same
handlers and namespace checks) as the CLI; nothing here reads the store. On a loopback
server nobody configured tokens for, no login is needed, as for the API.
"""

from __future__ import annotations

import gzip
import html
import re
import threading
from collections import OrderedDict
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Request
from fastapi.responses import HTMLResponse, Response

from hyperflow.api.deps import COOKIE, PlaneDep, bearer
from hyperflow.handlers.auth import Caller
from hyperflow.handlers.errors import HandlerError, NotFound, Unauthorized
from hyperflow.ui.assets import PLOTLY, Assets, plotly_version

router = APIRouter(include_in_schema=False)
_assets = Assets()
# A login lasts a working day; the token itself may be revoked sooner (checked per request).
SESSION_SECONDS = 12 * 3600
PAGES = (
    "/",
    "/experiments/{rest:path}",
    "/compare",
    "/create",
    "/services",
    "/services/{rest:path}",
    "/login",
)

_SHELL = """<!doctype html>
<html lang="en" data-plotly="/ui/static/{plotly}?v={pv}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>hyperflow</title>
<link rel="stylesheet" href="/ui/static/style.css?v={v}">
{preload}<script id="boot" type="application/json">{boot}</script>
<script type="module" src="/ui/static/app.js"></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <a class="brand" href="/" data-link>hyperflow</a>
  <nav aria-label="Main">
    <a href="/" data-link data-nav="experiments">Experiments</a>
    <a href="/services" data-link data-nav="services" hidden>Inference services</a>
    <a href="/create" data-link data-nav="create">Create</a>
  </nav>
  <span class="who" id="who"></span>
</header>
<main id="main" tabindex="-1"></main>
<div id="toast" role="status" aria-live="polite"></div>
</body>
</html>
"""


# The modules each view needs (besides app.js and util.js), fetched at once with the page
# instead of import by import.
_PLOTTING = ("plots.js", "data.js", "parcoords.js")
_VIEW_MODULES = (
    (re.compile(r"^/experiments/[^/]+/[^/]+/trials/[^/]+$"), ("trial.js", "deploy.js", *_PLOTTING)),
    (
        re.compile(r"^/experiments/[^/]+/[^/]+$"),
        ("experiment.js", "deploy.js", "table.js", *_PLOTTING),
    ),
    (re.compile(r"^/compare$"), ("compare.js", "table.js", *_PLOTTING)),
    (re.compile(r"^/create$"), ("create.js",)),
    (re.compile(r"^/services"), ("services.js", *_PLOTTING)),
    (re.compile(r"^/login$"), ("login.js",)),
    (re.compile(r"^/$"), ("experiments.js",)),
)


def _modules(path: str) -> tuple[str, ...]:
    path = path.rstrip("/") or "/"
    for pattern, modules in _VIEW_MODULES:
        if pattern.match(path):
            return ("util.js", *modules)
    return ("util.js",)


_EXPERIMENT_VIEW = re.compile(r"^/experiments/([a-z0-9][a-z0-9-]*)/([a-z0-9][a-z0-9-]*)/?$")


def _data(path: str) -> tuple[str, ...]:
    """The API reads the view starts with (fetched by the browser with the modules, in
    parallel, instead of after them)."""
    m = _EXPERIMENT_VIEW.match(path)
    if m is None:
        return ()
    base = f"/apis/v1/namespaces/{m.group(1)}/experiments/{m.group(2)}"
    return (base, f"{base}/trialtable?after=-1")


def _page(
    version: str, boot: dict[str, Any], path: str, data: tuple[str, ...] = ()
) -> HTMLResponse:
    preload = "".join(
        f'<link rel="modulepreload" href="/ui/static/{html.escape(name)}">\n'
        for name in _modules(path)
    ) + "".join(
        f'<link rel="preload" as="fetch" crossorigin href="{html.escape(url)}">\n' for url in data
    )
    body = _SHELL.format(
        v=html.escape(version),
        plotly=PLOTLY,
        pv=html.escape(plotly_version()),
        preload=preload,
        # In a script element only "</" could end it early: escaped, the JSON is inert.
        boot=orjson.dumps(boot).decode().replace("</", "<\\/"),
    )
    return HTMLResponse(body, headers={"cache-control": "no-cache"})


_version: list[str] = []
# The last few pages as sent (gzipped), by what they were made of: the experiments list's
# page is ~400 kB of inline data for 1,000 experiments, and its summaries are kept until
# the store changes (so is the page made of them).
_sent: OrderedDict[tuple[Any, ...], tuple[Any, bytes, dict[str, str]]] = OrderedDict()
_sent_lock = threading.Lock()


def page(request: Request) -> HTMLResponse:
    """The shell, with who the browser is and what the server offers inline (the page
    needs them before anything else: no round trip for them)."""
    if not _version:
        _version.append(_assets.fingerprint())
    plane = request.app.state.plane
    caller = _caller_or_none(request, plane)
    boot: dict[str, Any] = {
        "session": _session(plane, caller),
        "config": _config(request, plane, caller),
    }
    summaries = None
    if caller is not None and request.url.path == "/":
        # The experiments list's data, read as GET /apis/v1/experimentsummaries would.
        summaries = boot["experimentsummaries"] = plane.analysis.summaries(caller, None)
    gzipped = "gzip" in request.headers.get("accept-encoding", "")
    key = (request.url.path, gzipped, orjson.dumps(boot["session"]), orjson.dumps(boot["config"]))
    with _sent_lock:
        hit = _sent.get(key)
        if hit is not None and hit[0] is summaries:
            return HTMLResponse(hit[1], headers=hit[2])
    # Only for a caller the API will answer (a refused preload is an error in the console).
    data = _data(request.url.path) if caller is not None else ()
    response = _page(_version[0], boot, request.url.path, data)
    if len(response.body) > 4096 and gzipped:
        response.body = gzip.compress(response.body, compresslevel=4)
        response.headers["content-encoding"] = "gzip"
        response.headers["content-length"] = str(len(response.body))
        response.headers["vary"] = "accept-encoding"
    with _sent_lock:
        headers = {k: v for k, v in response.headers.items() if k != "content-type"}
        _sent[key] = (summaries, bytes(response.body), headers)
        while len(_sent) > 16:
            _sent.popitem(last=False)
    return response


for _path in PAGES:
    router.add_api_route(_path, page, methods=["GET"], response_class=HTMLResponse)


@router.get("/ui/static/{name}")
def static(name: str, request: Request) -> Response:
    response = _assets.response(request, name)
    if response is None:
        raise NotFound(f"no such file: {name}")
    return response


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _session(plane: Any, caller: Caller | None) -> dict[str, Any]:
    required = plane.tokens.required()
    if caller is None:
        return {"authenticated": False, "required": required}
    return {
        "authenticated": True,
        "required": required,
        "name": caller.name,
        "admin": caller.admin,
        "namespaces": sorted(caller.namespaces),
    }


def _caller_or_none(request: Request, plane: Any) -> Caller | None:
    """Who the request is from (header, then cookie); None if it would be refused."""
    try:
        header = request.headers.get("authorization")
        if header is not None:
            return plane.tokens.authenticate(bearer(header))
        return plane.tokens.authenticate(request.cookies.get(COOKIE) or None)
    except HandlerError:
        return None


@router.get("/ui/session")
def session(request: Request, plane: PlaneDep) -> Response:
    """Who the browser is: always 200 (a page asks before it shows a login form)."""
    return _json(_session(plane, _caller_or_none(request, plane)))


def _without_credentials(uri: str | None) -> str | None:
    """``uri`` without the user and password it may carry (``http://alice:s3cret@host``,
    ``postgresql://user:pw@db/mlflow``): the UI's config is readable before login, and a
    link or a hint has no use for them."""
    if not uri:
        return uri
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _config(request: Request, plane: Any, caller: Caller | None) -> dict[str, Any]:
    """Where MLflow is (its UI, its store: a file path on this host, say) only for a
    caller the server would answer: nobody before login, where tokens are required."""
    services = getattr(plane, "inferenceservices", None) is not None
    shown = caller is not None or not plane.tokens.required()
    return {
        "services": services,
        "servicesAllNamespaces": services,
        "mlflowUi": _without_credentials(plane.settings.mlflow_ui()) if shown else None,
        "trackingUri": (
            _without_credentials(plane.settings.tracking_uri)
            if plane.settings.track and shown
            else None
        ),
        "servingPort": plane.settings.serving_port,
    }


@router.get("/ui/config")
def config(request: Request, plane: PlaneDep) -> Response:
    """What this server offers the UI: which resources exist, where MLflow's UI is."""
    return _json(_config(request, plane, _caller_or_none(request, plane)))


@router.post("/ui/login")
def login(
    request: Request, plane: PlaneDep, token: Annotated[str, Body(embed=True, max_length=300)]
) -> Response:
    """Check ``token`` and keep it in an HttpOnly, SameSite=Strict cookie: the browser
    then holds exactly what the token grants (its namespaces), until logout, expiry or
    the token's revocation."""
    caller = plane.tokens.authenticate(token.strip())
    if caller is None:  # pragma: no cover - authenticate raises instead
        raise Unauthorized("invalid token")
    response = _json(_session(plane, caller))
    response.set_cookie(
        COOKIE,
        token.strip(),
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/ui/logout")
def logout(request: Request, plane: PlaneDep) -> Response:
    response = _json(_session(plane, None))
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
