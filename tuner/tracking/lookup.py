"""The read side: find a trial's MLflow run, to point users at what it logged.

Imports mlflow only when called (seconds), so commands call it only when there is
something to point at (a trial that saved artifacts).
"""

from __future__ import annotations

from tuner.spec.models import Experiment
from tuner.tracking import layout


def trial_run_id(tracking_uri: str, experiment: Experiment, uid: str, trial: str) -> str | None:
    """The run id of ``trial`` of the experiment with ``uid``, or None if it has no run."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    query = (
        f"{layout.tag_equals(layout.TAG_UID, uid)} and {layout.tag_equals(layout.TAG_TRIAL, trial)}"
    )
    # The plain name, or the one the writer falls back to when a user deleted the first.
    for name in (
        layout.experiment_name(experiment),
        layout.fallback_experiment_name(experiment, uid),
    ):
        found = client.get_experiment_by_name(name)
        if found is None:
            continue
        runs = client.search_runs([found.experiment_id], filter_string=query, max_results=1)
        if runs:
            return str(runs[0].info.run_id)
    return None
