"""``hyperflow experiment ...`` and ``hyperflow suggestion ...``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from serving import terminal

if TYPE_CHECKING:
    pass

experiment_app = typer.Typer(
    rich_markup_mode="markdown",
    help="Katib Experiments: validate, run, inspect.",
    no_args_is_help=True,
)
suggestion_app = typer.Typer(
    rich_markup_mode="markdown", help="The suggestion service.", no_args_is_help=True
)

# soft_wrap: long lines (field errors, paths) stay whole when output is not a terminal.
# 160 columns when piped (serving.terminal), so that tables are not squeezed to 80.
err = terminal.console(stderr=True, soft_wrap=True)
out = terminal.console(soft_wrap=True)


# Where trials run: the same options on `experiment run` and `hyperflow server`.
BACKEND_OPTION = typer.Option(
    None,
    "--backend",
    envvar="HYPERFLOW_BACKEND",
    help="Where trials run: local (processes, the default), ray, ...",
)
RAY_ADDRESS_OPTION = typer.Option(
    None,
    "--ray-address",
    envvar="HYPERFLOW_RAY_ADDRESS",
    help="Ray cluster for --backend ray (ray://host:10001, auto, host:port); "
    "default: start a local one.",
)


@experiment_app.command("validate")
def validate(
    file: Path = typer.Option(..., "-f", "--file", help="Katib Experiment YAML file."),
    backend: str | None = BACKEND_OPTION,
    ray_address: str | None = RAY_ADDRESS_OPTION,
) -> None:
    """Check an Experiment file against Katib's rules; exit 1 with the field errors.

    A valid file that the backend (--backend, default local) cannot run gets a note
    saying why, as `experiment run` would refuse it."""
    from tuner.settings import TunerSettings
    from tuner.spec import SpecError, load_experiments

    settings = _backend_settings(TunerSettings(), backend, ray_address)

    try:
        experiments = load_experiments(file)
    except SpecError as exc:
        err.print(f"[red]{file}: invalid[/red]")
        for line in exc.lines():
            err.print(f"  {line}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    from tuner.backends import backend_problems
    from tuner.runnable import local_notes

    where = "locally" if settings.backend == "local" else f"on {settings.backend}"
    for experiment in experiments:
        out.print(f"experiment {experiment.metadata.name!r} is valid", highlight=False)
        # Valid Katib, but refused by `experiment run` there: say so now, not at run time.
        for problem in backend_problems(settings.backend, experiment, settings):
            out.print(f"  note: cannot run {where}: {problem}", highlight=False, markup=False)
        if settings.backend == "local":  # what differs from a cluster's run of it
            for note in local_notes(experiment):
                out.print(f"  note: {note}", highlight=False, markup=False)


@suggestion_app.command("serve")
def suggestion_serve(
    port: int = typer.Option(8090, "--port", help="Port to listen on."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind (non-loopback needs --token)."
    ),
    token: str | None = typer.Option(
        None, "--token", envvar="HYPERFLOW_API_TOKEN", help="Bearer token required from clients."
    ),
) -> None:
    """Run the suggestion service over HTTP (FastAPI), as Katib runs its suggestion pods."""
    from tuner.suggestion.http import serve

    serve(host=host, port=port, token=token)


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(1)


def _load_one(file: Path) -> Any:
    from tuner.spec import SpecError, load_experiment

    try:
        return load_experiment(file)
    except SpecError as exc:
        err.print(f"[red]{file}: invalid[/red]")
        for line in exc.lines():
            err.print(f"  {line}", markup=False, highlight=False)
        raise typer.Exit(1) from None


@experiment_app.command("run")
def run(
    file: Path = typer.Option(..., "-f", "--file", help="Katib Experiment YAML file."),
    json_output: bool = typer.Option(
        False, "--json", help="Print the final Katib status object as JSON."
    ),
    suggestion_url: str | None = typer.Option(
        None,
        "--suggestion-url",
        envvar="HYPERFLOW_SUGGESTION_URL",
        help="Use a suggestion service over HTTP (hyperflow suggestion serve) instead of in-process.",
    ),
    no_mlflow: bool = typer.Option(False, "--no-mlflow", help="Do not log to MLflow."),
    backend: str | None = BACKEND_OPTION,
    ray_address: str | None = RAY_ADDRESS_OPTION,
) -> None:
    """Run an experiment in the foreground (resumes it if it was interrupted)."""
    from serving import terminal
    from tuner.backends import BackendError
    from tuner.controller import ExperimentConflict
    from tuner.progress import LiveProgress
    from tuner.runner import RunOutcome, TrackingUnavailable, run_experiment
    from tuner.settings import TunerSettings
    from tuner.status import experiment_object
    from tuner.store import Store, StoreError
    from tuner.suggestion.base import SuggestionError
    from tuner.types import ExperimentPhase

    experiment = _load_one(file)
    settings = _backend_settings(TunerSettings(), backend, ray_address)
    console = terminal.console(stderr=True, soft_wrap=True)  # 160 columns when piped
    progress = LiveProgress(experiment, console)

    def finished(outcome: RunOutcome) -> None:
        # The result first; waiting for MLflow (bounded) comes after it.
        progress.stop()
        record = outcome.record
        store = Store(settings.store_url)
        try:
            trials = store.trials(record.uid)
        finally:
            store.close()
        if json_output:
            out.print_json(data=experiment_object(record, experiment.spec.objective, trials))
            return
        if outcome.already_finished:
            console.print(
                f"experiment {record.namespace}/{record.name} had already finished; this is its "
                f"stored result (hyperflow experiment delete {record.name} -n {record.namespace} "
                "to run it again)",
                style="yellow",
                highlight=False,
            )
        _print_summary(console, experiment, record, trials, None)

    try:
        with progress:
            outcome = run_experiment(
                experiment,
                settings=settings,
                suggestion_url=suggestion_url,
                track=not no_mlflow,
                observer=progress,
                on_finished=finished,
            )
    except TrackingUnavailable as exc:
        raise _fail(
            f"{exc}; fix that, point MLFLOW_TRACKING_URI elsewhere, or run with --no-mlflow"
        ) from None
    except (ExperimentConflict, StoreError) as exc:
        raise _fail(str(exc)) from None
    except BackendError as exc:
        raise _fail(f"--backend {settings.backend}: {str(exc).removeprefix('backend: ')}") from None
    except SuggestionError as exc:
        store = Store(settings.store_url)
        try:
            stored = store.get_experiment(experiment.metadata.namespace, experiment.metadata.name)
        finally:
            store.close()
        if stored is None:  # the service did not answer before anything was stored
            raise _fail(f"{exc}; nothing was run or stored") from None
        raise _fail(f"{exc} (the experiment was not finished: run again to resume)") from None
    if outcome.unwritten is not None:
        # What is missing was logged just above, one line.
        console.print(
            "MLflow: incomplete (see above); run the same command again to write what is missing",
            style="yellow",
            highlight=False,
        )
    elif outcome.tracking and not json_output:
        console.print(f"MLflow: {outcome.tracking}", highlight=False)
    record = outcome.record
    if outcome.interrupted:
        raise typer.Exit(130)
    if record.phase is ExperimentPhase.SUCCEEDED:
        return
    raise typer.Exit(1 if record.phase is ExperimentPhase.FAILED else 130)


def _backend_settings(settings: Any, backend: str | None, ray_address: str | None) -> Any:
    """``settings`` with the backend options given on the command line (checked)."""
    from tuner.backends import UnknownBackend, check_backend_name

    update: dict[str, Any] = {}
    if backend is not None:
        update["backend"] = backend
    if ray_address is not None:
        update["ray_address"] = ray_address
    settings = settings.model_copy(update=update)
    try:
        check_backend_name(settings.backend)
    except UnknownBackend as exc:
        raise _fail(f"--backend: {exc}") from None
    return settings


def _print_summary(
    console: Console, experiment: Any, record: Any, trials: list[Any], tracking: str | None
) -> None:
    from tuner.status import INTERRUPTED, best_trial, display_phase

    phase = display_phase(record)
    style = {"Succeeded": "green", INTERRUPTED: "yellow", "Running": "cyan"}.get(phase, "red")
    message = record.message
    if phase == INTERRUPTED:
        message = "nothing runs it; run the same `hyperflow experiment run -f FILE` again to resume"
    console.print(
        f"experiment [bold]{record.name}[/bold]: [{style}]{phase}[/] ({record.reason}) — {message}",
        highlight=False,
    )
    best = best_trial(experiment.spec.objective, trials)
    if best is not None:
        params = ", ".join(f"{k}={v}" for k, v in best.assignments.items())
        console.print(
            f"best trial [bold]{best.name}[/bold]: "
            f"{experiment.spec.objective.objective_metric_name}={best.objective_value:.6g}  ({params})",
            highlight=False,
        )
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.phase.value] = counts.get(t.phase.value, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in counts.items()) or "none"
    console.print(f"trials: {summary}", highlight=False)
    if tracking:
        console.print(f"MLflow: {tracking}", highlight=False)


def _check_output(output: str, allowed: tuple[str, ...]) -> None:
    if output not in allowed:
        raise _fail(f"unknown output format {output!r}; use one of: {', '.join(allowed)}")


def _open_store() -> Any:
    from tuner.settings import TunerSettings
    from tuner.store import Store

    settings = TunerSettings()
    settings.ensure_home()
    return Store(settings.store_url)


def _open_reader() -> Any:
    """The store, read-only: on SQLite without loading SQLAlchemy (read commands stay fast)."""
    from tuner.settings import TunerSettings
    from tuner.store.reader import open_reader

    return open_reader(TunerSettings().store_url)


def _get_record(store: Any, name: str, namespace: str) -> Any:
    record = store.get_experiment(namespace, name)
    if record is None:
        raise _fail(f"experiment {namespace}/{name} not found")
    return record


NamespaceOpt = typer.Option("default", "-n", "--namespace", help="Namespace of the experiment.")


@experiment_app.command("list")
def list_(
    namespace: str | None = typer.Option(None, "-n", "--namespace", help="Only this namespace."),
    output: str = typer.Option(
        "table", "-o", "--output", help="table, name, json or yaml (a List of Katib objects)."
    ),
) -> None:
    """List experiments in the store."""
    from rich.table import Table

    from tuner.status import display_phase, experiment_object

    _check_output(output, ("table", "name", "json", "yaml"))
    store = _open_reader()
    try:
        records = store.list_experiments(namespace)
        if output == "name":
            for r in records:
                out.print(f"experiment.kubeflow.org/{r.name}", highlight=False, markup=False)
            return
        if output in ("json", "yaml"):
            items = [
                experiment_object(r, _experiment_model(r).spec.objective, store.trials(r.uid))
                for r in records
            ]
            obj = {"apiVersion": "v1", "kind": "List", "items": items}
            if output == "json":
                out.print_json(data=obj)
            else:
                import yaml

                out.print(yaml.safe_dump(obj, sort_keys=False), highlight=False, markup=False)
            return
        table = Table(box=None, header_style="bold")
        # Names are never cut (they are what get/describe/delete take); a long reason folds.
        widest = max((len(r.name) for r in records), default=4)
        table.add_column("NAMESPACE", no_wrap=True)
        table.add_column("NAME", no_wrap=True, min_width=widest)
        for col in ("STATUS", "REASON", "TRIALS", "AGE"):
            table.add_column(col, overflow="fold")
        for r in records:
            table.add_row(
                r.namespace,
                r.name,
                display_phase(r),
                r.reason,
                str(len(store.trials(r.uid))),
                _age(r.created_at),
            )
        out.print(table)
    finally:
        store.close()


def _age(ts: float) -> str:
    import time

    seconds = int(time.time() - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _load(name: str, namespace: str) -> tuple[Any, list[Any]]:
    """The stored experiment and its trials; exit 1 with a message if there is none."""
    store = _open_reader()
    try:
        record = _get_record(store, name, namespace)
        return record, store.trials(record.uid)
    finally:
        store.close()


def _experiment_model(record: Any) -> Any:
    from tuner.spec.models import Experiment

    return Experiment.model_validate(record.spec)


@experiment_app.command("get")
def get(
    name: str,
    namespace: str = NamespaceOpt,
    output: str = typer.Option("table", "-o", "--output", help="table, json or yaml."),
) -> None:
    """Show an experiment's status (-o json|yaml: the Katib object)."""
    from tuner.status import experiment_object

    _check_output(output, ("table", "json", "yaml"))
    record, trials = _load(name, namespace)
    experiment = _experiment_model(record)
    obj = experiment_object(record, experiment.spec.objective, trials)
    if output == "json":
        out.print_json(data=obj)
    elif output == "yaml":
        import yaml

        out.print(yaml.safe_dump(obj, sort_keys=False), highlight=False, markup=False)
    else:
        _print_summary(out, experiment, record, trials, None)


