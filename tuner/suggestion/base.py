"""The suggestion interface: one contract, two transports (in-process, HTTP).

Contract every :class:`SuggestionClient` keeps:

* State is per experiment, keyed by ``metadata.namespace/metadata.name``, and lives in
  memory between calls: history is never replayed per call. ``restore`` (re)builds it from
  the controller's store after a restart: finished trials are told, ``Created``/``Running``
  trials count as asked-but-not-told (pending), so samplers see them and grid does not
  hand their combination out again.
* ``suggest(experiment, count)`` returns up to ``count`` new suggestions with unique trial
  names ``{experiment-name}-{8 chars [a-z0-9]}``; fewer (possibly none) means the search
  space is exhausted. Assignments are typed: ``int`` for int, ``float`` for double,
  ``str`` for categorical, the list's ``int``/``float`` for discrete.
* ``report`` tells a finished trial once (a repeated report of the same trial is ignored):
  Succeeded with an objective value -> COMPLETE; Failed, MetricsUnavailable, Killed (or
  Succeeded without a value) -> FAIL; EarlyStopped -> PRUNED with its last intermediate value.
* ``report_intermediate`` returns True when the algorithm's pruner (hyperband) says the trial
  should stop; algorithms without a pruner always return False.
* Implementations are thread-safe. Errors: :class:`SuggestionError` subclasses, whose
  ``status`` is the HTTP status the service answers with.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from tuner.spec.models import Experiment
from tuner.types import TrialResult


@dataclass(slots=True)
class Suggestion:
    """One new trial: its name and its typed parameter assignments."""

    trial_name: str
    assignments: dict[str, float | int | str] = field(default_factory=dict)


class SuggestionError(Exception):
    """A suggestion request that cannot be served; ``status`` is its HTTP status."""

    status: ClassVar[int] = 400


class InvalidRequest(SuggestionError):
    """Malformed input: an unknown trial, a value outside the space, bad settings."""

    status = 400


class UnknownTrial(SuggestionError):
    status = 404


class UnknownExperiment(SuggestionError):
    """The service holds no state for the experiment (it restarted): restore first."""

    status = 409


class StateMismatch(SuggestionError):
    """The caller's count of told trials differs from the service's: restore first."""

    status = 409


class NotSupported(SuggestionError):
    """A known algorithm the local service cannot run (pbt)."""

    status = 422


class SuggestionClient(ABC):
    """Suggestions for experiments; see the module docstring for the contract."""

    @abstractmethod
    def restore(self, experiment: Experiment, trials: Sequence[TrialResult]) -> None:
        """Rebuild the experiment's state from its trials (finished and pending)."""

    @abstractmethod
    def suggest(self, experiment: Experiment, count: int) -> list[Suggestion]:
        """Up to ``count`` new suggestions; fewer when the space is exhausted."""

    @abstractmethod
    def report(self, experiment: Experiment, result: TrialResult) -> None:
        """A trial finished."""

    @abstractmethod
    def report_intermediate(
        self, experiment: Experiment, trial_name: str, step: int, value: float
    ) -> bool:
        """An intermediate objective value; True when the trial should be stopped."""

    @abstractmethod
    def close(self, namespace: str, name: str) -> None:
        """Forget the state of experiment ``namespace/name`` (it ended or was deleted);
        an experiment of the same name in another namespace keeps its state."""
