"""The Python SDK, shaped like Katib's ``KatibClient.tune``.

    from tuner import sdk
    from tuner.sdk import search

    def objective(parameters):
        return {"loss": (parameters["lr"] - 0.1) ** 2}

    result = sdk.tune(
        name="quadratic",
        objective=objective,
        parameters={"lr": search.double(min=0.001, max=1.0)},
        objective_metric_name="loss",
        objective_type="minimize",
        max_trial_count=20,
        parallel_trial_count=2,
    )
    print(result.best_parameters)

Trials of a function run in a warm pool of worker processes (see
:mod:`tuner.backends.function`), are stored like any other experiment's, and are logged
to MLflow.
"""

from __future__ import annotations

import contextlib
import logging
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuner.settings import TunerSettings
from tuner.spec.errors import FieldError, SpecError
from tuner.spec.models import (
    AlgorithmSetting,
    AlgorithmSpec,
    EarlyStoppingSpec,
    Experiment,
    ExperimentSpec,
    FeasibleSpace,
    MetricsCollectorSpec,
    ObjectiveSpec,
    ObjectMeta,
    ParameterSpec,
    ParameterType,
    TrialTemplate,
)
from tuner.store import ExperimentRecord, TrialRecord
from tuner.tracking.base import Unwritten

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from tuner.progress import LiveProgress


@dataclass(frozen=True, slots=True)
class SearchSpace:
    """A parameter's type and feasible space, before ``tune`` gives it a name."""

    parameter_type: ParameterType
    feasible_space: FeasibleSpace


def _validated(model: type[Any], data: dict[str, Any], prefix: str) -> Any:
    """``model.model_validate(data)``, a SpecError naming the field instead of pydantic's."""
    from pydantic import ValidationError

    from tuner.spec.errors import prefixed
    from tuner.spec.pydantic_errors import field_errors

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SpecError(prefixed(prefix, field_errors(exc, model))) from None


def _plain(value: Any) -> Any:
    """A numpy (or other ``numbers``) scalar as the Python int or float it stands for: the
    counts and the goal are strict, as the Experiment CRD's types are (no ``True``, no
    ``"5"``), and ``np.int64(20)`` is a count all the same."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def _space(kind: ParameterType, **values: Any) -> SearchSpace:
    data = {("list" if k == "values" else k): v for k, v in values.items() if v is not None}
    return SearchSpace(kind, _validated(FeasibleSpace, data, "feasibleSpace"))


class search:
    """Search-space helpers with Katib's SDK names: ``search.double(min=, max=)`` ..."""

    @staticmethod
    def double(
        min: float, max: float, step: float | None = None, distribution: str | None = None
    ) -> SearchSpace:
        return _space(ParameterType.DOUBLE, min=min, max=max, step=step, distribution=distribution)

    @staticmethod
    def int(
        min: int, max: int, step: int | None = None, distribution: str | None = None
    ) -> SearchSpace:
        return _space(ParameterType.INT, min=min, max=max, step=step, distribution=distribution)

    @staticmethod
    def categorical(list: Sequence[str]) -> SearchSpace:
        return _space(ParameterType.CATEGORICAL, values=[str(v) for v in list])

    @staticmethod
    def discrete(list: Sequence[float]) -> SearchSpace:
        return _space(ParameterType.DISCRETE, values=[str(v) for v in list])


@dataclass(slots=True)
class TuneResult:
    """What ``tune`` returns: the stored experiment and its trials."""

    experiment: ExperimentRecord
    trials: list[TrialRecord]
    status: dict[str, Any]
    tracking: str | None = None
    best_trial: TrialRecord | None = None
    best_parameters: dict[str, Any] = field(default_factory=dict)
    # True when the store had this experiment finished already: nothing ran this time.
    already_finished: bool = False
    # What MLflow did not get (None: everything); the next tune() of it writes the rest.
    tracking_unwritten: Unwritten | None = None

    @property
    def succeeded(self) -> bool:
        return self.experiment.phase.value == "Succeeded"