@experiment_app.command("describe")
def describe(name: str, namespace: str = NamespaceOpt) -> None:
    """Status, conditions, best trial and the trial table."""
    from tuner.progress import trials_table
    from tuner.status import conditions

    record, trials = _load(name, namespace)
    experiment = _experiment_model(record)
    _print_summary(out, experiment, record, trials, None)
    out.print("\n[bold]Conditions[/bold]")
    for c in conditions(record):
        out.print(
            f"  {c['type']:<10} {c['status']:<6} {c['reason']:<34} {c['lastTransitionTime']}  {c['message']}",
            highlight=False,
            markup=False,
        )
    out.print("\n[bold]Trials[/bold]")
    out.print(trials_table(experiment, trials))


@experiment_app.command("trials")
def trials_(
    name: str,
    namespace: str = NamespaceOpt,
    output: str = typer.Option("table", "-o", "--output", help="table or json."),
) -> None:
    """List the trials of an experiment."""
    from tuner.progress import trials_table
    from tuner.status import trial_object

    _check_output(output, ("table", "json"))
    record, trials = _load(name, namespace)
    experiment = _experiment_model(record)
    if output == "json":
        out.print_json(data=[trial_object(record, t) for t in trials])
        return
    out.print(trials_table(experiment, trials))


@experiment_app.command("best")
def best(
    name: str,
    namespace: str = NamespaceOpt,
    output: str = typer.Option("table", "-o", "--output", help="table or json."),
) -> None:
    """The current optimal trial (Katib's currentOptimalTrial)."""
    from tuner.status import optimal_trial

    _check_output(output, ("table", "json"))
    record, trials = _load(name, namespace)
    experiment = _experiment_model(record)
    optimal = optimal_trial(experiment.spec.objective, trials)
    if output == "json":
        out.print_json(data=optimal)
        return
    if not optimal["bestTrialName"]:
        raise _fail(f"experiment {namespace}/{name} has no succeeded trial yet")
    out.print(f"[bold]{optimal['bestTrialName']}[/bold]")
    for a in optimal["parameterAssignments"]:
        out.print(f"  {a['name']} = {a['value']}", highlight=False)
    for m in optimal["observation"]["metrics"]:
        out.print(
            f"  {m['name']}: latest={m['latest']} min={m['min']} max={m['max']}", highlight=False
        )
    _print_servable(
        experiment, record, next(t for t in trials if t.name == optimal["bestTrialName"])
    )


