"""Writes that commit together: the controller's group commit.

One turn of the controller's loop changes several trials at once: observations collected,
trials finished, new trials created, trials launched in the previous turn marked Running.
The controller adds each change to a :class:`Batch` and commits it with
:meth:`tuner.store.Store.commit`, one transaction, before it acts on any of them (launches,
kills, tracking, events). A crash before the commit loses the whole turn and nothing that
was acted on; the next controller redoes the turn from the store and the trial folders.

Changes of one trial within a batch become one row write: a trial created and failed in
the same turn is one ``INSERT``; its Running mark, its observation counts and its end are
one ``UPDATE``. Observations of all trials are one multi-row ``INSERT``.

Plain data, no SQLAlchemy: the store turns a batch into statements.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from tuner.store.records import TrialRecord
from tuner.types import Observation, TrialPhase


@dataclass(slots=True, eq=False)
class TrialChange:
    """What a batch does to one trial row."""

    record: TrialRecord
    insert: bool = False  # a new trial: ``record`` is inserted (its id is set on commit)
    values: dict[str, Any] = field(default_factory=dict)  # columns to set
    observations: int = 0  # observations added (the row's counters grow by these)
    collected: int = 0

    def insert_values(self) -> dict[str, Any]:
        """The row of a trial the batch inserts (``insert``): its record, its counters and
        the columns set since."""
        record = self.record
        return {
            "experiment_uid": record.experiment_uid,
            "name": record.name,
            "seq": record.seq,
            "assignments": record.assignments,
            "phase": record.phase.value,
            "reason": record.reason,
            "message": record.message,
            "trial_dir": record.trial_dir,
            "push_token": record.push_token,
            "observation_count": self.observations,
            "collected_count": self.collected,
            "created_at": record.created_at,
            **self.values,
        }


class Batch:
    """Trial writes of one transaction (see the module docstring). Not thread-safe."""

    def __init__(self) -> None:
        self._changes: dict[int, TrialChange] = {}  # by id() of the record object
        self._observations: list[tuple[TrialRecord, Observation]] = []
        self._deleted: list[TrialRecord] = []
        self._urgent = False
        # When the oldest change that may wait (a Running mark) was added.
        self.lazy_since: float | None = None

    def __bool__(self) -> bool:
        return bool(self._changes or self._observations or self._deleted)

    @property
    def urgent(self) -> bool:
        """Holds a change that must be committed before the caller acts (anything but a
        Running mark)."""
        return self._urgent

    def _change(self, record: TrialRecord) -> TrialChange:
        change = self._changes.get(id(record))
        if change is None:
            change = self._changes[id(record)] = TrialChange(record)
        return change

    def add_trial(self, record: TrialRecord) -> None:
        """Insert ``record`` (its ``id`` is assigned when the batch commits)."""
        self._change(record).insert = True
        self._urgent = True

    def set_trial_phase(
        self,
        record: TrialRecord,
        phase: TrialPhase,
        reason: str,
        message: str = "",
        *,
        at: float | None = None,
        lazy: bool = False,
        exit_code: int | None = None,
        metrics: dict[str, Any] | None = None,
        objective_value: float | None = None,
    ) -> None:
        """The trial's new phase, as :meth:`Store.set_trial_phase` writes it.

        ``lazy``: nothing acts on this change (a Running mark: resuming looks at the
        backend's records, not at this phase), so it may wait for the next commit.
        """
        now = time.time() if at is None else at
        values: dict[str, Any] = {"phase": phase.value, "reason": reason, "message": message}
        if phase is TrialPhase.RUNNING:
            values["started_at"] = now
        if phase.finished:
            values.update(
                completed_at=now,
                exit_code=exit_code,
                metrics=metrics,
                objective_value=objective_value,
            )
        self._change(record).values.update(values)
        if lazy:
            if self.lazy_since is None:
                self.lazy_since = time.monotonic()
        else:
            self._urgent = True

    def add_observations(
        self, record: TrialRecord, observations: Sequence[Observation], *, collected: bool
    ) -> None:
        """Observations of the trial; ``collected``: read from its files (not pushed)."""
        if not observations:
            return
        change = self._change(record)
        change.observations += len(observations)
        if collected:
            change.collected += len(observations)
        self._observations.extend((record, o) for o in observations)
        self._urgent = True

    def remove_trial(self, record: TrialRecord) -> None:
        """Delete the trial's row (one that never started); a row this batch was to insert
        is not inserted at all."""
        change = self._changes.pop(id(record), None)
        self._observations = [(r, o) for r, o in self._observations if r is not record]
        if change is None or not change.insert:
            self._deleted.append(record)
            self._urgent = True

    def deleted(self) -> list[TrialRecord]:
        """Trials whose rows the batch deletes (see :meth:`remove_trial`)."""
        return self._deleted

    def changes(self) -> Iterator[TrialChange]:
        """Per-trial changes, in the order their trials were first changed."""
        return iter(self._changes.values())

    def observations(self) -> list[tuple[TrialRecord, Observation]]:
        return self._observations
