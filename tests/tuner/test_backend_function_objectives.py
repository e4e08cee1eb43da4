"""Objective functions for the function-backend tests (no tests here).

Kept apart from the test module so workers import only this small module by reference,
not pytest and the test utilities.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def dispatch(parameters: dict[str, Any]) -> Any:
    """Run the objective named by ``parameters["objective"]``: many tests, one worker."""
    return globals()[parameters["objective"]](parameters)


def doubled(parameters: dict[str, float]) -> dict[str, float]:
    return {"loss": parameters["x"] * 2, "ignored": 1.0}


def added(x: float, y: float) -> float:
    return x + y


def single_keyword(x: float) -> dict[str, float]:
    return {"loss": x}


def config_dict(config: dict[str, float], scale: float = 1.0) -> dict[str, float]:
    return {"loss": config["x"] * scale}


def printer(parameters: dict[str, float]) -> None:
    print(f"loss={parameters['x']}")
    print("noise that is not a metric")
    print("accuracy=0.75", end="")  # the last line needs no newline


def print_streamer(parameters: dict[str, float]) -> None:
    print("loss=3.0")
    go = Path(os.environ["HYPERFLOW_TRIAL_DIR"]) / "go"
    while not go.exists():  # the test lets us finish once it saw the value streamed
        time.sleep(0.01)
    print("loss=1.0")


def file_writer(parameters: dict[str, float]) -> None:
    print("loss=9.0")  # not collected: the experiment's collector is File
    metrics = Path(os.environ["HYPERFLOW_TRIAL_DIR"]) / "metrics.txt"
    metrics.write_text(f"loss={parameters['x']}\nloss=0.5\n")


def fd_writer(parameters: dict[str, float]) -> None:
    # Below Python's sys.stdout: what a C extension or a child process would do.
    os.write(1, b"raw fd line\n")
    subprocess.run([sys.executable, "-c", "print('from a child process')"], check=True)


def streamer(parameters: dict[str, float]) -> dict[str, float]:
    from tuner.report import report

    report(step=1, loss=3.0)
    report(step=2, loss=2.0, unknown=9.0)
    go = Path(os.environ["HYPERFLOW_TRIAL_DIR"]) / "go"
    while not go.exists():  # the test lets us finish once it saw the values streamed
        time.sleep(0.01)
    return {"loss": 1.0}


def failing(parameters: dict[str, float]) -> None:
    if parameters["x"] < 0:
        raise RuntimeError("first line\n" + "details " * 100)
    raise ValueError(f"bad x {parameters['x']}")


def pid(parameters: dict[str, float]) -> dict[str, float]:
    return {"pid": float(os.getpid())}


def sleeper(parameters: dict[str, float]) -> dict[str, float]:
    time.sleep(parameters["seconds"])
    return {"pid": float(os.getpid())}


def exits(parameters: dict[str, float]) -> None:
    print("loss=0.5")
    sys.exit(int(parameters["code"]))


def exits_saying_why(parameters: dict[str, float]) -> None:
    sys.exit("out of cheese")


def returns_junk(parameters: dict[str, float]) -> object:
    return {"loss": "not a number", "accuracy": 0.5} if parameters["x"] else ("a", "tuple")


def dies(parameters: dict[str, float]) -> None:
    os._exit(3)


def environment(parameters: dict[str, float]) -> dict[str, float]:
    leak = os.environ.get("LEAK")
    os.environ["LEAK"] = "set by a trial"
    Path("cwd.txt").write_text(os.getcwd())
    names = ("HYPERFLOW_TRIAL_DIR", "HYPERFLOW_TRIAL_NAME", "HYPERFLOW_ARTIFACTS_DIR", "EXTRA")
    (Path(os.environ["HYPERFLOW_ARTIFACTS_DIR"]) / "env.txt").write_text(
        "\n".join(f"{n}={os.environ.get(n)}" for n in names)
    )
    return {"leaked": 1.0 if leak else 0.0}


def noop(parameters: dict[str, float]) -> None:
    return None


def returns_non_finite(parameters: dict[str, float]) -> object:
    if parameters["x"] == 0:
        return float("nan")  # the objective alone
    return {"loss": float("inf"), "accuracy": 0.5, "big": 10**400}


def path_changer(parameters: dict[str, float]) -> dict[str, float]:
    import sys

    leaked = 1.0 if "/a/path/of/another/trial" in sys.path else 0.0
    sys.path.insert(0, "/a/path/of/another/trial")
    return {"leaked": leaked}