def _print_servable(experiment: Any, record: Any, trial: Any) -> None:
    """What the trial saved to $HYPERFLOW_ARTIFACTS_DIR, as storageUris of its MLflow run."""
    saved = Path(trial.trial_dir, "artifacts")
    entries = sorted(p.name for p in saved.iterdir()) if saved.is_dir() else []
    if not entries:
        return
    from tuner.settings import TunerSettings
    from tuner.tracking.lookup import trial_run_id

    settings = TunerSettings()
    try:
        run_id = trial_run_id(settings.tracking_uri, experiment, record.uid, trial.name)
    except Exception as exc:  # MLflow unreachable: the rest of the answer stands
        err.print(f"note: MLflow at {settings.tracking_uri} not readable: {exc}", highlight=False)
        return
    if run_id is None:
        out.print(f"  saved: {', '.join(entries)} (in {saved}; no MLflow run)", highlight=False)
        return
    out.print(f"  MLflow run: {run_id}", highlight=False)
    for entry in entries:
        out.print(f"  storageUri: runs:/{run_id}/{entry}", highlight=False)


@experiment_app.command("logs")
def logs(
    name: str = typer.Argument(..., help="Experiment name."),
    trial: str | None = typer.Argument(
        None, help="Trial name (default: the best, else the latest trial)."
    ),
    namespace: str = NamespaceOpt,
) -> None:
    """Print a trial's log (stdout and stderr of its process)."""
    from tuner.status import best_trial

    record, trials = _load(name, namespace)
    if not trials:
        raise _fail(f"experiment {namespace}/{name} has no trials")
    if trial is None:
        best = best_trial(_experiment_model(record).spec.objective, trials)
        chosen = best or trials[-1]
        which = "the best trial" if best is not None else "the latest trial"
        # On stderr, so that stdout stays the log itself.
        err.print(
            f"trial {chosen.name} ({which}; hyperflow experiment logs {name} TRIAL for another)",
            highlight=False,
            markup=False,
        )
    else:
        matches = [t for t in trials if t.name == trial]
        if not matches:
            raise _fail(f"trial {trial} not found in experiment {namespace}/{name}")
        chosen = matches[0]
    log_file = Path(chosen.trial_dir) / "trial.log"
    if not log_file.exists():
        raise _fail(f"no log for trial {chosen.name} ({log_file})")
    typer.echo(log_file.read_text(errors="replace"), nl=False)


