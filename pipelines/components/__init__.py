"""Ready-made components: ``tune`` (an Experiment through the tuner) and ``deploy`` (an
InferenceService through the control plane). Use them in a ``@dsl.pipeline`` like any
other kfp component::

    from pipelines.components import deploy, tune

    best = tune(name="svc", objective="my_objectives:svc", parameters={...},
                objective_metric_name="accuracy", max_trial_count=8)
    deploy(model=best.outputs["model"], name="digits")

Their code runs in the task's process of hyperflow's environment (as any component does
here), so they import hyperflow itself; in a KFP cluster they need an image with
hyperflow installed.
"""

# No `from __future__ import annotations`: kfp reads the components' annotations.
import warnings
from typing import NamedTuple, Optional

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)  # kfp's note on its default base image

    @dsl.component
    def tune(
        name: str,
        model: Output[Model],
        objective: str = "",
        parameters: Optional[dict] = None,  # noqa: UP045 (kfp reads typing.Optional)
        objective_metric_name: str = "",
        objective_type: str = "maximize",
        objective_goal: Optional[float] = None,  # noqa: UP045
        algorithm_name: str = "random",
        max_trial_count: int = 10,
        parallel_trial_count: int = 2,
        max_failed_trial_count: Optional[int] = None,  # noqa: UP045
        experiment: Optional[dict] = None,  # noqa: UP045
        fixed: Optional[dict] = None,  # noqa: UP045
        dataset: Optional[Input[Dataset]] = None,  # noqa: UP045
    ) -> NamedTuple("TuneOutputs", best_parameters=dict, best_objective_value=float):  # type: ignore[valid-type]
        """Run an Experiment through hyperflow's tuner; output the best trial.

        Either ``experiment``, a Katib ``kubeflow.org/v1beta1`` Experiment as a dict
        (trials run as local processes; the dataset path is in ``$HYPERFLOW_INPUT_DATASET``),
        or the SDK's arguments: ``objective`` is ``"package.module:function"``, called as
        ``function(parameters, dataset=<path>, **fixed)`` (``dataset`` only when given);
        ``parameters`` maps names to ``{"type": "double"|"int"|"categorical"|"discrete",
        "min": .., "max": .., "step": .., "distribution": .., "values": [..]}``.
        Trials save their model under ``$HYPERFLOW_ARTIFACTS_DIR``; the best trial's files
        become ``model``. Running it again with the same ``name`` returns the stored result.
        """
        from collections import namedtuple

        from pipelines.tasks.tune import run_tune

        best_parameters, best_value, metadata = run_tune(
            name=name,
            objective=objective,
            parameters=parameters,
            objective_metric_name=objective_metric_name,
            objective_type=objective_type,
            objective_goal=objective_goal,
            algorithm_name=algorithm_name,
            max_trial_count=max_trial_count,
            parallel_trial_count=parallel_trial_count,
            max_failed_trial_count=max_failed_trial_count,
            experiment=experiment,
            fixed=fixed,
            dataset_path=dataset.path if dataset is not None else None,
            model_path=model.path,
        )
        model.metadata.update(metadata)
        TuneOutputs = namedtuple("TuneOutputs", ["best_parameters", "best_objective_value"])
        return TuneOutputs(best_parameters, best_value)

    @dsl.component
    def deploy(
        model: Input[Model],
        name: str,
        namespace: str = "default",
        model_format: str = "",
        min_replicas: Optional[int] = None,  # noqa: UP045
        max_replicas: Optional[int] = None,  # noqa: UP045
        canary_traffic_percent: Optional[int] = None,  # noqa: UP045
        timeout: float = 300.0,
    ) -> str:
        """Create or replace the KServe InferenceService ``name`` serving ``model``
        through the hyperflow server (``$HYPERFLOW_SERVER``, token ``$HYPERFLOW_TOKEN``),
        wait until it is Ready and output its URL. ``model_format`` defaults to the
        model's ``framework`` metadata, else ``sklearn``."""
        from pipelines.tasks.deploy import deploy_model

        return deploy_model(
            storage_uri=model.path,
            name=name,
            namespace=namespace,
            model_format=model_format or model.metadata.get("framework") or "sklearn",
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            canary_traffic_percent=canary_traffic_percent,
            timeout=timeout,
        )


__all__ = ["deploy", "tune"]
