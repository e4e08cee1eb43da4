"""kubectl's verbs against the control plane: create, apply, get, describe, delete, logs.

A thin HTTP client (:class:`hyperflow.client.Client`): imports httpx, typer, rich and
PyYAML, never mlflow, optuna or scikit-learn, so a ``get`` answers about as fast as the
interpreter starts.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from hyperflow.client import Client

API = "/apis/v1"
BASE_DIR_ANNOTATION = "hyperflow.io/base-dir"
OUTPUTS = ("table", "wide", "yaml", "json", "name")

ServerOpt = typer.Option(
    None, "--server", envvar="HYPERFLOW_SERVER", help="API address (default http://127.0.0.1:8080)."
)
TokenOpt = typer.Option(None, "--token", envvar="HYPERFLOW_TOKEN", help="Bearer token.")
NamespaceOpt = typer.Option("default", "-n", "--namespace", help="Namespace.")
FileOpt = typer.Option(..., "-f", "--filename", help="YAML file (several documents allowed).")


# -- resources --------------------------------------------------------------------------


def _age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    from datetime import datetime

    seconds = int(
        time.time() - datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    )
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _phase(obj: dict[str, Any]) -> str:
    true = [c for c in obj.get("status", {}).get("conditions", []) if c.get("status") == "True"]
    return true[-1]["type"] if true else ""


def _reduced(metric: dict[str, Any], objective: dict[str, Any]) -> float:
    """A metric's one value as its strategy reduces it (Katib's metricStrategies: min, max
    or latest; by default min when minimizing, max when maximizing), as the controller
    ranks trials and the UI shows them."""
    name = metric.get("name")
    strategy = next(
        (s.get("value") for s in objective.get("metricStrategies") or [] if s.get("name") == name),
        "min" if objective.get("type") == "minimize" else "max",
    )
    return float(metric[strategy if strategy in ("min", "max", "latest") else "latest"])


def _best_value(obj: dict[str, Any]) -> str:
    optimal = obj.get("status", {}).get("currentOptimalTrial", {})
    objective = obj.get("spec", {}).get("objective", {})
    for m in optimal.get("observation", {}).get("metrics", []):
        if m.get("name") == objective.get("objectiveMetricName"):
            return f"{_reduced(m, objective):.6g}"
    return ""


def _experiment_row(obj: dict[str, Any], wide: bool) -> list[str]:
    s = obj.get("status", {})
    row = [
        obj["metadata"]["name"],
        _phase(obj),
        f"{s.get('trialsSucceeded', 0)}/{obj.get('spec', {}).get('maxTrialCount', '-')}",
        str(s.get("trialsRunning", 0)),
        _best_value(obj),
        _age(obj["metadata"].get("creationTimestamp")),
    ]
    if wide:
        row += [
            str(s.get("trialsPending", 0)),
            str(s.get("trialsFailed", 0)),
            obj.get("spec", {}).get("algorithm", {}).get("algorithmName", ""),
            s.get("currentOptimalTrial", {}).get("bestTrialName", ""),
        ]
    return row


def _trial_row(obj: dict[str, Any], wide: bool) -> list[str]:
    cond = (obj.get("status", {}).get("conditions") or [{}])[-1]
    metrics = obj.get("status", {}).get("observation", {}).get("metrics", [])
    objective = obj.get("spec", {}).get("objective") or {}
    values = " ".join(f"{m['name']}={_reduced(m, objective):.6g}" for m in metrics)
    status = cond.get("type", "")
    if cond.get("reason") == "TrialQueued":
        status = "Queued"
    row = [obj["metadata"]["name"], status, values, _age(obj["metadata"].get("creationTimestamp"))]
    if wide:
        assigned = " ".join(
            f"{a['name']}={a['value']}" for a in obj["spec"]["parameterAssignments"]
        )
        row += [assigned, cond.get("message", "")]
    return row


def _ready_condition(obj: dict[str, Any]) -> dict[str, Any]:
    conditions = obj.get("status", {}).get("conditions", [])
    return next((c for c in conditions if c.get("type") == "Ready"), {})


def _replicas(revisions: list[dict[str, Any]]) -> str:
    ready = sum(r.get("replicas", {}).get("ready", 0) for r in revisions)
    desired = sum(r.get("replicas", {}).get("desired", 0) for r in revisions)
    return f"{ready}/{desired}"


def _isvc_row(obj: dict[str, Any], wide: bool) -> list[str]:
    """KServe's columns (PREV and LATEST: the traffic percent of the revision rolled out
    before and of the latest one), plus ready/desired replicas."""
    s = obj.get("status", {})
    ready = _ready_condition(obj)
    predictor = s.get("components", {}).get("predictor", {})
    traffic = predictor.get("traffic", [])
    prev = next((str(t.get("percent")) for t in traffic if not t.get("latestRevision")), "")
    latest = next((str(t.get("percent")) for t in traffic if t.get("latestRevision")), "")
    row = [obj["metadata"]["name"], s.get("url", ""), ready.get("status", "Unknown"), prev, latest]
    row.append(_replicas(predictor.get("revisions", [])))
    row.append(_age(obj["metadata"].get("creationTimestamp")))
    if wide:
        row += [predictor.get("latestReadyRevision", ""), ready.get("reason", "")]
    return row


def _pipelinerun_row(obj: dict[str, Any], wide: bool) -> list[str]:
    from hyperflow import kubectl_pipelines

    return kubectl_pipelines.row(obj, wide, _age(obj["metadata"].get("creationTimestamp")))


@dataclass(frozen=True)
class Resource:
    plural: str
    kind: str
    group: str
    columns: tuple[str, ...]
    wide_columns: tuple[str, ...]
    row: Callable[[dict[str, Any], bool], list[str]]


RESOURCES = {
    "experiments": Resource(
        "experiments",
        "Experiment",
        "experiment.kubeflow.org",
        ("NAME", "STATUS", "SUCCEEDED", "RUNNING", "BEST", "AGE"),
        ("PENDING", "FAILED", "ALGORITHM", "BEST TRIAL"),
        _experiment_row,
    ),
    "trials": Resource(
        "trials",
        "Trial",
        "trial.kubeflow.org",
        ("NAME", "STATUS", "METRICS", "AGE"),
        ("PARAMETERS", "MESSAGE"),
        _trial_row,
    ),
    "inferenceservices": Resource(
        "inferenceservices",
        "InferenceService",
        "inferenceservice.serving.kserve.io",
        ("NAME", "URL", "READY", "PREV", "LATEST", "REPLICAS", "AGE"),
        ("LATESTREADYREVISION", "REASON"),
        _isvc_row,
    ),
    "pipelineruns": Resource(
        "pipelineruns",
        "PipelineRun",
        "pipelinerun.hyperflow.io",
        ("NAME", "PIPELINE", "STATE", "TASKS", "DURATION", "AGE"),
        ("MESSAGE",),
        _pipelinerun_row,
    ),
}
ALIASES = {
    "experiment": "experiments",
    "experiments": "experiments",
    "exp": "experiments",
    "trial": "trials",
    "trials": "trials",
    "inferenceservice": "inferenceservices",
    "inferenceservices": "inferenceservices",
    "isvc": "inferenceservices",
    "pipelinerun": "pipelineruns",
    "pipelineruns": "pipelineruns",
    "pr": "pipelineruns",
}
KINDS = {r.kind: r for r in RESOURCES.values()}
KIND_HELP = "experiments|exp, trials, inferenceservices|isvc, pipelineruns|pr"


# -- output -----------------------------------------------------------------------------


def _fail(lines: Iterable[str]) -> typer.Exit:
    lines = list(lines)
    typer.echo(f"error: {lines[0]}", err=True)
    for line in lines[1:]:
        typer.echo(line, err=True)
    return typer.Exit(1)


class _Errors:
    """Client errors as one clear message and exit code 1, never a traceback."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        from hyperflow.client import ApiError

        if isinstance(exc, ApiError):
            raise _fail(exc.lines()) from None


