"""Trial backends: hyperflow's per-trial overhead on a cluster backend against the peer.

Sections (run all, or some with ``--only``):

* ``ray`` — the same 100 trivial trials (``return {"loss": x}``) at concurrency 2 on the
  same local Ray (``ray.init(num_cpus=2)``, started once, timed apart): hyperflow's
  ``tune(backend="ray")`` (a warm pool of 2 Ray actors; each trial a streaming actor call
  plus the controller's store writes) against Ray Tune's ``Tuner.fit()`` of the same
  function with ``max_concurrent_trials=2`` (target: hyperflow >= 5x faster per trial).
  A second row runs 100 command trials (``python -c``) as Ray tasks through
  ``experiment run --backend ray``'s code path, for scale (each starts an interpreter).

Run:  .venv/bin/python benchmarks/backends.py [--trials 100] [--only ray]
Each hyperflow run uses a fresh HYPERFLOW_HOME in a temporary folder, MLflow off (the
peer has no tracking store either).

A new section is a function ``section_<name>(args) -> list[Row]`` added to ``SECTIONS``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


@dataclass
class Row:
    work: str
    hyperflow: float  # seconds for all trials
    peer: str  # the peer's name
    peer_seconds: float | None
    trials: int

    def line(self) -> str:
        ours = f"{self.hyperflow:.2f} s ({self.hyperflow / self.trials * 1000:.1f} ms/trial)"
        if self.peer_seconds is None:
            return f"{self.work}: hyperflow {ours}"
        theirs = (
            f"{self.peer_seconds:.2f} s ({self.peer_seconds / self.trials * 1000:.1f} ms/trial)"
        )
        ratio = self.peer_seconds / self.hyperflow
        return f"{self.work}: hyperflow {ours}; {self.peer} {theirs}; hyperflow {ratio:.1f}x faster per trial"


def trivial(parameters: dict[str, float]) -> dict[str, float]:
    return {"loss": parameters["x"]}


def section_ray(args: argparse.Namespace) -> list[Row]:
    import ray
    from ray import tune as rtune

    from benchmarks.trials import _experiment
    from tuner.runner import run_experiment
    from tuner.sdk import search, tune
    from tuner.settings import TunerSettings

    n, parallel = args.trials, 2
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    print(f"ray.init: {time.perf_counter() - t0:.1f} s (not counted)", flush=True)
    rows: list[Row] = []
    try:
        with tempfile.TemporaryDirectory() as home:
            start = time.perf_counter()
            result = tune(
                name="bench-ray",
                objective=trivial,
                parameters={"x": search.double(min=0, max=1)},
                objective_metric_name="loss",
                objective_type="minimize",
                max_trial_count=n,
                parallel_trial_count=parallel,
                track=False,
                backend="ray",
                settings=TunerSettings(home=Path(home)),
            )
            ours = time.perf_counter() - start
            ok = sum(1 for t in result.trials if t.phase.value == "Succeeded")
            assert ok == n, f"hyperflow: only {ok} of {n} trials succeeded"
        print(f"hyperflow tune(backend='ray'): {ours:.2f} s", flush=True)

        with tempfile.TemporaryDirectory() as tmp:
            tuner = rtune.Tuner(
                trivial,
                param_space={"x": rtune.uniform(0, 1)},
                tune_config=rtune.TuneConfig(
                    num_samples=n, max_concurrent_trials=parallel, metric="loss", mode="min"
                ),
                run_config=rtune.RunConfig(storage_path=tmp, verbose=0),
            )
            start = time.perf_counter()
            results = tuner.fit()
            theirs = time.perf_counter() - start
            ok = sum(1 for r in results if r.error is None)
            assert ok == n, f"Ray Tune: only {ok} of {n} trials succeeded"
        rows.append(Row(f"{n} function trials, concurrency 2", ours, "Ray Tune", theirs, n))
        print(rows[-1].line(), flush=True)

        if not args.skip_commands:
            with tempfile.TemporaryDirectory() as home:
                settings = TunerSettings(home=Path(home), backend="ray")
                start = time.perf_counter()
                command = ["python", "-c", "import sys; print('loss=' + sys.argv[1])"]
                experiment = _experiment(
                    "bench-ray-commands", [*command, "${trialParameters.x}"], n, parallel
                )
                outcome = run_experiment(experiment, settings=settings, track=False)
                took = time.perf_counter() - start
                assert outcome.record.phase.value == "Succeeded", outcome.record.message
            rows.append(Row(f"{n} command trials (python -c) as Ray tasks", took, "", None, n))
            print(rows[-1].line(), flush=True)
    finally:
        ray.shutdown()
    return rows


SECTIONS: dict[str, Callable[[argparse.Namespace], list[Row]]] = {
    "ray": section_ray,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append")
    parser.add_argument("--skip-commands", action="store_true", help="only the function trials")
    args = parser.parse_args()
    rows: list[Row] = []
    for name in args.only or list(SECTIONS):
        print(f"== {name}", flush=True)
        rows += SECTIONS[name](args)
    print("\nsummary:")
    for row in rows:
        print(" ", row.line())


if __name__ == "__main__":
    main()
