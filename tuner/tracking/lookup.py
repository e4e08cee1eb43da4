"""The read side: find a trial's MLflow run, to point users at what it logged.

Read commands must answer in well under a second, so this never imports mlflow (seconds):
a SQL store is queried directly (MLflow's ``tags`` and ``runs`` tables, as the bulk writer
writes them), a tracking server through MLflow's REST API.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from typing import Any

from tuner.spec.models import Experiment
from tuner.tracking import layout

_QUERY = (
    "SELECT u.run_uuid FROM tags u "
    "JOIN tags t ON t.run_uuid = u.run_uuid "
    "JOIN runs r ON r.run_uuid = u.run_uuid "
    "WHERE u.key = :uid_key AND u.value = :uid AND t.key = :trial_key AND t.value = :trial "
    "AND r.lifecycle_stage = 'active' ORDER BY r.start_time LIMIT 1"
)


def trial_run_id(tracking_uri: str, experiment: Experiment, uid: str, trial: str) -> str | None:
    """The run id of ``trial`` of the experiment with ``uid``, or None if it has no run."""
    params = {"uid_key": layout.TAG_UID, "uid": uid, "trial_key": layout.TAG_TRIAL, "trial": trial}
    if tracking_uri.startswith("sqlite:"):
        from tuner.tracking.probe import sqlite_path

        path = sqlite_path(tracking_uri)
        if path is None or not path.exists():
            return None
        with contextlib.closing(
            sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        ) as db:
            row = db.execute(_QUERY, params).fetchone()
        return str(row[0]) if row else None
    if tracking_uri.startswith(("http://", "https://")):
        return _rest_lookup(tracking_uri, experiment, uid, trial)
    if tracking_uri.startswith(("postgresql", "mysql", "mssql")):
        from sqlalchemy import create_engine, text

        engine = create_engine(tracking_uri)
        try:
            with engine.connect() as connection:
                value = connection.execute(text(_QUERY), params).scalar()
        finally:
            engine.dispose()
        return str(value) if value else None
    return None


def _rest_lookup(uri: str, experiment: Experiment, uid: str, trial: str) -> str | None:
    import httpx

    headers = {}
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    auth = (user, os.environ.get("MLFLOW_TRACKING_PASSWORD", "")) if user else None
    base = uri.rstrip("/") + "/api/2.0/mlflow"
    query = (
        f"{layout.tag_equals(layout.TAG_UID, uid)} and {layout.tag_equals(layout.TAG_TRIAL, trial)}"
    )
    with httpx.Client(headers=headers, auth=auth, timeout=10) as client:
        # The plain name, or the one the writer falls back to when a user deleted the first.
        for name in (
            layout.experiment_name(experiment),
            layout.fallback_experiment_name(experiment, uid),
        ):
            found = client.get(f"{base}/experiments/get-by-name", params={"experiment_name": name})
            if found.status_code == 404:
                continue
            found.raise_for_status()
            experiment_id = found.json()["experiment"]["experiment_id"]
            runs = client.post(
                f"{base}/runs/search",
                json={"experiment_ids": [experiment_id], "filter": query, "max_results": 1},
            )
            runs.raise_for_status()
            listed: list[dict[str, Any]] = runs.json().get("runs", [])
            if listed:
                return str(listed[0]["info"]["run_id"])
    return None
