"""The ``hyperflow`` command: one typer app composed of each package's sub-commands,
the control plane (``server``, ``token``) and kubectl's verbs against it."""

from __future__ import annotations

import sys

import typer

from hyperflow import kubectl, pipeline_remote
from pipelines.cli import pipeline_app, use_server
from serving.cli import app as serve_app
from tuner.cli import BACKEND_OPTION, RAY_ADDRESS_OPTION, experiment_app, suggestion_app

app = typer.Typer(
    rich_markup_mode="markdown",
    name="hyperflow",
    help="Katib-style tuning and KServe-style serving on one machine, tracked in MLflow.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(experiment_app, name="experiment")
app.add_typer(suggestion_app, name="suggestion")
app.add_typer(serve_app, name="serve")
app.add_typer(pipeline_app, name="pipeline")
use_server(pipeline_remote.connect)  # the read commands go through a running server


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"hyperflow {version('hyperflow')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            typer.echo("hyperflow (not installed)")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Katib-style tuning and KServe-style serving on one machine, tracked in MLflow."""


def _interrupted(exc: BaseException) -> bool:
    """Whether click turned a Ctrl-C into this exit ("Aborted!", code 1)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


kubectl.register(app, experiment_app)

token_app = typer.Typer(
    rich_markup_mode="markdown",
    help="API tokens (scoped to namespaces) of the control plane.",
    no_args_is_help=True,
)
app.add_typer(token_app, name="token")


@app.command("server")
def server(
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind (non-loopback needs tokens)."
    ),
    # A fixed port each (not 0): trials are told the API's URL before it is bound.
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="API port."),
    serving_port: int = typer.Option(
        8081, "--serving-port", min=1, max=65535, help="Port of the inference router."
    ),
    serving_url: str | None = typer.Option(
        None,
        "--serving-url",
        envvar="HYPERFLOW_SERVING_URL",
        help="The router's URL as clients reach it, shown as services' status.url "
        "(default: http://HOST:SERVING_PORT; the host name on a 0.0.0.0 bind).",
    ),
    max_running_trials: int | None = typer.Option(
        None, "--max-running-trials", help="Trials running at once on this machine (default: CPUs)."
    ),
    backend: str | None = BACKEND_OPTION,
    ray_address: str | None = RAY_ADDRESS_OPTION,
) -> None:
    """Run the control plane: experiments (and their trial queue) as managed resources."""
    from hyperflow.server import ServerError, serve
    from hyperflow.settings import ServerSettings

    options: dict[str, object] = {"host": host, "port": port, "serving_port": serving_port}
    if serving_url is not None:
        if not serving_url.startswith(("http://", "https://")):
            typer.echo("error: --serving-url must start with http:// or https://", err=True)
            raise typer.Exit(2)
        options["serving_url"] = serving_url
    if max_running_trials is not None:
        if max_running_trials < 1:
            typer.echo("error: --max-running-trials must be >= 1", err=True)
            raise typer.Exit(2)
        options["max_running_trials"] = max_running_trials
    if backend is not None:
        from tuner.backends import UnknownBackend, check_backend_name

        try:
            check_backend_name(backend)
        except UnknownBackend as exc:
            typer.echo(f"error: --backend: {exc}", err=True)
            raise typer.Exit(2) from None
        options["backend"] = backend
    if ray_address is not None:
        options["ray_address"] = ray_address
    try:
        serve(ServerSettings(**options))  # type: ignore[arg-type]
    except ServerError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _tokens():
    from hyperflow.plane import token_handlers
    from hyperflow.settings import ServerSettings

    return token_handlers(ServerSettings())


@token_app.command("create")
def token_create(
    namespace: list[str] = typer.Option(
        [], "--namespace", "-n", help="A namespace it may use (repeat)."
    ),
    admin: bool = typer.Option(False, "--admin", help="Every namespace, and managing tokens."),
    description: str = typer.Option("", "--description", help="What it is for."),
    duration: str | None = typer.Option(
        None,
        "--duration",
        help="How long it is valid, as kubectl create token's: 30m, 24h, 720h (default: "
        "until revoked).",
    ),
) -> None:
    """Create a token and print it (once: only its hash is stored)."""
    from hyperflow.handlers.auth import LOCAL_ADMIN
    from hyperflow.handlers.errors import HandlerError
    from serving.spec.durations import parse_duration

    seconds = None
    if duration is not None:
        try:
            float(duration)
        except ValueError:
            pass
        else:  # kubectl's (Go's) durations have units: "24" is no duration
            typer.echo(f"error: --duration: {duration!r} needs a unit: 30m, 24h, 720h", err=True)
            raise typer.Exit(1)
        try:
            seconds = parse_duration(duration)
        except ValueError as exc:
            typer.echo(f"error: --duration: {exc}", err=True)
            raise typer.Exit(1) from None
    tokens, store = _tokens()
    try:
        record, secret = tokens.create(
            LOCAL_ADMIN, namespace, admin=admin, description=description, duration=seconds
        )
    except HandlerError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        for d in exc.details:
            typer.echo(f"  {d.path}: {d.message}", err=True)
        raise typer.Exit(1) from None
    finally:
        store.close()
    typer.echo(secret)  # first: whatever follows, the token is shown
    scope = (
        "admin (all namespaces)" if record.admin else "namespaces " + ", ".join(record.namespaces)
    )
    from tuner.status import rfc3339

    until = "" if record.expires_at is None else f"; it expires at {rfc3339(record.expires_at)}"
    typer.echo(f"token {record.id}: {scope}{until}; it is shown only now", err=True)


@token_app.command("list")
def token_list() -> None:
    """The tokens (ids and scopes, never the secrets)."""
    import time

    from hyperflow.handlers.auth import LOCAL_ADMIN
    from hyperflow.store.tokens import TokenRecord
    from tuner.status import rfc3339

    tokens, store = _tokens()
    try:
        records = tokens.list(LOCAL_ADMIN)
    finally:
        store.close()
    now = time.time()

    def expires(r: TokenRecord) -> str:
        if r.expires_at is None:
            return "never"
        return f"{rfc3339(r.expires_at)}{' (expired)' if r.expired(now) else ''}"

    rows = [
        [
            r.id,
            "*" if r.admin else ",".join(r.namespaces),
            "yes" if r.admin else "no",
            rfc3339(r.created_at),
            expires(r),
            r.description,
        ]
        for r in records
    ]
    kubectl._print_table(["ID", "NAMESPACES", "ADMIN", "CREATED", "EXPIRES", "DESCRIPTION"], rows)


@token_app.command("revoke")
def token_revoke(
    token_id: str = typer.Argument(..., help="The token's id (or the token)."),
) -> None:
    """Revoke a token: requests with it are refused from now on."""
    from hyperflow.handlers.auth import LOCAL_ADMIN
    from hyperflow.handlers.errors import HandlerError

    tokens, store = _tokens()
    try:
        tokens.revoke(LOCAL_ADMIN, token_id)
    except HandlerError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    finally:
        store.close()
    typer.echo(f"token {token_id} revoked")


def main() -> None:
    try:
        app()
    except SystemExit as exc:
        # A Ctrl-C in any phase (loading, creating the store, ...) exits 130 like a shell's.
        if exc.code not in (0, 130, None) and _interrupted(exc):
            sys.exit(130)
        raise
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
