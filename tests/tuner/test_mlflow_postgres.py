"""MLflow tracking on the same PostgreSQL database as the store (documented in README's
"Scale out"): an experiment run logs its parent and trial runs there, read back through
MLflow's own client."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tuner.store import Store


@pytest.mark.timeout(600)
def test_an_experiment_tracks_to_mlflow_on_the_stores_postgresql(
    postgres_url: str, tmp_path: Path
) -> None:
    (tmp_path / "exp.yaml").write_text(
        textwrap.dedent(
            """\
            apiVersion: kubeflow.org/v1beta1
            kind: Experiment
            metadata:
              name: pg-tracked
            spec:
              objective: {type: minimize, objectiveMetricName: loss}
              algorithm: {algorithmName: random}
              parallelTrialCount: 2
              maxTrialCount: 3
              parameters:
                - name: x
                  parameterType: double
                  feasibleSpace: {min: "0", max: "1"}
              trialTemplate:
                trialParameters: [{name: x, reference: x}]
                command: [python, -c, "import sys; print('loss=' + sys.argv[1])", "${trialParameters.x}"]
            """
        )
    )
    # MLflow takes the plain postgresql:// form too; the driver is psycopg (3) either way.
    env = {
        "HYPERFLOW_DATABASE_URL": postgres_url,
        "MLFLOW_TRACKING_URI": postgres_url,
        "HYPERFLOW_HOME": str(tmp_path / "home"),
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-m", "hyperflow", "experiment", "run", "-f", "exp.yaml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=500,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "MLflow experiment 'pg-tracked'" in done.stdout + done.stderr, done.stderr

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=postgres_url)
    experiment = client.get_experiment_by_name("pg-tracked")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 3
    store = Store(postgres_url)
    try:
        record = store.get_experiment("default", "pg-tracked")
        assert record is not None
        by_name = {t.name: t for t in store.trials(record.uid)}
    finally:
        store.close()
    for run in children:
        trial = by_name[run.data.tags.get("trial", run.info.run_name)]
        assert run.data.metrics["loss"] == pytest.approx(trial.objective_value)
        assert run.info.status == "FINISHED"
