"""Kubeflow Pipelines (kfp SDK) pipelines run locally: parallel, cached, resumable, tracked.

    import pipelines
    result = pipelines.run(my_pipeline, arguments={"n": 3})
    print(result.state, result.outputs)

Importing this package is cheap; kfp is imported when a pipeline is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.runner import PipelineRun


def run(
    pipeline: Any,
    arguments: dict[str, Any] | None = None,
    **options: Any,
) -> PipelineRun:
    """Run a pipeline (a ``@dsl.pipeline`` function, a compiled YAML or a Python file).

    Options: ``parallelism``, ``cache`` (default True), ``run_name``, ``pipeline`` (which
    pipeline of a Python file), ``namespace``, ``track`` (MLflow, default True),
    ``settings``. Returns the finished run with its tasks and outputs; a task failure is a
    run in state FAILED (``result.succeeded`` is False), not an exception; bad input
    (a pipeline that does not compile, a wrong argument) raises ``PipelineError``.
    """
    from pipelines.runner import run_pipeline

    return run_pipeline(pipeline, arguments, **options)


__all__ = ["run"]
