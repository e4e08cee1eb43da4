"""The control plane on a PostgreSQL store: every package's tables migrated there, an
experiment run through the API, its reads (pages, objective sort, best, metrics), pushed
metrics with 64-bit steps, tokens and delete."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hyperflow.conftest import experiment, serve_plane, server_settings
from tests.hyperflow.test_api import NS, wait_phase


@pytest.mark.timeout(300)
def test_the_server_runs_and_reads_experiments_on_postgresql(
    postgres_url: str, hyperflow_home: Path, tmp_path: Path
) -> None:
    (tmp_path / "pusher.py").write_text(
        "import sys\n"
        "from tuner.report import report\n"
        "x = float(sys.argv[1])\n"
        "for step in (0, 2**40):\n"
        "    report(step=step, loss=(x - 0.3) ** 2 + (1 if step == 0 else 0))\n"
    )
    body = experiment("pg", tmp_path, max_trials=4, parallel=2)
    body["spec"]["trialTemplate"]["command"] = ["python", "pusher.py", "${trialParameters.x}"]
    body["spec"]["metricsCollectorSpec"] = {"collector": {"kind": "Push"}}
    settings = server_settings(hyperflow_home, database_url=postgres_url)
    with serve_plane(settings) as server:
        assert server.plane.settings.store_url == postgres_url
        r = server.http.post(f"{NS}/experiments", json=body)
        assert r.status_code == 201, r.text
        done = wait_phase(server, "pg")
        assert done["status"]["trialsSucceeded"] == 4
        best = done["status"]["currentOptimalTrial"]["bestTrialName"]

        trials = server.http.get(
            f"{NS}/experiments/pg/trials", params={"sort": "objective", "limit": 2}
        ).json()
        values = [
            float(t["status"]["observation"]["metrics"][0]["latest"]) for t in trials["items"]
        ]
        assert values == sorted(values) and trials["items"][0]["metadata"]["name"] == best
        rest = server.http.get(
            f"{NS}/experiments/pg/trials",
            params={"sort": "objective", "continue": trials["metadata"]["continue"]},
        ).json()
        assert (
            len(rest["items"]) == 2
            and float(rest["items"][0]["status"]["observation"]["metrics"][0]["latest"])
            >= values[-1]
        )
        trial = server.http.get(f"{NS}/experiments/pg/trials/{best}").json()
        assert [m["step"] for m in trial["status"]["observationLog"]["metricLogs"]] == [0, 2**40]
        assert (
            server.http.get(f"{NS}/experiments/pg/best").json()["currentOptimalTrial"][
                "bestTrialName"
            ]
            == best
        )
        metrics = server.http.get("/metrics").text
        assert 'hyperflow_trials{phase="Succeeded"} 4.0' in metrics

        assert server.http.delete(f"{NS}/experiments/pg").status_code == 200
        assert server.http.get(f"{NS}/experiments/pg").status_code == 404

        from hyperflow.handlers.auth import ANONYMOUS

        record, token = server.plane.tokens.create(ANONYMOUS, ["team"], description="pg")
        assert server.plane.tokens.authenticate(token).name == record.id
        # From now on the API wants a token: the store said so (a token exists).
        assert server.http.get(f"{NS}/experiments").status_code == 401