@experiment_app.command("delete")
def delete(name: str, namespace: str = NamespaceOpt) -> None:
    """Delete an experiment, its trials and their files (MLflow runs are kept)."""
    import shutil

    from tuner.settings import TunerSettings

    store = _open_store()
    try:
        record = _get_record(store, name, namespace)
        pid = record.controller_pid
        if (
            pid
            and not record.phase.finished
            and store.claim_alive(pid, record.controller_host, record.controller_heartbeat)
        ):
            where = f" on {record.controller_host}" if record.controller_host else ""
            raise _fail(
                f"experiment {namespace}/{name} is running (pid {pid}{where}); stop it first"
            )
        if not record.phase.finished:
            # No controller runs it: what its trials still run is stopped here (it ran on
            # unwatched: processes, Kubernetes Jobs, a Ray actor).
            from tuner.backends import stop_leftovers

            dirs = [Path(t.trial_dir) for t in store.trials(record.uid)]
            problem = stop_leftovers(
                record.backend, TunerSettings(), _experiment_model(record), record.uid, dirs
            )
            if problem is not None:
                err.print(f"warning: {problem}", markup=False, highlight=False)
        store.delete_experiment(record.uid)
    finally:
        store.close()
    folder = TunerSettings().home / "experiments" / namespace / name
    shutil.rmtree(folder, ignore_errors=True)
    out.print(f'experiment.kubeflow.org "{name}" deleted', highlight=False)
