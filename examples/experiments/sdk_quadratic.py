"""Tune a Python function with the SDK (like Katib's KatibClient.tune)."""

from __future__ import annotations

from tuner.sdk import search, tune


def objective(parameters: dict[str, float]) -> dict[str, float]:
    x, y = parameters["x"], parameters["y"]
    return {"loss": (x - 0.3) ** 2 + (y + 0.2) ** 2}


if __name__ == "__main__":
    result = tune(
        name="sdk-quadratic",
        objective=objective,
        parameters={"x": search.double(min=-1, max=1), "y": search.double(min=-1, max=1)},
        objective_metric_name="loss",
        objective_type="minimize",
        algorithm_name="tpe",
        max_trial_count=30,
        parallel_trial_count=2,
        progress=True,
    )
    print(
        "best:",
        result.best_parameters,
        result.best_trial.objective_value if result.best_trial else None,
    )
