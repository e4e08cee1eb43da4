"""Trial throughput: hyperflow's controller against the floor, bare optuna and Ray Tune.

1. 100 no-op command trials at parallelTrialCount 2, against the floor of spawning the
   same 100 processes two at a time: from this process (the floor the issue measured) and
   from a small interpreter of its own (the strict floor, see ``strict_floor``). Two no-op
   trials: a Python one-liner (what a trial script costs to start; target <= 1.2x the
   floor with MLflow on) and /bin/echo (pure overhead; target <= 3x the floor with MLflow
   off).
2. 100 SDK function trials (a no-op function) at concurrency 2, against bare optuna
   ask/tell of the same sampler (target: at most 3 ms per trial above it with MLflow off,
   5 ms with MLflow on), and (unless --skip-ray) Ray Tune running the same function with
   ``max_concurrent_trials=2``.
3. 1,000 function trials at concurrency 8 (trials per second), alone and as 4 experiments
   at once in one process (4 threads, as the server runs them).

Run:  .venv/bin/python benchmarks/trials.py [--trials 100] [--skip-ray] [--only ...]
Each run uses a fresh HYPERFLOW_HOME in a temporary folder (all of them removed when the
script ends, see ``kept_folder``) whose store is created before timing (a user's exists
after the first run; --fresh-home times its creation too). MLflow logging is on (the
default), as a user would run it, into one MLflow SQLite store created before timing
starts (a user's store exists already: creating one runs MLflow's schema
migrations, seconds of work); a second row shows MLflow off. Each part is warmed up first
(a small experiment: the lazy imports of this process), and hyperflow's modules are
compiled to bytecode, as an installed package has them.
"""

from __future__ import annotations

import argparse
import atexit
import compileall
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.experiments import command_experiment  # noqa: E402

_SESSION: list[str] = []  # the folder every run's files go under, removed at exit


@contextlib.contextmanager
def kept_folder() -> Iterator[str]:
    """A fresh folder for one run, removed when the script ends instead of after the run.
    On an ext4 without a journal (this VM's disk), creating a file costs up to 10x more
    for one to five minutes after thousands were deleted (ext4 skips recently freed
    inodes: benchmarks/README.md, sixth pass); each run's clean-up would slow the runs
    after it, the later rows more than the earlier ones."""
    if not _SESSION:
        root = tempfile.mkdtemp(prefix="hyperflow-bench-runs-")
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        _SESSION.append(root)
    yield tempfile.mkdtemp(dir=_SESSION[0])


# Two floors, each a scheduler that does nothing but spawn the commands ``parallel`` at a
# time (output to a file each) and wait for whichever ends first:
# - "floor": the one the issue's figures were measured against, ``subprocess.Popen`` from
#   this process (big once hyperflow and optuna are imported: its spawns cost more);
# - "strict floor": the same loop in a small interpreter of its own (no site, standard
#   library only), as hyperflow's reaper spawns. It reports its wall time and the CPU of
#   itself and its children from its first spawn to its last wait.
_FLOOR = r"""
import json, os, resource, subprocess, sys, time
with open(sys.argv[1]) as f:
    commands = json.load(f)
parallel, logs = int(sys.argv[2]), sys.argv[3]
def cpu():
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime
cpu0, start = cpu(), time.perf_counter()
running = {}
for i, cmd in enumerate(commands):
    while len(running) >= parallel:
        running.pop(os.wait()[0], None)
    with open(os.path.join(logs, f"{i}.log"), "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    running[proc.pid] = proc
while running:
    running.pop(os.wait()[0], None)
print(json.dumps([time.perf_counter() - start, cpu() - cpu0]))
"""


def floor(commands: list[list[str]], parallel: int) -> float:
    """Seconds to spawn the commands ``parallel`` at a time from this process."""
    start = time.perf_counter()
    running: dict[int, subprocess.Popen[bytes]] = {}
    with kept_folder() as tmp:
        for i, cmd in enumerate(commands):
            while len(running) >= parallel:
                running.pop(os.wait()[0], None)
            with open(Path(tmp) / f"{i}.log", "wb") as log:
                proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
            running[proc.pid] = proc
        while running:
            running.pop(os.wait()[0], None)
    return time.perf_counter() - start