def build_experiment(
    *,
    name: str,
    parameters: dict[str, SearchSpace],
    objective_metric_name: str,
    objective_type: str = "maximize",
    objective_goal: float | None = None,
    additional_metric_names: Sequence[str] = (),
    metric_strategies: dict[str, str] | None = None,
    namespace: str = "default",
    algorithm_name: str = "random",
    algorithm_settings: dict[str, Any] | None = None,
    max_trial_count: int | None = None,
    parallel_trial_count: int | None = None,
    max_failed_trial_count: int | None = None,
    early_stopping: str | None = None,
    early_stopping_settings: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
) -> Experiment:
    """The Katib Experiment ``tune`` runs (validated like a YAML file)."""
    from tuner.spec import validate_experiment

    if not isinstance(parameters, dict):
        raise SpecError(
            [FieldError("parameters", "must be a dict of name -> tuner.sdk.search.<type>(...)")]
        )
    params = []
    for pname, space in parameters.items():
        if not isinstance(space, SearchSpace):
            raise SpecError(
                [
                    FieldError(
                        f"parameters[{pname!r}]",
                        "use tuner.sdk.search.double/int/categorical/discrete; "
                        f"got {type(space).__name__}",
                    )
                ]
            )
        params.append(
            ParameterSpec(
                name=pname,
                parameter_type=space.parameter_type,
                feasible_space=space.feasible_space.model_copy(),
            )
        )
    max_trial_count, parallel_trial_count, max_failed_trial_count, objective_goal = (
        _plain(v)
        for v in (max_trial_count, parallel_trial_count, max_failed_trial_count, objective_goal)
    )
    spec = _validated(
        ExperimentSpec,
        dict(
            parameters=params,
            objective=_validated(
                ObjectiveSpec,
                {
                    "type": objective_type,
                    "goal": objective_goal,
                    "objectiveMetricName": objective_metric_name,
                    "additionalMetricNames": list(additional_metric_names),
                    "metricStrategies": [
                        {"name": k, "value": v} for k, v in (metric_strategies or {}).items()
                    ],
                },
                "spec.objective",
            ),
            algorithm=AlgorithmSpec(
                algorithm_name=algorithm_name,
                algorithm_settings=[
                    AlgorithmSetting(name=k, value=str(v))
                    for k, v in (algorithm_settings or {}).items()
                ],
            ),
            early_stopping=EarlyStoppingSpec(
                algorithm_name=early_stopping,
                algorithm_settings=[
                    AlgorithmSetting(name=k, value=str(v))
                    for k, v in (early_stopping_settings or {}).items()
                ],
            )
            if early_stopping
            else None,
            # Function trials have no container: a command stands in so the template is valid.
            trial_template=TrialTemplate(command=["<python function>"]),
            # Katib's default of 3, never above the budget (Katib's webhook refuses that).
            parallel_trial_count=(
                parallel_trial_count
                if parallel_trial_count is not None
                else min(3, max_trial_count)
                if type(max_trial_count) is int and max_trial_count > 0
                else 3
            ),
            max_trial_count=max_trial_count,
            max_failed_trial_count=max_failed_trial_count,
            metrics_collector_spec=MetricsCollectorSpec(),
        ),
        "spec",
    )
    metadata = ObjectMeta(name=name, namespace=namespace, annotations=dict(annotations or {}))
    experiment = Experiment(metadata=metadata, spec=spec)
    validate_experiment(experiment)
    return experiment


