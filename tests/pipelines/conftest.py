from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# kfp warns on every @dsl.component without base_image (its default image changes in 2027).
warnings.filterwarnings("ignore", category=FutureWarning, module=r"kfp(\.|$)")

Runner = Callable[..., Any]


@pytest.fixture(autouse=True)
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """The read commands use the local store: no control plane answers here (a server
    another test or person runs on the default port must not be used)."""
    from tests.util import free_port

    monkeypatch.setenv("HYPERFLOW_SERVER", f"http://127.0.0.1:{free_port()}")


@pytest.fixture(scope="session")
def pool() -> Iterator[Any]:
    """One warm worker pool for every pipeline test (runs share it, as runs could)."""
    from pipelines import _lightweight
    from tuner.backends.function import FunctionBackend

    backend = FunctionBackend(_lightweight.execute, workers=4)
    backend.prestart(2)
    yield backend
    backend.close()


@pytest.fixture
def run(hyperflow_home: Path, pool: Any) -> Runner:
    """``run(pipeline, arguments, **options)``: a run in this test's home, MLflow off."""
    from pipelines.runner import run_pipeline
    from tuner.settings import TunerSettings

    settings = TunerSettings(home=hyperflow_home)

    def go(pipeline: Any, arguments: dict[str, Any] | None = None, **options: Any) -> Any:
        options.setdefault("track", False)
        options.setdefault("parallelism", 4)
        return run_pipeline(
            pipeline, arguments, settings=settings, function_backend=pool, **options
        )

    return go


def states(result: Any) -> dict[str, str]:
    return {t.path: t.state for t in result.tasks}


def log_of(result: Any, task: str) -> str:
    record = result.task(task)
    return (Path(record.task_dir) / "trial.log").read_text()
