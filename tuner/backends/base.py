"""The trial backend protocol: how the controller runs, watches and stops trials.

A backend runs one trial per :class:`TrialRun` and reports back through polling; the
controller (single thread) drives it. The contract every implementation guarantees:

* ``launch`` never raises for a bad *command*: a command that cannot start (not found,
  not executable) ends as ``TrialExit(succeeded=False, message=...)`` on a later ``poll``.
  It may raise ``ValueError`` for a programming error (the same trial launched twice).
* ``poll`` returns ``None`` while the trial runs, then the same :class:`TrialExit` on
  every call until ``release``.
* ``collect`` returns only the observations *new* since its previous call, in order.
  The observations of a trial form a deterministic sequence: the i-th observation parsed
  from its log or metrics file is always the same one, so a controller that stored the
  first ``n`` can ``adopt(run, skip_observations=n)`` after a crash and never see them
  twice. While the trial runs, ``collect`` streams; after ``poll`` reported the exit,
  one more ``collect`` returns everything the trial wrote last.
* ``kill`` stops the trial (SIGTERM to its process group, SIGKILL after a grace
  period); it returns without waiting; ``poll`` then reports
  ``TrialExit(succeeded=False, message="killed")``. Killing a finished trial is a no-op.
* ``adopt`` re-attaches to a trial a previous controller process launched (still
  running, or finished meanwhile). Backends that cannot reattach report the trial as
  failed with a message saying so.
* ``release`` forgets a finished trial; ``close`` kills every trial still running.
* ``log_path`` is a file on the controller's machine: a backend whose trials run
  elsewhere streams their stdout and stderr into it (``hyperflow experiment logs``, the
  MLflow artifact and failure messages read it there). Metrics collectors (StdOut, File)
  run where the trial runs; ``collect`` hands their observations over. Push metrics
  travel over HTTP to ``$HYPERFLOW_PUSH_URL`` (the control plane's API route), which
  the backend passes to the trial in ``run.env``; no backend needs a shared disk.

What the controller asks of a backend besides running trials (so it never tests for a
backend by name or by its files):

* ``kind`` — the name recorded with the experiment (``local``, ``function``, ``ray``...).
* ``runs_functions`` — trials are Python functions (the SDK), not rendered commands.
* ``runs_images`` — a trial runs in its container's image, so a container without
  ``command`` (the image's entrypoint, ``TrialRun.entrypoint``) can run. Backends that
  run the command as a process refuse such an experiment in ``problems``, naming the
  missing field.
* ``reattaches`` — ``adopt`` can re-attach to trials of a previous controller process.
  When False, trials left running by a crash died with it: the controller runs them
  again from scratch under the same name (their earlier observations dropped).
* ``may_have_started(run)`` — a trial still ``Created`` in the store may have been
  launched by a controller that crashed before recording it: adopt it, never launch it
  twice.
* ``problems(experiment)`` — why the experiment cannot run on this backend at all (the
  controller fails it at start instead of trial by trial).

Unknown trial names raise ``KeyError`` from ``poll``/``collect``/``log_path``;
``kill`` and ``release`` of an unknown trial are no-ops.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tuner.spec.models import MetricsCollectorSpec
from tuner.types import Observation

if TYPE_CHECKING:
    from tuner.spec.models import Experiment

KILLED = "killed"


@dataclass
class TrialRun:
    """What the controller asks a backend to run."""

    experiment_name: str
    trial_name: str
    # argv with ``${trialParameters.X}`` already substituted; None for function trials.
    command: list[str] | None
    # Extra environment (container env + HYPERFLOW_* vars) on top of ``os.environ``.
    env: dict[str, str]
    # Working directory: the experiment file's folder.
    cwd: Path
    # Per-trial folder for the log, the exit code and metrics files; created if missing.
    trial_dir: Path
    assignments: dict[str, float | int | str]
    collector: MetricsCollectorSpec = field(default_factory=MetricsCollectorSpec)
    # The objective and additional metric names: only these are collected.
    metric_names: list[str] = field(default_factory=list)
    # The primary container's ``resources`` (Kubernetes quantities: ``requests`` with
    # ``limits`` as the fallback), for backends that schedule by resources.
    resources: dict[str, str] = field(default_factory=dict)
    # The primary container has no ``command``: its image's entrypoint runs, and
    # ``command`` holds the container's (substituted) ``args`` only.
    entrypoint: bool = False
    # The store's uid of the experiment: unique across namespaces and stores, so a
    # backend can name what it keeps for the experiment on a shared cluster.
    experiment_uid: str = ""


@dataclass(frozen=True)
class TrialExit:
    """How a trial ended. ``message`` is short and human readable, e.g.
    ``"exit code 3: <last log line>"``, ``"command not found: foo"``, ``"killed"``."""

    succeeded: bool
    exit_code: int | None
    message: str
    # When it ended, if that was before the backend saw it (a trial that ended while no
    # controller watched it, adopted by the next one); None: just now.
    ended_at: float | None = None


class TrialBackend(ABC):
    """Runs trials; see the module docstring for the contract."""

    kind: str = "local"
    runs_functions: bool = False
    runs_images: bool = False
    reattaches: bool = True

    def may_have_started(self, run: TrialRun) -> bool:
        """Whether a trial the store has as Created may have been launched already."""
        return False

    def prestart(self, count: int | None = None) -> None:  # noqa: B027 (a no-op by default)
        """Boot now what the first launches would otherwise wait for (the local backend's
        reaper, function workers), so that it boots while the caller sets up; ``count``:
        the trials to come, at most. A no-op if it runs already, and by default (nothing
        to boot)."""

    def launch_next(self, run: TrialRun) -> bool:
        """Take ``run`` (its row committed) to start the moment one of the trials this
        backend is running now ends, or at ``launch(run)``, whichever comes first: the
        next trial of a full set of slots, started with no turn of the controller's loop
        in between. ``launch(run)`` must still be called when the controller sees the
        slot free (it starts the trial if it has not started). True if taken; False (the
        default) leaves it to ``launch`` alone."""
        return False

    def withdraw(self, trial_name: str) -> bool:
        """Take back a trial given to ``launch_next``: True if it never started (the
        backend forgets it); False if it had started, or failed to, before the withdrawal
        came (``launch`` then takes it as started, and it is watched as any other)."""
        return True

    def delete_leftovers(self, experiment_uid: str, trial_dirs: list[Path]) -> None:  # noqa: B027
        """Stop what an experiment being deleted may still have running with no controller
        watching (its controller died): trial processes, Jobs, a Ray actor. Nothing by
        default."""

    def problems(self, experiment: Experiment) -> list[str]:
        """Why ``experiment`` cannot run on this backend, one line each (empty: it can)."""
        from tuner.runnable import local_problems

        return local_problems(
            experiment, commands=not self.runs_functions, entrypoints=self.runs_images
        )

    @abstractmethod
    def launch(self, run: TrialRun) -> None:
        """Start the trial; a command that cannot start fails on the next ``poll``."""

    @abstractmethod
    def poll(self, trial_name: str) -> TrialExit | None:
        """``None`` while the trial runs, its :class:`TrialExit` once it ended."""

    @abstractmethod
    def collect(self, trial_name: str) -> list[Observation]:
        """Observations new since the previous call (all remaining ones after the exit)."""

    @abstractmethod
    def kill(self, trial_name: str) -> None:
        """Stop the trial; ``poll`` then reports not-succeeded with message ``"killed"``."""

    @abstractmethod
    def adopt(self, run: TrialRun, skip_observations: int) -> None:
        """Re-attach to a trial launched by a previous controller process.

        The first ``skip_observations`` observations were already stored by that process
        and must not be returned by ``collect`` again.
        """

    @abstractmethod
    def log_path(self, trial_name: str) -> Path:
        """The file holding the trial's combined stdout and stderr."""

    @abstractmethod
    def release(self, trial_name: str) -> None:
        """Forget a finished trial and free what the backend holds for it."""

    @abstractmethod
    def close(self) -> None:
        """Kill every trial still running and free the backend's resources."""


def check_command_trial(run: TrialRun, backend: str) -> list[str]:
    """The command of ``run``, for a backend that runs commands as processes: anything else
    (a function trial, one that runs its image's entrypoint, refused by ``problems``
    before any trial: a process has no image to run) is a ValueError naming the trial."""
    if run.command is None:
        raise ValueError(f"trial {run.trial_name} has no command; {backend} runs commands")
    if run.entrypoint:
        raise ValueError(
            f"trial {run.trial_name} runs its image's entrypoint; {backend} runs commands"
        )
    return run.command