def tune(
    name: str,
    objective: Callable[..., Any],
    parameters: dict[str, SearchSpace],
    *,
    objective_metric_name: str,
    objective_type: str = "maximize",
    objective_goal: float | None = None,
    additional_metric_names: Sequence[str] = (),
    metric_strategies: dict[str, str] | None = None,
    namespace: str = "default",
    algorithm_name: str = "random",
    algorithm_settings: dict[str, Any] | None = None,
    max_trial_count: int | None = None,
    parallel_trial_count: int | None = None,
    max_failed_trial_count: int | None = None,
    early_stopping: str | None = None,
    early_stopping_settings: dict[str, Any] | None = None,
    trial_active_deadline_seconds: int | None = None,
    track: bool = True,
    progress: bool = False,
    settings: TunerSettings | None = None,
    backend: str | None = None,
    annotations: dict[str, str] | None = None,
) -> TuneResult:
    """Tune ``objective`` over ``parameters`` and return when the experiment ends.

    ``objective`` receives the assignments as one dict (``def f(parameters)``) or as
    keyword arguments (``def f(lr, momentum)``), and reports metrics by returning a dict,
    printing ``name=value`` lines, or calling :func:`tuner.report.report`.
    Running ``tune`` again with the same name resumes the stored experiment; trials that
    were running when a previous process died are run again.
    ``trial_active_deadline_seconds`` (Katib's SDK name): a trial still running after that
    many seconds is killed and ends Failed (``DeadlineExceeded``, as a Kubernetes Job).
    ``backend``: where trials run, by name (``local``: a warm pool of worker processes;
    ``ray``: a warm pool of ``parallel_trial_count`` Ray actors); default
    ``HYPERFLOW_BACKEND``, else ``local``. The Ray cluster: ``settings.ray_address``
    (``HYPERFLOW_RAY_ADDRESS``), else the one this process already joined, else a new
    local one. ``annotations``: the Experiment's ``metadata.annotations``.
    """
    from tuner.backends import BackendError, check_backend_name, create_backend
    from tuner.runner import run_experiment

    experiment = build_experiment(
        name=name,
        parameters=parameters,
        objective_metric_name=objective_metric_name,
        objective_type=objective_type,
        objective_goal=objective_goal,
        additional_metric_names=additional_metric_names,
        metric_strategies=metric_strategies,
        namespace=namespace,
        algorithm_name=algorithm_name,
        algorithm_settings=algorithm_settings,
        max_trial_count=max_trial_count,
        parallel_trial_count=parallel_trial_count,
        max_failed_trial_count=max_failed_trial_count,
        early_stopping=early_stopping,
        early_stopping_settings=early_stopping_settings,
        annotations=annotations,
    )
    from tuner.backends._func_calling import call_problem

    problem = call_problem(objective, [p.name for p in experiment.spec.parameters])
    if problem is not None:
        raise SpecError([FieldError("objective", problem)])
    if trial_active_deadline_seconds is not None and (
        isinstance(trial_active_deadline_seconds, bool)
        or not isinstance(trial_active_deadline_seconds, int)
        or trial_active_deadline_seconds < 1
    ):
        raise SpecError(
            [
                FieldError(
                    "trial_active_deadline_seconds",
                    f"must be a whole number of seconds >= 1; got {trial_active_deadline_seconds!r}",
                )
            ]
        )
    settings = settings or TunerSettings()
    try:
        backend_name = check_backend_name(backend or settings.backend)
    except KeyError as exc:
        raise SpecError([FieldError("backend", str(exc))]) from None
    try:
        trial_backend = create_backend(
            backend_name,
            settings,
            function=objective,
            workers=experiment.spec.parallel_trial_count,
            experiment=experiment,
        )
    except BackendError as exc:
        raise SpecError([FieldError("backend", str(exc).removeprefix("backend: "))]) from None
    # The workers boot (a fresh interpreter each) while the store and the suggestion
    # service are set up, so the first trials start at once.
    budget = experiment.spec.max_trial_count
    trial_backend.prestart(experiment.spec.parallel_trial_count if budget is None else budget)
    live: LiveProgress | None = None
    if progress:
        from rich.console import Console

        from tuner.progress import LiveProgress

        live = LiveProgress(experiment, Console(stderr=True))
    from tuner.controller import ExperimentConflict
    from tuner.runner import TrackingUnavailable

    try:
        with (
            live if live is not None else contextlib.nullcontext(),
            contextlib.closing(trial_backend),
        ):
            outcome = run_experiment(
                experiment,
                settings=settings,
                backend=trial_backend,
                track=track,
                observer=live,
                trial_deadline_seconds=trial_active_deadline_seconds,
            )
    except ExperimentConflict as exc:
        # The store's answer, not a bug: one line, without the controller's frames.
        raise ExperimentConflict(str(exc)) from None
    except TrackingUnavailable as exc:
        raise TrackingUnavailable(
            f"{exc}; fix that, point MLFLOW_TRACKING_URI elsewhere, or pass track=False"
        ) from None
    if outcome.already_finished:
        meta = experiment.metadata
        logger.warning(
            "experiment %s/%s had already finished; returning its stored result "
            "(delete it, e.g. `hyperflow experiment delete %s -n %s`, to run it again)",
            meta.namespace,
            meta.name,
            meta.name,
            meta.namespace,
        )
    result = _result(experiment, outcome.record, settings, outcome.tracking)
    result.already_finished = outcome.already_finished
    result.tracking_unwritten = outcome.unwritten
    if outcome.interrupted:
        raise KeyboardInterrupt  # Ctrl-C while waiting for MLflow: it was reported above
    return result


def _result(
    experiment: Experiment, record: ExperimentRecord, settings: TunerSettings, tracking: str | None
) -> TuneResult:
    from tuner.status import best_trial, experiment_object
    from tuner.store import Store

    store = Store(settings.store_url)
    try:
        trials = store.trials(record.uid)
    finally:
        store.close()
    best = best_trial(experiment.spec.objective, trials)
    return TuneResult(
        experiment=record,
        trials=trials,
        status=experiment_object(record, experiment.spec.objective, trials)["status"],
        tracking=tracking,
        best_trial=best,
        best_parameters=dict(best.assignments) if best else {},
    )


def get_optimal_hyperparameters(
    name: str, namespace: str = "default", settings: TunerSettings | None = None
) -> dict[str, Any]:
    """Katib's ``get_optimal_hyperparameters``: the currentOptimalTrial of a stored experiment."""
    from tuner.status import optimal_trial
    from tuner.store import Store

    settings = settings or TunerSettings()
    store = Store(settings.store_url)
    try:
        record = store.get_experiment(namespace, name)
        if record is None:
            raise LookupError(f"experiment {namespace}/{name} not found")
        trials = store.trials(record.uid)
    finally:
        store.close()
    experiment = Experiment.model_validate(record.spec)
    return optimal_trial(experiment.spec.objective, trials)
