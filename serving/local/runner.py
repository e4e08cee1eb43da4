"""``hyperflow serve run``: the local deployment in the foreground with a status table.

Prints a table of services, endpoints and replicas as soon as the router listens, logs each
event (replica started/ready/failed/exited, scale decisions) and re-prints the table
when it changes; SIGINT/SIGTERM stop the router and every replica it started.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from serving import terminal
from serving.local.deployment import BindError, LocalDeployment, RevisionStatus
from serving.local.replica import parse_port_range
from serving.local.revisions import DEFAULT_TICK_INTERVAL, revision_specs
from serving.router.server import is_loopback
from serving.runtimes import deploy_problems
from serving.spec import InferenceService, SpecError, load_inference_services


def status_table(statuses: list[RevisionStatus], base_url: str) -> Table:
    table = Table(title=f"hyperflow serving on {base_url}", title_justify="left")
    for col in ("service", "revision", "traffic", "replicas", "desired", "in-flight"):
        table.add_column(col)
    table.add_column("endpoints / status", overflow="fold")
    for s in statuses:
        replicas = f"{s.ready} ready"
        if s.starting:
            replicas += f", {s.starting} starting"
        if s.failed:
            replicas += f", {s.failed} failed"
        note = f"/v1/models/{s.service}:predict\n/v2/models/{s.service}/infer"
        if s.state == "Failed":
            note += f"\n[red]revision Failed: {escape(s.reason or '')}[/red]"
        elif s.reason:
            note += f"\n[red]not ready: {escape(s.reason)}[/red]"
        elif s.state == "Starting":
            note += "\n[yellow]revision starting (not Ready yet)[/yellow]"
        if s.scaling:
            note += f"\nautoscaler: HPA on {s.scaling}"
        if s.panicking:
            note += "\n[yellow]autoscaler: panic mode[/yellow]"
        traffic = f"{s.traffic}%"
        if s.traffic != s.configured_traffic:
            # A canary gets its share only once Ready (Knative routes to Ready revisions).
            traffic += f" ({s.configured_traffic}% when Ready)"
        table.add_row(
            s.service,
            s.revision,
            traffic,
            replicas,
            str(s.desired),
            str(s.in_flight),
            note,
        )
    return table


def _key(statuses: list[RevisionStatus]) -> tuple[object, ...]:
    return tuple(
        (s.ready, s.starting, s.failed, s.desired, s.reason, s.state, s.traffic) for s in statuses
    )


def load_files(files: list[Path]) -> list[InferenceService]:
    isvcs: list[InferenceService] = []
    for f in files:
        isvcs.extend(load_inference_services(f))
    return isvcs


async def run_foreground(
    files: list[Path],
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    token: str | None = None,
    tick_interval: float = DEFAULT_TICK_INTERVAL,
    log_dir: Path | None = None,
    console: Console | None = None,
    replica_ports: str | None = None,
) -> int:
    """Run until SIGINT/SIGTERM; returns the process exit code."""
    out = console or terminal.console()
    if not is_loopback(host) and not token:
        out.print(f"[red]error:[/red] binding to {host} (not loopback) requires --token")
        return 2
    try:
        ports = parse_port_range(replica_ports) if replica_ports else None
    except ValueError as exc:
        out.print(f"[red]error:[/red] --replica-ports: {exc}")
        return 2
    try:
        services = load_files(files)
        specs = revision_specs(services, tick_interval)
    except SpecError as exc:
        where = f"{exc.source}: " if exc.source else ""  # which file, when one is to blame
        for line in exc.lines():
            out.print(f"[red]error:[/red] {escape(where + line)}", highlight=False)
        return 2
    except OSError as exc:
        out.print(f"[red]error:[/red] {exc}")
        return 2
    # What is known not to run here (a gs:// storageUri, a tensorflow model...) is refused
    # now, as `hyperflow create` refuses it, not left to fail in a replica that keeps going.
    refused = [(isvc.name, p) for isvc in services for p in deploy_problems(isvc.predictor)]
    for name, problem in refused:
        out.print(f"[red]error:[/red] {escape(f'{name}: cannot run locally: {problem}')}")
    if refused:
        return 1

    def event(msg: str) -> None:
        out.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {msg}", highlight=False)

    deployment = LocalDeployment(
        specs, token=token, log_dir=log_dir, on_event=event, replica_ports=ports
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    shown = host if ":" not in host else f"[{host}]"
    base_url = f"http://{shown}:{port}"

    async def show_table() -> None:
        # Printed at once (replicas starting), then again on every change, so
        # what is served is on screen even if the user stops before it is ready.
        last: tuple[object, ...] | None = None
        while not stop.is_set():
            statuses = deployment.status()
            if _key(statuses) != last:
                last = _key(statuses)
                out.print(status_table(statuses, base_url))
            await asyncio.sleep(0.5)

    table_task: asyncio.Task[None] | None = None

    def started() -> None:
        nonlocal table_task
        event(f"router listening on {base_url} (pid {os.getpid()})")
        table_task = asyncio.create_task(show_table())

    try:
        await deployment.serve(host, port, started=started, stop=stop)
    except BindError as exc:
        out.print(f"[red]error:[/red] {escape(exc.strerror or '')}")
        return 1
    except (RuntimeError, OSError) as exc:
        out.print(f"[red]error:[/red] {exc}")
        return 1
    finally:
        if table_task is not None:
            table_task.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    # Only what this shutdown stopped: scale-downs already logged their own "stopped replica".
    pids = deployment.shutdown_pids()
    if pids:
        what = (
            "1 replica stopped now: pid"
            if len(pids) == 1
            else f"{len(pids)} replicas stopped now: pids"
        )
        event(f"stopped; {what} {', '.join(map(str, pids))}")
    else:
        event("stopped; no replica was running")
    return 0


def run(files: list[Path], **kw: object) -> int:
    """Blocking entry point on uvloop (the router's hot path wants it)."""
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run_foreground(files, **kw))  # type: ignore[arg-type]