def strict_floor(commands: list[list[str]], parallel: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of spawning the commands ``parallel`` at a time from a
    small interpreter of its own."""
    import json

    with kept_folder() as tmp:
        listing = Path(tmp) / "commands.json"
        listing.write_text(json.dumps(commands))
        out = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _FLOOR, str(listing), str(parallel), tmp],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    elapsed, cpu = json.loads(out)
    return float(elapsed), float(cpu)


def prepared_home(home: str) -> str:
    """A hyperflow home whose store exists, as a user's does after the first run (creating
    it runs the store's migrations: a one-time cost, timed by ``--fresh-home``)."""
    if os.environ.get("BENCH_FRESH_HOME") != "1":
        from tuner.settings import TunerSettings
        from tuner.store import Store

        settings = TunerSettings(home=Path(home))
        settings.ensure_home()
        Store(settings.store_url).close()
    return home


# CPU seconds (all processes, see cpu_seconds) of the timed part of the last
# hyperflow_commands / hyperflow_functions call: the experiment alone, not the benchmark's
# set-up of its home (the store's migrations) or its clean-up.
LAST_CPU = [0.0]


def hyperflow_commands(
    name: str, command: list[str], trials: int, parallel: int, track: bool
) -> tuple[float, int]:
    from tuner.runner import run_experiment
    from tuner.settings import TunerSettings

    with kept_folder() as home:
        settings = TunerSettings(home=Path(prepared_home(home)))
        experiment = command_experiment(name, command, trials, parallel)
        cpu = cpu_seconds()
        start = time.perf_counter()
        outcome = run_experiment(experiment, settings=settings, track=track)
        elapsed = time.perf_counter() - start
        LAST_CPU[0] = cpu_seconds() - cpu
        from tuner.store import Store

        store = Store(settings.store_url)
        succeeded = sum(1 for t in store.trials(outcome.record.uid) if t.phase.value == "Succeeded")
        store.close()
    return elapsed, succeeded


def noop(parameters: dict[str, float]) -> dict[str, float]:
    return {"loss": parameters["x"]}


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (workers, trials, MLflow writer):
    a measure the machine's load does not inflate the way it does wall time."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def where_it_runs(folder: str) -> str:
    """What bounds the command rows besides hyperflow: the file system the trials' folders
    go to (and the CPU one new inode costs there, measured now) and what a ``python`` start
    costs in this environment, with and without the site module (``-S``: no site-packages,
    no ``.pth`` files).

    On ext4 without a journal the kernel checks every free inode it passes for a recent
    deletion (``recently_deleted`` in fs/ext4/ialloc.c, skipped when a journal exists): a
    new inode costs 0.1-0.7 ms of CPU on a disk where other processes delete files, about
    0.02 ms on a journaled ext4 or tmpfs. An editable install's finder (a ``.pth`` that
    imports pathlib and more) is ~17 ms of every interpreter's start, the ``python -c``
    floor included; a regular install has none."""
    import resource

    real = os.path.realpath(folder)
    best = ("?", "?", "")
    with open("/proc/mounts") as mounts:
        for line in mounts:
            device, point, kind = line.split()[:3]
            if (real + "/").startswith(point.rstrip("/") + "/") and len(point) >= len(best[2]):
                best = (device, kind, point)
    device, kind, _ = best
    journal = ""
    if kind == "ext4":
        name = os.path.basename(os.path.realpath(device))
        has = any(entry.startswith(name + "-") for entry in os.listdir("/proc/fs/jbd2"))
        journal = ", with a journal" if has else ", no journal"

    def cpu() -> float:
        me = resource.getrusage(resource.RUSAGE_SELF)
        return me.ru_utime + me.ru_stime

    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        start = cpu()
        for i in range(200):  # a trial's pattern: a new folder, a file in it
            os.mkdir(f"{tmp}/{i}")
            os.close(os.open(f"{tmp}/{i}/f", os.O_WRONLY | os.O_CREAT, 0o644))
        inode_ms = (cpu() - start) / 400 * 1000

    def start_ms(*flags: str) -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        for _ in range(10):
            subprocess.run([sys.executable, *flags, "-c", "pass"], check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        return used / 10 * 1000

    return (
        f"{folder}: {kind} on {device}{journal}; a new inode costs {inode_ms:.3f} ms of CPU "
        f"now | python start {start_ms():.1f} ms of CPU ({start_ms('-S'):.1f} ms without "
        f"the site module: -S)"
    )


def bare_optuna(trials: int) -> float:
    """Seconds for ``trials`` ask/tell rounds of optuna's RandomSampler, same space."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = {"x": optuna.distributions.FloatDistribution(0, 1)}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    start = time.perf_counter()
    for _ in range(trials):
        trial = study.ask(space)
        study.tell(trial, trial.params["x"])
    return time.perf_counter() - start


def hyperflow_functions(
    trials: int, parallel: int, track: bool, name: str = "bench-functions", home: str | None = None
) -> tuple[float, int]:
    from tuner.sdk import search, tune
    from tuner.settings import TunerSettings

    with kept_folder() as tmp:
        home = home or prepared_home(tmp)
        cpu = cpu_seconds()
        start = time.perf_counter()
        result = tune(
            name=name,
            objective=noop,
            parameters={"x": search.double(min=0, max=1)},
            objective_metric_name="loss",
            objective_type="minimize",
            max_trial_count=trials,
            parallel_trial_count=parallel,
            track=track,
            settings=TunerSettings(home=Path(home)),
            progress=False,
        )
        elapsed = time.perf_counter() - start
        LAST_CPU[0] = cpu_seconds() - cpu
    return elapsed, sum(1 for t in result.trials if t.phase.value == "Succeeded")


def concurrent_experiments(
    count: int, trials: int, parallel: int, track: bool
) -> tuple[float, int]:
    """``count`` tune() calls at once in this process, one store (the server's situation)."""
    import threading

    results: list[tuple[float, int] | BaseException] = []
    with kept_folder() as tmp:
        home = prepared_home(tmp)

        def one(i: int) -> None:
            try:
                results.append(
                    hyperflow_functions(trials, parallel, track, name=f"bench-many-{i}", home=home)
                )
            except BaseException as error:  # reported below
                results.append(error)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return elapsed, sum(r[1] for r in results if not isinstance(r, BaseException))


def ray_tune(trials: int, parallel: int) -> tuple[float, float, int]:
    import ray
    from ray import tune as rtune

    with kept_folder() as tmp:
        t0 = time.perf_counter()
        ray.init(
            num_cpus=os.cpu_count(),
            include_dashboard=False,
            log_to_driver=False,
            logging_level="ERROR",
        )
        t_init = time.perf_counter() - t0

        def trainable(config: dict[str, float]) -> dict[str, float]:
            return {"loss": config["x"]}

        tuner = rtune.Tuner(
            trainable,
            param_space={"x": rtune.uniform(0, 1)},
            tune_config=rtune.TuneConfig(
                num_samples=trials, max_concurrent_trials=parallel, metric="loss", mode="min"
            ),
            run_config=ray.tune.RunConfig(storage_path=tmp, verbose=0),
        )
        start = time.perf_counter()
        results = tuner.fit()
        elapsed = time.perf_counter() - start
        ok = sum(1 for r in results if r.error is None)
        ray.shutdown()
    return elapsed, t_init, ok


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--many-trials", type=int, default=1000)
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="command rows: rounds of (MLflow on, off, floor), medians reported",
    )
    parser.add_argument(
        "--fresh-home",
        action="store_true",
        help="time the creation of hyperflow's store too (first run in a new home)",
    )
    parser.add_argument(
        "--only",
        default="commands,functions,many",
        help="comma-separated parts to run: commands, functions, many",
    )
    args = parser.parse_args()
    only = set(args.only.split(","))
    if args.fresh_home:
        os.environ["BENCH_FRESH_HOME"] = "1"
    n, par = args.trials, args.parallel
    mlflow_dir = tempfile.mkdtemp(prefix="hyperflow-bench-mlflow-")
    atexit.register(shutil.rmtree, mlflow_dir, ignore_errors=True)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{mlflow_dir}/mlflow.db"
    from tuner.tracking.mlflow_store import prepare_sqlite_store

    prepare_sqlite_store(Path(mlflow_dir) / "mlflow.db")  # its migrations, before timing
    # The MLflow writer is a fresh interpreter per experiment: it loads hyperflow's modules
    # from their bytecode, as an installed package has it (PYTHONDONTWRITEBYTECODE, where
    # set, would otherwise make it compile them from source every time).
    for package in ("tuner", "serving"):
        compileall.compile_dir(str(REPO / package), quiet=2)
    rows: list[tuple[str, str, str]] = []

    print(f"where: {where_it_runs(tempfile.gettempdir())}")
    print(f"== {n} no-op command trials, {par} at a time ==")
    variants = (
        {}
        if "commands" not in only
        else {
            "python -c": ["python", "-c", "print('loss=${trialParameters.x}')"],
            "/bin/echo": ["/bin/echo", "loss=${trialParameters.x}"],
        }
    )
    for label, template in variants.items():
        argv0 = sys.executable if template[0] == "python" else template[0]
        commands = [
            [argv0, *[a.replace("${trialParameters.x}", str(i / n)) for a in template[1:]]]
            for i in range(n)
        ]
        strict_floor(commands[:10], par)  # warm the page cache for the interpreter / binary
        # CPU of all processes (this one, the trials, the reaper, the MLflow writer) per
        # trial: what the machine's load does not inflate the way it inflates wall time.
        cpu = {"floor": 0.0, "strict": 0.0, "on": 0.0, "off": 0.0}
        times: dict[str, list[float]] = {"floor": [], "strict": [], "on": [], "off": []}
        # The first floor from this process before it has run hyperflow (spawning from it
        # is slower after: 1.34 s vs 1.83 s for the same floor, load ~1.3).
        before = cpu_seconds()
        times["floor"].append(floor(commands, par))
        cpu["floor"] += cpu_seconds() - before
        # Warm hyperflow (its lazy imports in this process, the MLflow writer's files):
        # otherwise the first row timed pays them and the second does not.
        hyperflow_commands("bench-warm", template, 10, par, track=True)
        hyperflow_commands("bench-warm", template, 10, par, track=False)
        slug = label.strip("/-").replace(" ", "-").replace("/", "-")
        ok = 0
        # Round-robin (--repeat): a change of the machine's speed hits every column.
        for round_ in range(args.repeat):
            elapsed, ok = hyperflow_commands(f"bench-{slug}-{round_}", template, n, par, True)
            times["on"].append(elapsed)
            cpu["on"] += LAST_CPU[0]
            times["off"].append(
                hyperflow_commands(f"bench-off-{slug}-{round_}", template, n, par, False)[0]
            )
            cpu["off"] += LAST_CPU[0]
            strict_time, strict_cpu = strict_floor(commands, par)
            times["strict"].append(strict_time)
            cpu["strict"] += strict_cpu
            if round_ < args.repeat - 1:  # (the first round's came before hyperflow)
                before = cpu_seconds()
                times["floor"].append(floor(commands, par))
                cpu["floor"] += cpu_seconds() - before
        median = {key: statistics.median(values) for key, values in times.items()}
        cpu_ms = {key: value / len(times[key]) / n * 1000 for key, value in cpu.items()}
        if args.repeat > 1:
            print(
                f"{label:10s} all runs (s): "
                + " | ".join(
                    f"{key} {', '.join(f'{t:.2f}' for t in values)}"
                    for key, values in times.items()
                )
            )
        print(
            f"{label:10s} hyperflow MLflow on {median['on']:.2f}s ({ok} ok), off "
            f"{median['off']:.2f}s | floor {median['floor']:.2f}s: {median['on'] / median['floor']:.2f}x / "
            f"{median['off'] / median['floor']:.2f}x | strict floor {median['strict']:.2f}s: "
            f"{median['on'] / median['strict']:.2f}x / {median['off'] / median['strict']:.2f}x "
            f"| CPU ms/trial: floor {cpu_ms['floor']:.2f}, strict {cpu_ms['strict']:.2f}, "
            f"MLflow on {cpu_ms['on']:.2f}, off {cpu_ms['off']:.2f}"
        )
        for key, what in (("on", "MLflow on"), ("off", "MLflow off")):
            rows.append(
                (
                    f"{n} command trials ({label}), {what}",
                    f"{median[key]:.2f} s vs floor {median['floor']:.2f} s, strict floor "
                    f"{median['strict']:.2f} s",
                    f"{median[key] / median['floor']:.2f}x / strict {median[key] / median['strict']:.2f}x "
                    f"(CPU {cpu_ms[key]:.2f} vs {cpu_ms['floor']:.2f} / {cpu_ms['strict']:.2f} ms/trial)",
                )
            )

    if "functions" in only:
        print(f"\n== {n} SDK function trials, {par} at a time ==")
        t_opt = min(bare_optuna(n) for _ in range(3))
        hyperflow_functions(10, par, track=False)  # warm: imports, page cache
        t_fn, ok = hyperflow_functions(n, par, track=True)
        cpu_on = LAST_CPU[0]
        t_fn_off, ok_off = hyperflow_functions(n, par, track=False)
        cpu_off = LAST_CPU[0]
        per = {k: v / n * 1000 for k, v in (("opt", t_opt), ("on", t_fn), ("off", t_fn_off))}
        cpu = {"on": cpu_on / n * 1000, "off": cpu_off / n * 1000}
        print(
            f"bare optuna ask/tell {per['opt']:.2f} ms/trial | hyperflow tune() MLflow off "
            f"{t_fn_off:.2f}s ({ok_off} ok, {per['off']:.2f} ms/trial, +{per['off'] - per['opt']:.2f} ms; "
            f"CPU {cpu['off']:.2f} ms/trial) | MLflow on {t_fn:.2f}s ({ok} ok, {per['on']:.2f} ms/trial, "
            f"+{per['on'] - per['opt']:.2f} ms; CPU {cpu['on']:.2f} ms/trial)"
        )
        # Per-trial cost without the fixed start and end of an experiment: the extra time
        # of 3n trials over n, per extra trial.
        t_3n_off, _ = hyperflow_functions(3 * n, par, track=False)
        t_3n_on, _ = hyperflow_functions(3 * n, par, track=True)
        marginal = {
            "off": (t_3n_off - t_fn_off) / (2 * n) * 1000,
            "on": (t_3n_on - t_fn) / (2 * n) * 1000,
        }
        print(
            f"steady state (({3 * n} trials - {n} trials) / {2 * n}): MLflow off "
            f"{marginal['off']:.2f} ms/trial, on {marginal['on']:.2f} ms/trial"
        )
        for label in ("off", "on"):
            rows.append(
                (
                    f"function trials, steady state ({3 * n} vs {n} trials), MLflow {label}",
                    f"{marginal[label]:.2f} ms/trial vs {per['opt']:.2f} ms/trial",
                    f"+{marginal[label] - per['opt']:.2f} ms/trial",
                )
            )
        for label in ("off", "on"):
            t = t_fn_off if label == "off" else t_fn
            rows.append(
                (
                    f"{n} function trials vs bare optuna ask/tell, MLflow {label}",
                    f"{t:.2f} s ({per[label]:.2f} ms/trial; CPU {cpu[label]:.2f} ms/trial, all "
                    f"processes) vs {per['opt']:.2f} ms/trial",
                    f"+{per[label] - per['opt']:.2f} ms/trial",
                )
            )
        if not args.skip_ray:
            t_ray, t_init, ok_ray = ray_tune(n, par)
            print(
                f"Ray Tune: {t_ray:.2f}s ({ok_ray} ok, {t_ray / n * 1000:.0f} ms/trial) + ray.init {t_init:.2f}s"
            )
            for label, t in (("on", t_fn), ("off", t_fn_off)):
                rows.append(
                    (
                        f"{n} function trials vs Ray Tune, MLflow {label}",
                        f"{t:.2f} s vs {t_ray:.2f} s",
                        f"{t_ray / t:.1f}x faster",
                    )
                )

    if "many" in only:
        big, wide = args.many_trials, 8
        print(f"\n== {big} function trials, {wide} at a time; then 4 such experiments at once ==")
        for track in (False, True):
            label = "on" if track else "off"
            t_one, ok_one = hyperflow_functions(big, wide, track=track, name="bench-many")
            t_four, ok_four = concurrent_experiments(4, big, wide, track=track)
            print(
                f"MLflow {label}: one experiment {t_one:.2f}s ({ok_one} ok, {ok_one / t_one:.0f} "
                f"trials/s) | 4 at once {t_four:.2f}s ({ok_four} ok, {ok_four / t_four:.0f} trials/s)"
            )
            rows.append(
                (
                    f"{big} function trials at parallel {wide}, MLflow {label}",
                    f"{t_one:.2f} s ({ok_one} succeeded)",
                    f"{ok_one / t_one:.0f} trials/s",
                )
            )
            rows.append(
                (
                    f"4 experiments x {big} function trials at parallel {wide}, one process, MLflow {label}",
                    f"{t_four:.2f} s ({ok_four} succeeded)",
                    f"{ok_four / t_four:.0f} trials/s",
                )
            )

    print("\n| work | time | ratio |\n|---|---|---|")
    for row in rows:
        print(f"| {row[0]} | {row[1]} | {row[2]} |")


if __name__ == "__main__":
    main()
