"""Wire format between :class:`~tuner.backends.function.FunctionBackend` and its workers.

One message is a :mod:`tuner.framing` frame: a pickled tuple whose first item is the
message kind. The parent writes to the worker's stdin and reads its stdout; nothing
else travels on these pipes (the worker moves its own fds 0/1 out of the way at start).

Parent -> worker:
    ``(INIT, sys_path)``                 extend the worker's ``sys.path`` to the parent's
    ``(FUNCTION, key, payload)``         a cloudpickled function, cached under ``key``
    ``(RUN, TrialOrder)``                run one trial; the worker is busy until ``DONE``
Worker -> parent:
    ``(OBSERVATIONS, trial, [Observation, ...])``  streamed while the trial runs
    ``(DONE, trial, TrialOutcome)``                the trial finished (always the last word)

EOF on the worker's stdin means "exit".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tuner.framing import receive, send
from tuner.spec.models import MetricsCollectorSpec
from tuner.types import Observation

__all__ = ["receive", "send"]  # the frames themselves: tuner.framing

# The backend puts its PID here so a worker can tell that it was orphaned at birth.
PARENT_PID_ENV = "_HYPERFLOW_FUNC_WORKER_PARENT"

INIT = "init"
FUNCTION = "function"
RUN = "run"
OBSERVATIONS = "observations"
DONE = "done"

# Dict calling convention: ``fn(assignments)``; keyword convention: ``fn(**assignments)``.
CALL_DICT = "dict"
CALL_KWARGS = "kwargs"


@dataclass(slots=True)
class TrialOrder:
    """Everything a worker needs to run one trial of a cached function."""

    trial_name: str
    function_key: int
    call: str
    assignments: dict[str, float | int | str]
    env: dict[str, str]
    cwd: str
    trial_dir: str
    metric_names: list[str]
    # StdOut: parse the trial's output; File: read the file it writes; else neither.
    collector: MetricsCollectorSpec = field(default_factory=MetricsCollectorSpec)


@dataclass(slots=True)
class TrialOutcome:
    """How a trial ended, plus the observations only known at the end (printed, returned)."""

    succeeded: bool
    exit_code: int | None
    message: str
    observations: list[Observation] = field(default_factory=list)