def _client(server: str | None, token: str | None, namespace: str = "default") -> Client:
    from hyperflow.client.client import Client, InvalidServer

    _check_names(namespace, what="namespace")
    try:
        return Client(server=server, token=token, namespace=namespace)
    except InvalidServer as exc:
        raise _fail([exc.message]) from None


def _check_names(*values: str | None, what: str = "resource name") -> None:
    """Names and namespaces are URL segments: one with ``/`` (or ``..``) is refused in
    kubectl's words before anything is sent."""
    from hyperflow.client import InvalidName, check_name

    try:
        for value in values:
            if value is not None:
                check_name(value, what)
    except InvalidName as exc:
        raise _fail([exc.message]) from None


def _print_table(
    header: list[str] | None, rows: list[list[str]], widths: list[int] | None = None
) -> list[int]:
    """Print aligned columns (at least ``widths`` wide); the widths used."""
    if widths is None:
        widths = [len(h) for h in header] if header else [0] * (len(rows[0]) if rows else 0)
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=False)]
    lines = [header] if header else []
    for row in [*lines, *rows]:
        typer.echo("   ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())
    return widths


def _dump(obj: Any, output: str) -> None:
    if output == "json":
        typer.echo(json.dumps(obj, indent=2))
    else:
        import yaml

        typer.echo(yaml.safe_dump(obj, sort_keys=False), nl=False)


def _check_output(output: str) -> None:
    if output not in OUTPUTS:
        raise _fail([f"unknown output format {output!r}; use one of: {', '.join(OUTPUTS)}"])


def _resource(kind: str) -> Resource:
    plural = ALIASES.get(kind.lower())
    if plural is None:
        raise _fail([f'the server doesn\'t have a resource type "{kind}" (use {KIND_HELP})'])
    return RESOURCES[plural]


# -- files ------------------------------------------------------------------------------


def _documents(
    files: list[Path], verb: str, arguments: list[str] | None = None
) -> list[tuple[Resource, dict[str, Any]]]:
    """The resources of the files; a compiled pipeline (kfp IR) is a PipelineRun of it
    with ``arguments`` (``--arg NAME=VALUE``). None at all is an error, as kubectl's
    ``no objects passed to create``: an empty file is a mistake, not nothing to do."""
    from hyperflow import kubectl_pipelines
    from serving import yamlfile  # the spec files' loader: safe, bounded, strict keys

    out: list[tuple[Resource, dict[str, Any]]] = []
    for file in files:
        try:
            if str(file) == "-":  # bounded as a file is: `cat /dev/zero |` must not fill memory
                text = yamlfile.read_bounded(sys.stdin.buffer).decode("utf-8")
            else:
                text = yamlfile.read_text(file)
            docs = yamlfile.load_all(text)
        except OSError as exc:
            raise _fail([f"{file}: {exc.strerror or exc}"]) from None
        except (yamlfile.YamlError, UnicodeDecodeError) as exc:
            raise _fail([f"{file}: {exc}", *_python_hint(file)]) from None
        for i, doc in enumerate(docs):
            if not isinstance(doc, dict):
                raise _fail([f"{file}: document {i} is not an object", *_python_hint(file)])
            if kubectl_pipelines.is_platform_spec(doc):
                continue  # kfp's platform settings next to a compiled pipeline
            if kubectl_pipelines.is_compiled_pipeline(doc) or doc.get("kind") == "PipelineRun":
                doc = kubectl_pipelines.run_document(doc, file, arguments or [])
            resource = KINDS.get(str(doc.get("kind")))
            if resource is None or resource.plural == "trials":
                raise _fail(
                    [f"{file}: document {i}: kind {doc.get('kind')!r} cannot be created here"]
                )
            if resource.plural in ("experiments", "inferenceservices"):
                # Relative paths (trial commands, storageUri) resolve from the file's
                # folder; from standard input, from the current one.
                folder = Path.cwd() if str(file) == "-" else file.resolve().parent
                md = doc.setdefault("metadata", {})
                if isinstance(md, dict):
                    annotations = md.setdefault("annotations", {})
                    if isinstance(annotations, dict):
                        annotations.setdefault(BASE_DIR_ANNOTATION, str(folder))
            out.append((resource, doc))
    if not out:
        raise _fail([f"no objects passed to {verb}"])
    return out


def _python_hint(file: Path) -> list[str]:
    if file.suffix != ".py":
        return []
    return [
        f"(a pipeline written with the KFP SDK runs with `hyperflow pipeline run -f {file}`; "
        "`create -f` takes YAML: compile it first with kfp.compiler.Compiler().compile)"
    ]


def _namespace_of(doc: dict[str, Any], default: str) -> str:
    md = doc.get("metadata") or {}
    return str(md.get("namespace") or default)


def _name_of(doc: dict[str, Any]) -> str:
    return str((doc.get("metadata") or {}).get("name", ""))


# -- commands ---------------------------------------------------------------------------


def create(
    filename: list[Path] = FileOpt,
    namespace: str = NamespaceOpt,
    arg: list[str] = typer.Option(
        [], "--arg", help="Argument NAME=VALUE of a compiled pipeline's run (repeatable)."
    ),
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
) -> None:
    """Create the resources in YAML files.

    The kind picks the resource; a compiled pipeline (kfp IR YAML) is run as a
    PipelineRun with the --arg values."""
    docs = _documents(filename, "create", arg)
    failed = False
    with _client(server, token, namespace) as client:
        for resource, doc in docs:
            ns = _namespace_of(doc, namespace)
            try:
                made = client.request("POST", f"{API}/namespaces/{ns}/{resource.plural}", json=doc)
            except Exception as exc:
                failed = _report(exc, resource, doc) or failed
                continue
            name = _name_of(made.json()) or _name_of(doc)  # generateName: the server's
            typer.echo(f"{resource.group}/{name} created")
    if failed:
        raise typer.Exit(1)


def _report(exc: Exception, resource: Resource, doc: dict[str, Any]) -> bool:
    from hyperflow.client import ApiError, ServerUnavailable

    if isinstance(exc, ServerUnavailable):
        raise _fail(exc.lines()) from None
    if not isinstance(exc, ApiError):
        raise exc
    lines = exc.lines()
    name = _name_of(doc) or str((doc.get("metadata") or {}).get("generateName", ""))
    typer.echo(f'error: {resource.group} "{name}": {lines[0]}', err=True)
    for line in lines[1:]:
        typer.echo(line, err=True)
    return True


def apply(
    filename: list[Path] = FileOpt,
    namespace: str = NamespaceOpt,
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
) -> None:
    """Create what does not exist; change what does.

    Of an Experiment, the trial budget (maxTrialCount, parallelTrialCount,
    maxFailedTrialCount) can change; a change of another field is refused, naming it."""
    from hyperflow.client import ApiError

    docs = _documents(filename, "apply")
    failed = False
    with _client(server, token, namespace) as client:
        for resource, doc in docs:
            ns, name = _namespace_of(doc, namespace), _name_of(doc)
            path = f"{API}/namespaces/{ns}/{resource.plural}"
            try:
                try:
                    current = client.request("GET", f"{path}/{name}").json()
                except ApiError as exc:
                    if exc.status != 404:
                        raise
                    client.request("POST", path, json=doc)
                    typer.echo(f"{resource.group}/{name} created")
                    continue
                # The server compares the whole object; a change it cannot make (an
                # Experiment's algorithm, say) is a 422 naming the field, reported below.
                after = client.request("PUT", f"{path}/{name}", json=doc).json()
                if resource.plural == "experiments":
                    same = after.get("spec") == current.get("spec")
                else:
                    same = after["metadata"].get("generation") == current["metadata"].get(
                        "generation"
                    )
                typer.echo(f"{resource.group}/{name} {'unchanged' if same else 'configured'}")
            except Exception as exc:
                failed = _report(exc, resource, doc) or failed
    if failed:
        raise typer.Exit(1)


def get(
    kind: str = typer.Argument(..., help=KIND_HELP),
    name: str | None = typer.Argument(None),
    namespace: str = NamespaceOpt,
    all_namespaces: bool = typer.Option(False, "-A", "--all-namespaces"),
    output: str = typer.Option("table", "-o", "--output", help="wide, yaml, json or name."),
    watch: bool = typer.Option(False, "-w", "--watch", help="After listing, watch for changes."),
    experiment: str | None = typer.Option(
        None, "-e", "--experiment", help="Trials of this experiment."
    ),
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
) -> None:
    """Show resources as a table (kubectl-like), or whole as YAML/JSON."""
    _check_output(output)
    resource = _resource(kind)
    _check_names(name, experiment)
    ns = namespace
    if resource.plural == "trials":
        if experiment is None:
            raise _fail(
                ["trials belong to an experiment: hyperflow get trials -e EXPERIMENT [NAME]"]
            )
        base = f"{API}/namespaces/{ns}/experiments/{experiment}/trials"
    elif all_namespaces:
        base = f"{API}/{resource.plural}"
    else:
        base = f"{API}/namespaces/{ns}/{resource.plural}"
    widths: list[int] | None = None
    pending: list[str] | None = None
    with _Errors(), _client(server, token, ns) as client:
        if name is not None:
            items = [client.request("GET", f"{base}/{name}").json()]
            version = ""
        else:
            items, version = client.list_all(base)
        wide = output == "wide"
        with_ns = all_namespaces and resource.plural != "trials"
        if output in ("yaml", "json"):
            if name is not None:
                _dump(items[0], output)
            else:
                _dump({"apiVersion": "v1", "kind": "List", "items": items}, output)
        elif output == "name":
            for item in items:
                typer.echo(f"{resource.group}/{item['metadata']['name']}")
        else:
            header = list(resource.columns) + (list(resource.wide_columns) if wide else [])
            if with_ns:
                header = ["NAMESPACE", *header]
            rows = [_row(resource, item, wide, with_ns) for item in items]
            if not rows:
                where = "any namespace" if all_namespaces else f"{ns} namespace"
                typer.echo(f"No resources found in {where}.", err=True)
                pending = header  # as kubectl: the header comes with the first watched row
            else:
                widths = _print_table(header, rows)
        if watch:
            _watch(
                client,
                resource,
                ns,
                name,
                experiment,
                all_namespaces,
                version,
                wide,
                output,
                (pending, widths),
                {
                    (item["metadata"].get("namespace", ns), item["metadata"]["name"]): _shown_as(
                        resource, item, _row(resource, item, wide, with_ns), output, with_ns
                    )
                    for item in items
                },
            )


def _shown_as(
    resource: Resource, item: dict[str, Any], row: list[str], output: str, with_ns: bool
) -> Any:
    """What a watch compares to tell a change worth a row: the row without its AGE (the
    whole object with -o yaml/json)."""
    if output in ("yaml", "json"):
        return item
    age = resource.columns.index("AGE") + int(with_ns)
    return row[:age] + row[age + 1 :]


def _row(resource: Resource, item: dict[str, Any], wide: bool, with_ns: bool) -> list[str]:
    row = resource.row(item, wide)
    return [item["metadata"].get("namespace", ""), *row] if with_ns else row


def _watch(
    client: Client,
    resource: Resource,
    ns: str,
    name: str | None,
    experiment: str | None,
    all_namespaces: bool,
    version: str,
    wide: bool,
    output: str,
    table: tuple[list[str] | None, list[int] | None],
    listed: dict[tuple[str, str], Any],
) -> None:
    """A row per change, aligned under the listed ``table`` (a header still to print and
    the columns' widths; they widen as needed)."""
    from hyperflow.client import ApiError

    header, widths = table
    if resource.plural == "trials":
        namespace: str | None = ns
        obj = f"experiments/{experiment}"
    elif all_namespaces:
        namespace, obj = None, None
    else:
        namespace = ns
        obj = f"{resource.plural}/{name}" if name else None
    shown = dict(listed)
    try:
        for event in client.watch(namespace, obj, version or None):
            if event.get("kind") != resource.kind or (name and event.get("name") != name):
                continue
            ev_ns = event["namespace"]
            if resource.plural == "trials":
                path = f"{API}/namespaces/{ev_ns}/experiments/{experiment}/trials/{event['name']}"
            else:
                path = f"{API}/namespaces/{ev_ns}/{resource.plural}/{event['name']}"
            if event["type"] == "DELETED":
                typer.echo(f"{event['name']}   (deleted)")
                continue
            try:
                item = client.request("GET", path).json()
            except ApiError as exc:
                if exc.status == 404:
                    continue
                raise
            with_ns = all_namespaces and resource.plural != "trials"
            row = _row(resource, item, wide, with_ns)
            # An event that changes nothing shown (a replica's probe, a scale tick, or the
            # creation the list already showed) is no row.
            key = (ev_ns, event["name"])
            seen = _shown_as(resource, item, row, output, with_ns)
            if output != "name" and shown.get(key) == seen:
                continue
            shown[key] = seen
            if output in ("yaml", "json"):
                _dump(item, output)
            elif output == "name":
                typer.echo(f"{resource.group}/{item['metadata']['name']}")
            else:
                widths = _print_table(header, [row], widths)
                header = None
    except KeyboardInterrupt:
        return


# Katib's status counts, as `describe` words them: the first four always, the rest when
# there are some (every trial is in one of them).
_TRIAL_COUNTS = (
    ("trialsSucceeded", "succeeded"),
    ("trialsRunning", "running"),
    ("trialsPending", "pending"),
    ("trialsFailed", "failed"),
    ("trialsKilled", "killed"),
    ("trialsEarlyStopped", "early stopped"),
    ("trialMetricsUnavailable", "metrics unavailable"),
)


def describe(
    kind: str = typer.Argument(
        ..., help="experiments|exp, inferenceservices|isvc, pipelineruns|pr"
    ),
    name: str = typer.Argument(...),
    namespace: str = NamespaceOpt,
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
) -> None:
    """Show one resource in detail.

    An experiment's status, conditions, best trial and trials; an inference service's
    model, traffic, revisions, conditions and recent events; a pipeline run's state,
    arguments, outputs and task tree."""
    resource = _resource(kind)
    _check_names(name)
    if resource.plural == "inferenceservices":
        _describe_isvc(name, namespace, server, token)
        return
    if resource.plural == "pipelineruns":
        from hyperflow import kubectl_pipelines

        with _Errors(), _client(server, token, namespace) as client:
            run = client.get_run(name, namespace)
        kubectl_pipelines.describe(run, _print_table)
        return
    if resource.plural != "experiments":
        raise _fail(
            [
                f"describe supports experiments, inferenceservices and pipelineruns; use hyperflow get {resource.plural} {name} -o yaml"
            ]
        )
    with _Errors(), _client(server, token, namespace) as client:
        obj = client.get_experiment(name, namespace)
        trials = client.list_trials(name, namespace)
    md, spec, status = obj["metadata"], obj["spec"], obj.get("status", {})
    objective = spec["objective"]
    typer.echo(f"Name:         {md['name']}")
    typer.echo(f"Namespace:    {md.get('namespace', namespace)}")
    typer.echo(f"Created:      {md.get('creationTimestamp')}")
    typer.echo(f"Status:       {_phase(obj)}")
    typer.echo(
        f"Objective:    {objective['type']} {objective['objectiveMetricName']}"
        + (f" (goal {objective['goal']})" if objective.get("goal") is not None else "")
    )
    typer.echo(f"Algorithm:    {spec['algorithm']['algorithmName']}")
    counts = [
        f"{status.get(key, 0)} {what}"
        for key, what in _TRIAL_COUNTS
        if status.get(key) or what in ("succeeded", "running", "pending", "failed")
    ]
    typer.echo(
        f"Trials:       {status.get('trials', 0)} (max {spec.get('maxTrialCount', '-')}, "
        f"parallel {spec.get('parallelTrialCount')}): {', '.join(counts)}"
    )
    best = status.get("currentOptimalTrial", {})
    if best.get("bestTrialName"):
        params = ", ".join(f"{a['name']}={a['value']}" for a in best["parameterAssignments"])
        typer.echo(f"Best trial:   {best['bestTrialName']} {_best_value(obj)} ({params})")
    typer.echo("Conditions:")
    _print_table(
        ["  TYPE", "STATUS", "REASON", "LAST TRANSITION", "MESSAGE"],
        [
            [
                f"  {c['type']}",
                c["status"],
                c["reason"],
                c.get("lastTransitionTime") or "",
                c["message"],
            ]
            for c in status.get("conditions", [])
        ],
    )
    typer.echo("Trials:")
    _print_table(
        ["  NAME", "STATUS", "METRICS", "AGE", "PARAMETERS"],
        [["  " + r[0], *r[1:5]] for r in (_trial_row(t, True) for t in trials)],
    )


def _describe_isvc(name: str, namespace: str, server: str | None, token: str | None) -> None:
    with _Errors(), _client(server, token, namespace) as client:
        obj = client.get(name, namespace)
        events = client.request(
            "GET",
            f"{API}/namespaces/{namespace}/events",
            params={"object": f"inferenceservices/{name}"},
        ).json()["items"]
    # This object's events: not those of an earlier one of the same name, deleted.
    deleted = [i for i, e in enumerate(events) if e.get("type") == "DELETED"]
    if deleted:
        events = events[deleted[-1] + 1 :]
    md, status = obj["metadata"], obj.get("status", {})
    predictor = obj.get("spec", {}).get("predictor", {})
    model = predictor.get("model") or next(
        (
            {"modelFormat": {"name": k}, **v}
            for k, v in predictor.items()
            if isinstance(v, dict) and "storageUri" in v
        ),
        {},
    )
    ready = _ready_condition(obj)
    revisions = status.get("components", {}).get("predictor", {}).get("revisions", [])
    typer.echo(f"Name:         {md['name']}")
    typer.echo(f"Namespace:    {md.get('namespace', namespace)}")
    typer.echo(f"Created:      {md.get('creationTimestamp')}")
    typer.echo(f"Generation:   {md.get('generation')}")
    typer.echo(f"URL:          {status.get('url', '')}")
    fmt = (model.get("modelFormat") or {}).get("name", "")
    typer.echo(f"Model:        {fmt} {model.get('storageUri', '')}".rstrip())
    readiness = ready.get("status", "Unknown")
    if ready.get("reason"):
        readiness += f" ({ready['reason']}: {ready.get('message', '')})"
    typer.echo(f"Ready:        {readiness}")
    if predictor.get("canaryTrafficPercent") is not None:
        typer.echo(f"Canary:       {predictor['canaryTrafficPercent']}% to the latest revision")
    typer.echo("Revisions:")
    _print_table(
        ["  NAME", "STATE", "TRAFFIC", "REPLICAS", "PIDS", "REASON"],
        [
            [
                f"  {r['name']}" + (" (latest)" if r.get("latest") else ""),
                r.get("state", ""),
                f"{r.get('percent', 0)}%"
                + (
                    f" ({r['configuredPercent']}% when Ready)"
                    if r.get("configuredPercent") != r.get("percent")
                    else ""
                ),
                _replicas([r]),
                ",".join(map(str, r.get("pids", []))),
                r.get("reason", ""),
            ]
            for r in revisions
        ],
    )
    typer.echo("Conditions:")
    _print_table(
        ["  TYPE", "STATUS", "REASON", "LAST TRANSITION", "MESSAGE"],
        [
            [
                f"  {c['type']}",
                c["status"],
                c.get("reason", ""),
                c.get("lastTransitionTime") or "",
                c.get("message", ""),
            ]
            for c in status.get("conditions", [])
        ],
    )
    typer.echo("Events:")
    _print_table(
        ["  AGE", "REASON", "MESSAGE"],
        [[f"  {_age_of(e['time'])}", e["reason"], e["message"]] for e in events[-20:]],
    )


def _age_of(timestamp: float) -> str:
    seconds = int(time.time() - timestamp)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def delete(
    kind: str | None = typer.Argument(
        None, help="experiments|exp, inferenceservices|isvc, pipelineruns|pr"
    ),
    names: list[str] | None = typer.Argument(None),
    filename: list[Path] | None = typer.Option(
        None, "-f", "--filename", help="Delete what the files define."
    ),
    namespace: str = NamespaceOpt,
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
) -> None:
    """Delete resources by kind and name, or those a file defines.

    An experiment's running trials are killed; its MLflow runs are kept."""
    targets: list[tuple[Resource, str, str]] = []
    if filename:
        if kind is not None:
            raise _fail(["give either -f FILE or KIND NAME, not both"])
        targets = [
            (r, _namespace_of(d, namespace), _name_of(d)) for r, d in _documents(filename, "delete")
        ]
    else:
        if kind is None or not names:
            raise _fail(["usage: hyperflow delete KIND NAME... | hyperflow delete -f FILE"])
        resource = _resource(kind)
        targets = [(resource, namespace, n) for n in names]
    for _, ns, name in targets:
        _check_names(ns, what="namespace")
        _check_names(name)
    failed = False
    with _client(server, token, namespace) as client:
        for resource, ns, name in targets:
            try:
                client.request("DELETE", f"{API}/namespaces/{ns}/{resource.plural}/{name}")
            except Exception as exc:
                failed = _report(exc, resource, {"metadata": {"name": name}}) or failed
                continue
            typer.echo(f'{resource.group} "{name}" deleted')
    if failed:
        raise typer.Exit(1)


def logs(
    experiment: str = typer.Argument(..., help="EXPERIMENT, or pipelinerun/RUN"),
    trial: str | None = typer.Argument(None, help="TRIAL, or a pipeline run's TASK"),
    follow: bool = typer.Option(False, "-f", "--follow", help="Stream until the trial ends."),
    namespace: str = NamespaceOpt,
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
) -> None:
    """A trial's output (stdout and stderr), or a pipeline task's.

    ``pipelinerun/RUN [TASK]``: a pipeline task's log, or every task's in turn."""
    kind, slash, run = experiment.partition("/")
    if slash and ALIASES.get(kind.lower()) == "pipelineruns":
        _check_names(run)  # the task is a path (for-loop-2/iteration-1/train), sent as a query
        with _Errors(), _client(server, token, namespace) as client:
            sys.stdout.buffer.write(client.run_logs(run, trial, namespace))
        return
    if trial is None:
        raise _fail(
            ["usage: hyperflow logs EXPERIMENT TRIAL | hyperflow logs pipelinerun/RUN [TASK]"]
        )
    _check_names(experiment, trial)
    with _Errors(), _client(server, token, namespace) as client:
        out = sys.stdout.buffer
        try:
            for chunk in client.trial_logs(experiment, trial, namespace, follow=follow):
                out.write(chunk)
                out.flush()
        except KeyboardInterrupt:
            return


def deploy_best(
    experiment: str = typer.Argument(..., help="The experiment whose best model to serve."),
    service: str = typer.Option(
        ..., "--service", help="The InferenceService to create or replace."
    ),
    model_format: str | None = typer.Option(
        None, "--model-format", help="Runtime (default: from the saved files, e.g. sklearn)."
    ),
    model_name: str | None = typer.Option(
        None, "--model-name", help="Registered model (default: the experiment's name)."
    ),
    canary_traffic_percent: int | None = typer.Option(
        None,
        "--canary-traffic-percent",
        min=0,
        max=100,
        help="Replacing a service: the new revision's share (the previous keeps the rest).",
    ),
    wait: bool = typer.Option(False, "--wait", help="Wait until the service is Ready."),
    timeout: int = typer.Option(600, "--timeout", help="Seconds --wait waits."),
    namespace: str = NamespaceOpt,
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
) -> None:
    """Register the best trial's model in MLflow and serve it, through the server.

    The model is a new version of a model named after the experiment in the MLflow Model
    Registry, served by an InferenceService from models:/MODEL/VERSION."""
    _check_names(experiment)  # (the service's name is in the body: the server checks it)
    with _Errors(), _client(server, token, namespace) as client:
        result = client.deploy_best(
            experiment,
            service,
            namespace,
            model_format=model_format,
            model_name=model_name,
            canary_traffic_percent=canary_traffic_percent,
        )
        model = result["registeredModel"]
        isvc = result["inferenceService"]
        typer.echo(
            f"registered model {model['name']} version {model['version']} "
            f"(from {model['source']}, trial {result['trial']})"
        )
        verb = "created" if result["created"] else "configured"
        typer.echo(
            f"inferenceservice.serving.kserve.io/{service} {verb} "
            f"(storageUri {model['storageUri']})"
        )
        typer.echo(f"URL: {isvc['status']['url']}")
        if wait:
            try:
                client.wait_isvc_ready(service, namespace, timeout_seconds=timeout)
            except RuntimeError as exc:
                raise _fail([str(exc)]) from None
            typer.echo(f"inferenceservice {service} is Ready")


def register(app: typer.Typer, experiment_app: typer.Typer | None = None) -> None:
    for fn in (create, apply, get, describe, delete, logs):
        app.command(fn.__name__)(fn)
    if experiment_app is not None:
        experiment_app.command("deploy-best")(deploy_best)
