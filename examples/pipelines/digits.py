"""Digits, end to end: load data -> tune two model families in a ParallelFor -> pick the
best -> train -> evaluate -> if accuracy > min_accuracy (and deploy=True) -> deploy.

    hyperflow pipeline run -f examples/pipelines/digits.py
    hyperflow pipeline run -f examples/pipelines/digits.py --arg deploy=true   # needs `hyperflow server`
"""

# No `from __future__ import annotations`: kfp reads the components' annotations.
from typing import NamedTuple

from digits_models import FAMILIES
from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from pipelines.components import deploy as deploy_model
from pipelines.components import tune


@dsl.component
def load_data(test_size: float, train: Output[Dataset], test: Output[Dataset]):
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=0, stratify=y
    )
    for artifact, X_part, y_part in ((train, X_train, y_train), (test, X_test, y_test)):
        with open(artifact.path, "wb") as f:
            np.savez(f, X=X_part, y=y_part)
        artifact.metadata["rows"] = len(y_part)


@dsl.component
def search_space(family: str) -> NamedTuple("Space", parameters=dict, fixed=dict):  # type: ignore[valid-type]
    from collections import namedtuple

    from digits_models import FAMILIES

    return namedtuple("Space", ["parameters", "fixed"])(FAMILIES[family], {"family": family})


@dsl.component
def pick_best(families: list, values: list, parameters: list) -> NamedTuple(
    "Best", family=str, parameters=dict, cv_accuracy=float
):  # type: ignore[valid-type]
    from collections import namedtuple

    best = max(range(len(values)), key=lambda i: values[i])
    print(f"cross-validated accuracy: {dict(zip(families, values, strict=True))}")
    return namedtuple("Best", ["family", "parameters", "cv_accuracy"])(
        families[best], parameters[best], values[best]
    )


@dsl.component
def train(family: str, parameters: dict, train: Input[Dataset], model: Output[Model]):
    import os

    import joblib
    from digits_models import load, make_model

    X, y = load(train.path)
    os.makedirs(model.path, exist_ok=True)
    joblib.dump(make_model(family, parameters).fit(X, y), os.path.join(model.path, "model.joblib"))
    model.metadata.update({"framework": "sklearn", "family": family, **parameters})


@dsl.component
def evaluate(model: Input[Model], test: Input[Dataset], metrics: Output[Metrics]) -> float:
    import os

    import joblib
    from digits_models import load

    X, y = load(test.path)
    accuracy = float(joblib.load(os.path.join(model.path, "model.joblib")).score(X, y))
    metrics.log_metric("accuracy", accuracy)
    return accuracy


@dsl.pipeline(name="digits")
def digits(
    trials: int = 6,
    min_accuracy: float = 0.95,
    deploy: bool = False,
    service: str = "digits",
    experiment_prefix: str = "digits",
) -> float:
    data = load_data(test_size=0.25)
    with dsl.ParallelFor(list(FAMILIES)) as family:
        space = search_space(family=family)
        tuned = tune(
            name=f"{experiment_prefix}-{family}",
            objective="digits_models:objective",
            parameters=space.outputs["parameters"],
            objective_metric_name="accuracy",
            objective_type="maximize",
            algorithm_name="tpe",
            max_trial_count=trials,
            parallel_trial_count=2,
            fixed=space.outputs["fixed"],
            dataset=data.outputs["train"],
        )
    best = pick_best(
        families=list(FAMILIES),
        values=dsl.Collected(tuned.outputs["best_objective_value"]),
        parameters=dsl.Collected(tuned.outputs["best_parameters"]),
    )
    model = train(
        family=best.outputs["family"],
        parameters=best.outputs["parameters"],
        train=data.outputs["train"],
    )
    accuracy = evaluate(model=model.outputs["model"], test=data.outputs["test"])
    with dsl.If(accuracy.outputs["Output"] > min_accuracy, name="accurate-enough"):  # noqa: SIM117
        with dsl.If(deploy == True, name="deploy-requested"):  # noqa: E712
            deploy_model(model=model.outputs["model"], name=service)
    return accuracy.outputs["Output"]
