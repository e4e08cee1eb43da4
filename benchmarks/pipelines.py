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
ways: a cold worker pool every time (a fresh ``pipelines.run``: its workers are forked
when it starts, as the CLI does), the same without MLflow, and a warm pool kept between
runs (``function_backend=``, as a long-lived process such as a notebook or a server would).
In-process, both sides start with kfp imported (the script defined the pipelines with it).

MLflow's store is a complete SQLite store, so a run writes it from a thread of its own
process (no writer process; see tuner/tracking/mlflow_tracker.py).

Then (a) as a user types it, each a fresh process from start to outputs:
``hyperflow pipeline run -f three.yaml`` (compiled) and ``-f three.py`` (compiled by the
run), with and without MLflow, against ``python three_kfp_local.py`` (the same pipeline
run by kfp.local, as kfp's docs show it).

Run:  .venv/bin/python benchmarks/pipelines.py [--repeat 3] [--skip-kfp] [--skip-cli]
"""

# No `from __future__ import annotations`: kfp reads the components' annotations.
import argparse
import os
import statistics
import subprocess
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


THREE_STEPS_FILE = """
from kfp import dsl


@dsl.component(base_image="python:3.11")
def step(x: int) -> int:
    return x + 1


@dsl.component(base_image="python:3.11")
def join(a: int, b: int) -> int:
    return a + b


@dsl.pipeline(name="three-steps")
def three_steps(x: int = 1) -> int:
    return join(a=step(x=x).output, b=step(x=2).output).output
"""

KFP_LOCAL_SCRIPT = """
import sys
from kfp import local
from three import three_steps

local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=sys.argv[1])
print(three_steps().output)
"""


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-2000:]
    return elapsed


def cli_rows(tmp: Path, repeat: int, skip_kfp: bool) -> None:
    folder = tmp / "cli"
    folder.mkdir()
    (folder / "three.py").write_text(THREE_STEPS_FILE)
    (folder / "three_kfp_local.py").write_text(KFP_LOCAL_SCRIPT)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    python = sys.executable
    subprocess.run(
        [python, "-c", "import three, kfp.compiler as c; "
         "c.Compiler().compile(three.three_steps, 'three.yaml')"],
        cwd=folder, env=env, check=True,
    )  # fmt: skip
    hyperflow = [python, "-m", "hyperflow", "pipeline", "run", "--no-cache", "-p", "4", "-f"]
    rows = {
        "kfp.local script": [python, "three_kfp_local.py", str(tmp / "kfp-cli")],
        "-f three.yaml": [*hyperflow, "three.yaml"],
        "-f three.yaml --no-track": [*hyperflow, "three.yaml", "--no-track"],
        "-f three.py": [*hyperflow, "three.py"],
        "-f three.py --no-track": [*hyperflow, "three.py", "--no-track"],
    }
    if skip_kfp:
        del rows["kfp.local script"]
    timed(rows["-f three.yaml"], folder, env)  # the MLflow store's schema, off the clock
    times: dict[str, list[float]] = {label: [] for label in rows}
    for _ in range(repeat):  # round-robin: a change of the machine's load hits every row
        for label, command in rows.items():
            times[label].append(timed(command, folder, env))
    medians = {label: statistics.median(values) for label, values in times.items()}
    peer = medians.get("kfp.local script", float("nan"))
    print(
        f"(a) from a shell, a fresh process each (median of {repeat}; "
        f"load {os.getloadavg()[0]:.1f}):"
    )
    for label, median in medians.items():
        ratio = "" if label.startswith("kfp") else f" {peer / median:6.1f}x"
        print(f"    {label:28} {median:7.2f}s{ratio}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-kfp", action="store_true")
    parser.add_argument("--skip-cli", action="store_true")
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.1f} (1 min) on {os.cpu_count()} CPUs", flush=True)
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
        from pipelines.runner import worker_pool

        # A long-lived process (a notebook, a server) keeps its workers between runs.
        pool = worker_pool(4)
        pool.prestart()
        run_hyperflow(three_steps, {}, 4, True, pool)
        print(
            f"{'pipeline':30} {'kfp.local':>10} {'hyperflow':>10} {'no MLflow':>10} "
            f"{'warm pool':>10} {'ratio':>7} {'no MLflow':>9} {'warm':>7} {'load':>5}"
        )
        for label, pipeline, arguments, parallelism in CASES:
            kfp_times: list[float] = []
            ours: list[float] = []
            untracked: list[float] = []
            warm: list[float] = []
            for i in range(args.repeat):  # round-robin: a change of load hits every column
                if not args.skip_kfp:
                    kfp_times.append(run_kfp(pipeline, arguments, Path(tmp) / f"kfp-{i}"))
                ours.append(run_hyperflow(pipeline, arguments, parallelism, True))
                untracked.append(run_hyperflow(pipeline, arguments, parallelism, False))
                warm.append(run_hyperflow(pipeline, arguments, parallelism, True, pool))
            kfp_median = statistics.median(kfp_times) if kfp_times else float("nan")
            ours_median = statistics.median(ours)
            untracked_median = statistics.median(untracked)
            warm_median = statistics.median(warm)
            print(
                f"{label:30} {kfp_median:9.2f}s {ours_median:9.2f}s "
                f"{untracked_median:9.2f}s {warm_median:9.2f}s "
                f"{kfp_median / ours_median:6.1f}x {kfp_median / untracked_median:8.1f}x "
                f"{kfp_median / warm_median:6.1f}x {os.getloadavg()[0]:5.1f}",
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
        if not args.skip_cli:
            cli_rows(Path(tmp), args.repeat, args.skip_kfp)
        print(f"load average: {os.getloadavg()[0]:.1f} (1 min) at the end", flush=True)


if __name__ == "__main__":
    main()
