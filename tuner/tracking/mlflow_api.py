"""The MLflow writer's calls through MLflow's public API (``MlflowClient``).

Used where :class:`~tuner.tracking.mlflow_sql.SqlRunStore` cannot write the store itself:
an ``http(s)://`` tracking server, a file store, a database whose MLflow tables are not
what that module expects. Same methods as ``SqlRunStore``; imports mlflow.
"""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric as MlflowMetric
from mlflow.entities import Param, RunStatus, RunTag, ViewType

from tuner.tracking import layout
from tuner.tracking.mlflow_sql import ExperimentInfo, FoundRun, Metric, log_to_repository


def use_wal(client: MlflowClient) -> None:
    """Put a SQLite store in WAL mode with ``synchronous=NORMAL`` (see
    :func:`tuner.tracking.mlflow_writer.use_wal`)."""
    from tuner.tracking.mlflow_writer import switch_to_wal

    engine = getattr(client._tracking_client.store, "engine", None)
    if engine is not None:
        switch_to_wal(engine)


class ApiRunStore:
    """The writer's calls as ``MlflowClient`` calls."""

    def __init__(self, tracking_uri: str, *, sqlite_wal: bool = True) -> None:
        self.client = MlflowClient(tracking_uri=tracking_uri)
        if sqlite_wal and tracking_uri.startswith("sqlite:"):
            use_wal(self.client)

    def close(self) -> None:
        pass

    def experiment_by_name(self, name: str) -> ExperimentInfo | None:
        found = self.client.get_experiment_by_name(name)
        if found is None:
            return None
        return ExperimentInfo(found.experiment_id, found.lifecycle_stage, found.artifact_location)

    def create_experiment(
        self, name: str, artifact_location: str | None, tags: dict[str, str]
    ) -> str:
        return str(
            self.client.create_experiment(name, artifact_location=artifact_location, tags=tags)
        )

    def experiment_location(self, experiment_id: str) -> str:
        return str(self.client.get_experiment(experiment_id).artifact_location)

    def find_runs(self, experiment_id: str, tag: str, value: str) -> list[FoundRun]:
        found: list[FoundRun] = []
        token: str | None = None
        while True:
            page = self.client.search_runs(
                [experiment_id],
                filter_string=layout.tag_equals(tag, value),
                run_view_type=ViewType.ACTIVE_ONLY,
                max_results=1000,
                page_token=token,
            )
            for run in page:
                found.append(
                    FoundRun(
                        run.info.run_id,
                        run.info.status,
                        run.info.artifact_uri,
                        dict(run.data.params),
                        dict(run.data.tags),
                    )
                )
            token = page.token
            if not token:
                return found

    def create_run(
        self, experiment: ExperimentInfo, run_name: str, start_ms: int, tags: dict[str, str]
    ) -> tuple[str, str]:
        created = self.client.create_run(
            experiment.experiment_id, start_time=start_ms, tags=tags, run_name=run_name
        )
        return created.info.run_id, created.info.artifact_uri

    def log_batch(
        self, run_id: str, metrics: list[Metric], params: dict[str, str], tags: dict[str, str]
    ) -> None:
        self.client.log_batch(
            run_id,
            metrics=[MlflowMetric(m.key, m.value, m.timestamp, m.step) for m in metrics],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
            synchronous=True,
        )

    def set_status(self, run_id: str, status: str, end_ms: int | None) -> None:
        if status == layout.RUNNING:
            self.client.update_run(run_id, status=status)
            return
        # The store call, not MlflowClient.set_terminated: that one re-reads the run and
        # prints a "View run" line to stdout per run for HTTP stores.
        self.client._tracking_client.store.update_run_info(
            run_id, run_status=RunStatus.from_string(status), end_time=end_ms, run_name=None
        )

    def log_text(self, run_id: str, artifact_uri: str | None, text: str, name: str) -> None:
        self.client.log_text(run_id, text, name)

    def log_files(
        self, run_id: str, artifact_uri: str | None, file: Path | None, folder: Path | None
    ) -> None:
        if artifact_uri is not None:
            # Straight to the artifact repository: MlflowClient.log_artifact would first
            # read the whole run back from the store just to find this URI.
            log_to_repository(artifact_uri, file, folder)
            return
        if file is not None:
            self.client.log_artifact(run_id, str(file))
        if folder is not None:
            self.client.log_artifacts(run_id, str(folder))
