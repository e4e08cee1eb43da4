"""Run one lightweight Python component inside a warm worker process.

The orchestrator hands :func:`execute` to :class:`tuner.backends.function.FunctionBackend`;
each task is one call in a warm ``tuner.backends._worker`` process, whose stdout/stderr
already go to the task's ``trial.log``. What a KFP container would do after its
``pip install`` is done here, the same way: the component's source from the spec is
written to ``ephemeral_component.py``, loaded as module ``ephemeral_component`` and its
function run by kfp's own :class:`kfp.dsl.executor.Executor` with the task's
ExecutorInput, which writes the outputs (return values, ``OutputPath`` files, artifacts
and their metadata, ``executor_output.json``) exactly as in KFP.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

MODULE_NAME = "ephemeral_component"


def prepare_worker() -> None:
    """Import kfp's executor now, before the first task, as its runtime does in a KFP
    container: without the compiler and client (they import the kubernetes client:
    seconds, not milliseconds). A forked worker's initializer; a spawned one calls it
    when it loads this module."""
    if "kfp.dsl" not in sys.modules:  # (a parent may have imported kfp's package only)
        os.environ["_KFP_RUNTIME"] = "true"
    import kfp.dsl.executor  # noqa: F401


_main = sys.modules.get("__main__")
IN_WORKER = getattr(getattr(_main, "__spec__", None), "name", None) == "tuner.backends._worker"
if IN_WORKER:
    # Loaded by a spawned worker when it starts. The orchestrator's process only pickles
    # a reference to ``execute`` and imports kfp as it needs.
    prepare_worker()


def execute(task: dict[str, Any]) -> None:
    """``task``: ``executor_input`` (JSON text), ``source``, ``function``, ``task_dir``,
    ``paths`` (``os.pathsep``-joined folders to import from during the task: the pipeline
    file's)."""
    from kfp.dsl import executor as component_executor

    _log_like_kfp()
    program_dir = Path(task["task_dir"]) / "program"
    program_dir.mkdir(parents=True, exist_ok=True)
    module_path = program_dir / f"{MODULE_NAME}.py"
    module_path.write_text(task["source"])
    function_name = task["function"]
    logging.info(f"Loading KFP component {function_name!r} from {module_path}")
    spec = importlib.util.spec_from_file_location(MODULE_NAME, module_path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(MODULE_NAME)
    sys.modules[MODULE_NAME] = module
    # The program's folder (as kfp's executor_main does), then the pipeline file's folder.
    paths = [p for p in task.get("paths", "").split(os.pathsep) if p]
    added = [p for p in [str(program_dir), *paths] if p not in sys.path]
    sys.path[:0] = added
    try:
        spec.loader.exec_module(module)
        function = getattr(module, function_name)
        executor = component_executor.Executor(
            executor_input=json.loads(task["executor_input"]), function_to_execute=function
        )
        output_file = executor.execute()
        logging.info(f"Wrote executor output file to {output_file}.")
    finally:
        for path in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(path)
        if previous is None:
            sys.modules.pop(MODULE_NAME, None)
        else:
            sys.modules[MODULE_NAME] = previous
        # The component's own loggers must not write to the next task's log.
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):
                handler.flush()


_configured = False


def _log_like_kfp() -> None:
    """kfp's executor_main logs to stdout in this format (the task log, here)."""
    global _configured
    if _configured:
        return
    handler = logging.StreamHandler(_Stdout())
    handler.setFormatter(logging.Formatter("[KFP Executor %(asctime)s %(levelname)s]: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    _configured = True


class _Stdout:
    """Writes to whatever ``sys.stdout`` is now (the worker swaps it per task)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()
