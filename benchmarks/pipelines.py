"""Pipelines: hyperflow's runner against kfp's own local mode on the same kfp pipelines.

Three pipelines, each run by ``kfp.local`` (``SubprocessRunner(use_venv=False)``: every
task a subprocess that first pip-installs kfp, then runs the component) and by hyperflow
(``pipelines.run``: warm worker processes, the DAG in parallel), in one process:

(a) 3 trivial steps: two independent, one joining them (target: >= 10x faster);
(b) a 10-task diamond of 1 s tasks (1 -> 4 -> 4 -> 1, each second-layer task after one
    of the first), hyperflow at parallelism 4, against its critical path of 4 x 1 s
    (target: within 1.3x);
(c) a ParallelFor over 8 trivial items, collected by one task.

Each pipeline runs ``--repeat`` times per runner (the median is reported). hyperflow runs
with caching off and MLflow logging on (into a store created before timing starts), three
ways: a cold worker pool every time (a fresh ``pipelines.run``, as the CLI does), the
same without MLflow, and a warm pool kept between runs (``function_backend=``, as a
long-lived process such as a notebook or a server would).

Run:  .venv/bin/python benchmarks/pipelines.py [--repeat 3] [--skip-kfp]
"""

# No `from __future__ import annotations`: kfp reads the components' annotations.
import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore", category=FutureWarning)

from kfp import dsl  # noqa: E402


@dsl.component
def step(x: int) -> int:
    return x + 1


@dsl.component
def join(a: int, b: int) -> int:
    return a + b


@dsl.component
def sleeper(seconds: float, x: int) -> int:
    import time

    time.sleep(seconds)
    return x


@dsl.component
def total(xs: list) -> float:
    return float(sum(xs))  # kfp.local hands a collected int list over as floats


@dsl.pipeline(name="three-steps")
def three_steps(x: int = 1) -> int:
    return join(a=step(x=x).output, b=step(x=2).output).output


@dsl.pipeline(name="diamond")
def diamond(seconds: float = 1.0) -> int:
    top = sleeper(seconds=seconds, x=0)
    firsts = [sleeper(seconds=seconds, x=i).after(top) for i in range(4)]
    seconds_ = [sleeper(seconds=seconds, x=i).after(firsts[i]) for i in range(4)]
    bottom = sleeper(seconds=seconds, x=9)
    for task in seconds_:
        bottom.after(task)
    return bottom.output


@dsl.pipeline(name="parallel-for")
def parallel_for() -> float:
    with dsl.ParallelFor([1, 2, 3, 4, 5, 6, 7, 8]) as item:
        squared = step(x=item)
    return total(xs=dsl.Collected(squared.output)).output


CASES = [
    ("(a) 3 trivial steps", three_steps, {}, 4),
    ("(b) diamond, 10 x 1 s tasks", diamond, {}, 4),
    ("(c) ParallelFor over 8 items", parallel_for, {}, 4),
]


def run_kfp(pipeline, arguments, root: Path) -> float:
    from kfp import local

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    # kfp.local logs every task's executor input and output on stdout: keep the table readable.
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        started = time.perf_counter()
        task = pipeline(**arguments)
        elapsed = time.perf_counter() - started
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
    assert task.output is not None
    return elapsed


def run_hyperflow(pipeline, arguments, parallelism: int, track: bool, pool=None) -> float:
    import pipelines

    started = time.perf_counter()
    result = pipelines.run(
        pipeline,
        arguments,
        parallelism=parallelism,
        cache=False,
        track=track,
        function_backend=pool,
    )
    elapsed = time.perf_counter() - started
    assert result.succeeded, result.run.message
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-kfp", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        os.environ["HYPERFLOW_HOME"] = str(home)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{home / 'mlflow.db'}"
        # kfp.local runs `python3 -m pip ...` and `python3 -m kfp.dsl.executor_main`:
        # this environment's python, which has kfp installed (as use_venv=False expects).
        os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
        home.mkdir()
        from mlflow import MlflowClient

        MlflowClient(os.environ["MLFLOW_TRACKING_URI"]).search_experiments()  # schema first
        run_hyperflow(three_steps, {}, 2, True)  # imports (kfp compiler, mlflow) off the clock
        from pipelines import _lightweight
        from tuner.backends.function import FunctionBackend

        # A long-lived process (a notebook, a server) keeps its workers between runs.
        pool = FunctionBackend(_lightweight.execute, workers=4)
        pool.prestart()
        run_hyperflow(three_steps, {}, 4, True, pool)
        print(
            f"{'pipeline':30} {'kfp.local':>10} {'hyperflow':>10} {'no MLflow':>10} "
            f"{'warm pool':>10} {'ratio':>7} {'warm':>7}"
        )
        for label, pipeline, arguments, parallelism in CASES:
            kfp_times = []
            if not args.skip_kfp:
                for i in range(args.repeat):
                    kfp_times.append(run_kfp(pipeline, arguments, Path(tmp) / f"kfp-{i}"))
            ours = [
                run_hyperflow(pipeline, arguments, parallelism, True) for _ in range(args.repeat)
            ]
            untracked = [
                run_hyperflow(pipeline, arguments, parallelism, False) for _ in range(args.repeat)
            ]
            warm = [
                run_hyperflow(pipeline, arguments, parallelism, True, pool)
                for _ in range(args.repeat)
            ]
            kfp_median = statistics.median(kfp_times) if kfp_times else float("nan")
            ours_median = statistics.median(ours)
            warm_median = statistics.median(warm)
            print(
                f"{label:30} {kfp_median:9.2f}s {ours_median:9.2f}s "
                f"{statistics.median(untracked):9.2f}s {warm_median:9.2f}s "
                f"{kfp_median / ours_median:6.1f}x {kfp_median / warm_median:6.1f}x",
                flush=True,
            )
            if pipeline is diamond:
                print(
                    f"{'':30} of its 4.00 s critical path: {ours_median / 4.0:.2f}x, "
                    f"{statistics.median(untracked) / 4.0:.2f}x without MLflow, "
                    f"{warm_median / 4.0:.2f}x with a warm pool",
                    flush=True,
                )
        pool.close()


if __name__ == "__main__":
    main()
