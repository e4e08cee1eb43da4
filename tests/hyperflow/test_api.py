"""The experiments REST API on a real server: create/list/get/patch/delete, trials, best,
logs, pushed metrics, events, the trial queue, errors."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.hyperflow.conftest import Running, experiment, serve_plane, server_settings
from tests.util import wait_until

NS = "/apis/v1/namespaces/default"


def phase(obj: dict[str, Any]) -> str:
    return [c for c in obj["status"]["conditions"] if c["status"] == "True"][-1]["type"]


def wait_phase(server: Running, name: str, want: str = "Succeeded", ns: str = "default") -> dict:
    got: dict[str, Any] = {}

    def done() -> bool:
        got.update(server.http.get(f"/apis/v1/namespaces/{ns}/experiments/{name}").json())
        return phase(got) == want

    wait_until(done, timeout=60, interval=0.05)
    return got


def test_create_runs_the_experiment_and_every_read_shows_it(
    server: Running, tmp_path: Path
) -> None:
    r = server.http.post(f"{NS}/experiments", json=experiment("quad", tmp_path, max_trials=4))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["metadata"]["name"] == "quad" and created["metadata"]["uid"]
    assert (
        server.http.post(f"{NS}/experiments", json=experiment("quad", tmp_path)).status_code == 409
    )

    done = wait_phase(server, "quad")
    s = done["status"]
    assert (s["trials"], s["trialsSucceeded"]) == (4, 4)
    best = s["currentOptimalTrial"]["bestTrialName"]

    listed = server.http.get(f"{NS}/experiments", params={"phase": "Succeeded"}).json()
    assert listed["kind"] == "ExperimentList" and [
        i["metadata"]["name"] for i in listed["items"]
    ] == ["quad"]
    assert server.http.get(f"{NS}/experiments", params={"phase": "Running"}).json()["items"] == []

    trials = server.http.get(f"{NS}/experiments/quad/trials", params={"sort": "objective"}).json()
    values = [float(t["status"]["observation"]["metrics"][0]["latest"]) for t in trials["items"]]
    assert values == sorted(values) and trials["items"][0]["metadata"]["name"] == best
    desc = server.http.get(
        f"{NS}/experiments/quad/trials", params={"sort": "objective", "order": "desc"}
    )
    assert [t["metadata"]["name"] for t in desc.json()["items"]][-1] == best

    only = server.http.get(
        f"{NS}/experiments/quad/trials", params={"phase": "Succeeded", "limit": 1}
    )
    assert len(only.json()["items"]) == 1 and only.json()["metadata"]["continue"]
    assert (
        server.http.get(f"{NS}/experiments/quad/trials", params={"phase": "Failed"}).json()["items"]
        == []
    )
    assert (
        server.http.get(f"{NS}/experiments/quad/trials", params={"phase": "Nope"}).status_code
        == 400
    )
    trial = server.http.get(f"{NS}/experiments/quad/trials/{best}").json()
    [log_entry] = trial["status"]["observationLog"]["metricLogs"]
    assert log_entry["metric"]["name"] == "loss" and log_entry["step"] == 0
    assert trial["status"]["exitCode"] == 0 and "mlflowRunId" in trial["status"]
    log = server.http.get(f"{NS}/experiments/quad/trials/{best}/log")
    assert log.text.startswith("loss=") and log.headers["content-type"].startswith("text/plain")

    b = server.http.get(f"{NS}/experiments/quad/best").json()
    assert b["currentOptimalTrial"]["bestTrialName"] == best

    assert server.http.delete(f"{NS}/experiments/quad").status_code == 200
    assert server.http.get(f"{NS}/experiments/quad").status_code == 404
    assert not (server.plane.settings.home / "experiments" / "default" / "quad").exists()


def test_pages_follow_continue_tokens_bound_to_their_query(server: Running, tmp_path: Path) -> None:
    for i in range(3):
        r = server.http.post(
            f"{NS}/experiments", json=experiment(f"page-{i}", tmp_path, max_trials=2)
        )
        assert r.status_code == 201
    names, token = [], ""
    while True:
        body = server.http.get(f"{NS}/experiments", params={"limit": 2, "continue": token}).json()
        names += [i["metadata"]["name"] for i in body["items"]]
        token = body["metadata"]["continue"]
        if not token:
            break
        bad = server.http.get(f"{NS}/experiments", params={"phase": "Running", "continue": token})
        assert bad.status_code == 400 and "another query" in bad.json()["error"]
    assert names == ["page-0", "page-1", "page-2"]
    assert server.http.get(f"{NS}/experiments", params={"continue": "%%%"}).status_code == 400
    for i in range(3):
        wait_phase(server, f"page-{i}")


def test_bad_input_is_a_4xx_naming_every_field(server: Running, tmp_path: Path) -> None:
    bad = experiment("Bad_Name", tmp_path)
    bad["spec"]["parallelTrialCount"] = 0
    bad["spec"]["objective"]["type"] = "maximise"
    r = server.http.post(f"{NS}/experiments", json=bad)
    assert r.status_code == 422
    paths = {d["path"] for d in r.json()["details"]}
    assert {"metadata.name", "spec.objective.type"} <= paths, r.json()

    r = server.http.post(
        "/apis/v1/namespaces/Not_A_Label/experiments", json=experiment("x", tmp_path)
    )
    assert r.status_code == 422 and r.json()["details"][0]["path"] == "namespace"
    other = experiment("x", tmp_path, namespace="other")
    r = server.http.post(f"{NS}/experiments", json=other)
    assert r.status_code == 422 and r.json()["details"][0]["path"] == "metadata.namespace"
    r = server.http.post(
        f"{NS}/experiments", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and "invalid JSON" in r.json()["error"]
    r = server.http.post(f"{NS}/experiments", content=b"x", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    # JSON is UTF-8: a body said to be in another charset is not read as if it were.
    latin1 = {"content-type": "application/json; charset=ISO-8859-1"}
    r = server.http.post(f"{NS}/experiments", content=b"{}", headers=latin1)
    assert r.status_code == 415 and "charset=iso-8859-1" in r.json()["error"], r.text
    utf8 = {"content-type": 'application/json; charset="UTF-8"'}
    assert server.http.post(f"{NS}/experiments", content=b"{", headers=utf8).status_code == 400
    laughs = b"a: &a [1, 2]\nb: [*a, *a]\n"
    r = server.http.post(
        f"{NS}/experiments", content=laughs, headers={"content-type": "application/yaml"}
    )
    assert r.status_code == 400 and "aliases" in r.json()["error"]
    r = server.http.post(
        f"{NS}/experiments",
        content=b"kind: Experiment\n---\nkind: Experiment\n",
        headers={"content-type": "application/yaml"},
    )
    assert r.status_code == 400
    huge = b"x" * (server.plane.settings.max_body_bytes + 1)
    r = server.http.post(
        f"{NS}/experiments", content=huge, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and "error" in r.json()
    r = server.http.get(f"{NS}/experiments/nope/trials")
    assert r.status_code == 404 and "nope" in r.json()["error"]
    r = server.http.get(f"{NS}/experiments", params={"limit": -1})
    assert r.status_code == 400 and r.json()["details"][0]["path"] == "query.limit"
    assert server.http.get("/no/such/path").json()["error"].startswith("no such endpoint")


def test_a_key_given_twice_is_refused_in_yaml_and_json_bodies(
    server: Running, tmp_path: Path
) -> None:
    """As Kubernetes' strict decoding: not the last value silently kept."""
    import yaml

    text = yaml.safe_dump(experiment("twice", tmp_path), sort_keys=False)
    text = text.replace("  maxTrialCount: 4\n", "  maxTrialCount: 4\n  maxTrialCount: 5\n")
    r = server.http.post(
        f"{NS}/experiments", content=text, headers={"content-type": "application/yaml"}
    )
    assert r.status_code == 400, r.text
    assert "duplicate key 'maxTrialCount'" in r.json()["error"]
    body = json.dumps(experiment("twice", tmp_path)).replace(
        '"maxTrialCount": 4', '"maxTrialCount": 4, "maxTrialCount": 5'
    )
    r = server.http.post(
        f"{NS}/experiments", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid JSON: duplicate key 'maxTrialCount'"
    assert server.http.get(f"{NS}/experiments/twice").status_code == 404


def test_a_yaml_body_creates_an_experiment(server: Running, tmp_path: Path) -> None:
    import yaml

    text = yaml.safe_dump(experiment("from-yaml", tmp_path, max_trials=2))
    r = server.http.post(
        f"{NS}/experiments", content=text, headers={"content-type": "application/yaml"}
    )
    assert r.status_code == 201, r.text
    wait_phase(server, "from-yaml")


def test_patch_changes_the_budget_and_raising_max_trials_restarts_a_finished_one(
    server: Running, tmp_path: Path
) -> None:
    body = experiment("budget", tmp_path, max_trials=2, parallel=1, resume_policy="LongRunning")
    assert server.http.post(f"{NS}/experiments", json=body).status_code == 201
    wait_phase(server, "budget")
    patch_headers = {"content-type": "application/merge-patch+json"}

    r = server.http.patch(
        f"{NS}/experiments/budget",
        content=json.dumps({"spec": {"algorithm": {"algorithmName": "grid"}}}),
        headers=patch_headers,
    )
    assert r.status_code == 422 and r.json()["details"][0]["path"] == "spec.algorithm"
    assert r.json()["error"] == "only the trial budget of an experiment can be changed"
    r = server.http.patch(
        f"{NS}/experiments/budget",
        content=json.dumps({"spec": {"maxTrialCount": "lots"}}),
        headers=patch_headers,
    )
    assert r.status_code == 422 and r.json()["error"] == "the patch is invalid"
    assert r.json()["details"] == [
        {"path": "spec.maxTrialCount", "message": "must be an integer or null; got 'lots'"}
    ]
    r = server.http.patch(
        f"{NS}/experiments/budget",
        content=json.dumps({"spec": {"maxTrialCount": 1}}),
        headers=patch_headers,
    )
    assert r.status_code == 422 and r.json()["details"][0]["path"] == "spec.maxTrialCount"

    r = server.http.patch(
        f"{NS}/experiments/budget",
        content=json.dumps({"spec": {"maxTrialCount": 4, "parallelTrialCount": 2}}),
        headers=patch_headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["spec"]["maxTrialCount"] == 4
    done = wait_phase(server, "budget")
    types = [c["type"] for c in done["status"]["conditions"]]
    assert "Restarting" in types and done["status"]["trialsSucceeded"] == 4


def test_a_finished_experiment_with_resume_policy_never_is_not_restarted(
    server: Running, tmp_path: Path
) -> None:
    assert (
        server.http.post(
            f"{NS}/experiments", json=experiment("never", tmp_path, max_trials=1, parallel=1)
        ).status_code
        == 201
    )
    wait_phase(server, "never")
    r = server.http.patch(
        f"{NS}/experiments/never",
        json={"spec": {"maxTrialCount": 3}},
    )
    assert r.status_code == 422 and r.json()["details"][0]["path"] == "spec.resumePolicy"


def _pids(home: Path, name: str) -> list[int]:
    pids = []
    for pid_file in (home / "experiments" / "default" / name).glob("*/pid"):
        first = pid_file.read_text().split()
        if first and first[0].isdigit():
            pids.append(int(first[0]))
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_delete_kills_running_trials_and_stops_the_controller(
    server: Running, tmp_path: Path
) -> None:
    body = experiment("slow", tmp_path, max_trials=2, parallel=2, seconds=60)
    assert server.http.post(f"{NS}/experiments", json=body).status_code == 201
    home = server.plane.settings.home

    def both_running() -> bool:
        got = server.http.get(f"{NS}/experiments/slow").json()
        return got["status"].get("trialsRunning", 0) == 2 and len(_pids(home, "slow")) == 2

    wait_until(both_running, timeout=30)
    pids = _pids(home, "slow")
    t0 = time.monotonic()
    r = server.http.delete(f"{NS}/experiments/slow")
    assert r.status_code == 200 and time.monotonic() - t0 < 20
    assert not any(_alive(p) for p in pids)
    assert not server.plane.manager.is_running("default", "slow")
    assert server.http.get(f"{NS}/experiments/slow").status_code == 404


def test_the_trial_queue_bounds_running_trials_across_experiments(
    hyperflow_home: Path, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    settings = server_settings(hyperflow_home, max_running_trials=2)
    with serve_plane(settings) as server:
        (tmp_path / "span.py").write_text(
            "import os, sys, time\n"
            "led = os.environ['LEDGER']\n"
            "open(led, 'a').write(f'start {time.time()}\\n')\n"
            "time.sleep(0.3)\n"
            "print(f'loss={float(sys.argv[1])}', flush=True)\n"
            "open(led, 'a').write(f'end {time.time()}\\n')\n"
        )
        for i in range(3):
            body = experiment(
                f"q{i}",
                tmp_path,
                max_trials=4,
                parallel=3,
                seconds=0.3,
                extra_env={"LEDGER": str(ledger)},
            )
            body["spec"]["trialTemplate"]["command"] = ["python", "span.py", "${trialParameters.x}"]
            assert server.http.post(f"{NS}/experiments", json=body).status_code == 201
        saw_queued = threading.Event()

        def queued() -> bool:
            items = server.http.get(f"{NS}/experiments/q2/trials").json()["items"]
            if any(t["status"]["conditions"][0]["reason"] == "TrialQueued" for t in items):
                saw_queued.set()
            return saw_queued.is_set()

        wait_until(queued, timeout=30, interval=0.01)
        metrics = server.http.get("/metrics").text
        assert "hyperflow_trial_queue_length" in metrics
        for i in range(3):
            assert wait_phase(server, f"q{i}")["status"]["trialsSucceeded"] == 4
        events = []
        for line in ledger.read_text().splitlines():
            kind, stamp = line.split()
            events.append((float(stamp), 1 if kind == "start" else -1))
        running = peak = 0
        for _, delta in sorted(events, key=lambda e: (e[0], e[1])):
            running += delta
            peak = max(peak, running)
        assert len(events) == 24 and peak <= 2


def test_a_huge_parallel_trial_count_waits_in_the_machine_queue_and_deletes(
    hyperflow_home: Path, tmp_path: Path
) -> None:
    """parallelTrialCount 10^9 on a 2-slot server: 2 trials run, at most 2 wait, and the
    experiment deletes at once (a batch of 10^9 suggestions once held the controller)."""
    settings = server_settings(hyperflow_home, max_running_trials=2)
    with serve_plane(settings) as server:
        body = experiment("huge", tmp_path, max_trials=10**9, parallel=10**9, seconds=60)
        assert server.http.post(f"{NS}/experiments", json=body).status_code == 201

        def settled() -> bool:
            status = server.http.get(f"{NS}/experiments/huge").json()["status"]
            return status.get("trialsRunning", 0) == 2 and status.get("trialsPending", 0) == 2

        wait_until(settled, timeout=30, interval=0.05)
        time.sleep(0.5)  # several more turns of the controller's loop: still 4 trials
        assert server.http.get(f"{NS}/experiments/huge").json()["status"]["trials"] == 4
        started = time.monotonic()
        r = server.http.delete(f"{NS}/experiments/huge")
        assert r.status_code == 200, r.text
        assert time.monotonic() - started < 15
        assert server.http.get(f"{NS}/experiments/huge").status_code == 404


def test_report_lands_on_the_push_route_exactly_once(server: Running, tmp_path: Path) -> None:
    (tmp_path / "pusher.py").write_text(
        "import sys\n"
        "from tuner.report import report\n"
        "x = float(sys.argv[1])\n"
        "for step in range(3):\n"
        "    report(step=step, loss=(x - 0.3) ** 2 + 1 - step / 10)\n"
    )
    body = experiment("push", tmp_path, max_trials=2, parallel=2)
    body["spec"]["trialTemplate"]["command"] = ["python", "pusher.py", "${trialParameters.x}"]
    body["spec"]["metricsCollectorSpec"] = {"collector": {"kind": "Push"}}
    assert server.http.post(f"{NS}/experiments", json=body).status_code == 201
    done = wait_phase(server, "push")
    assert done["status"]["trialsSucceeded"] == 2
    name = done["status"]["currentOptimalTrial"]["bestTrialName"]
    trial = server.http.get(f"{NS}/experiments/push/trials/{name}").json()
    steps = [m["step"] for m in trial["status"]["observationLog"]["metricLogs"]]
    assert steps == [0, 1, 2]
    # A bad token learns nothing; the trial's own token is told the trial has finished.
    path = f"{NS}/experiments/push/trials/{name}/observations"
    obs = {"observations": [{"name": "loss", "value": 1.0}]}
    r = server.http.post(path, json=obs, headers={"authorization": "Bearer nope"})
    assert r.status_code == 401 and "error" in r.json()
    record = server.plane.store.get_experiment("default", "push")
    assert record is not None
    t = server.plane.store.get_trial(record.uid, name)
    assert t is not None
    r = server.http.post(path, json=obs, headers={"authorization": f"Bearer {t.push_token}"})
    assert r.status_code == 404 and "finished" in r.json()["error"]


def test_a_pushed_request_key_is_stored_once(server: Running, tmp_path: Path) -> None:
    body = experiment("keys", tmp_path, max_trials=1, parallel=1, seconds=60)
    body["spec"]["metricsCollectorSpec"] = {"collector": {"kind": "Push"}}
    assert server.http.post(f"{NS}/experiments", json=body).status_code == 201
    home = server.plane.settings.home
    wait_until(lambda: len(_pids(home, "keys")) == 1, timeout=30)
    controller = server.plane.manager.controller("default", "keys")
    assert controller is not None
    [state] = list(controller.trials.values())
    path = f"{NS}/experiments/keys/trials/{state.name}/observations"
    obs = {"observations": [{"name": "loss", "value": 0.5, "step": 0}]}
    auth = {"authorization": f"Bearer {state.record.push_token}", "idempotency-key": "k-1"}
    assert server.http.post(path, json=obs, headers=auth).json() == {"accepted": 1}
    assert server.http.post(path, json=obs, headers=auth).json() == {
        "accepted": 0,
        "duplicate": True,
    }
    bad = server.http.post(path, json=obs, headers={**auth, "authorization": "Bearer x" * 2})
    assert bad.status_code == 401
    bad = server.http.post(path, json=obs, headers={**auth, "idempotency-key": "no spaces"})
    assert bad.status_code == 400
    bad = server.http.post(
        path, json={"observations": [{"name": "loss", "value": "NaN"}]}, headers=auth
    )
    assert bad.status_code == 400
    trial = server.http.get(f"{NS}/experiments/keys/trials/{state.name}").json()
    assert len(trial["status"]["observationLog"]["metricLogs"]) == 1

    # A controller that has not adopted the trial yet (just restarted): 503, which
    # report() retries, not a 404 that failed the trial.
    def not_adopted(*args: Any) -> bool:
        raise KeyError(state.name)

    controller.push = not_adopted  # type: ignore[method-assign]
    try:
        later = server.http.post(path, json=obs, headers={**auth, "idempotency-key": "k-2"})
    finally:
        del controller.push
    assert later.status_code == 503 and "not adopted yet" in later.json()["error"]


def test_events_stream_the_experiment_and_its_trials(server: Running, tmp_path: Path) -> None:
    version = server.http.get(f"{NS}/experiments").json()["metadata"]["resourceVersion"]
    assert (
        server.http.post(
            f"{NS}/experiments", json=experiment("watched", tmp_path, max_trials=2)
        ).status_code
        == 201
    )
    wait_phase(server, "watched")
    events: list[dict[str, Any]] = []
    with server.http.stream(
        "GET",
        f"{NS}/events",
        params={"watch": "true", "object": "experiments/watched", "resourceVersion": version},
        timeout=httpx.Timeout(10, read=2),
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        try:
            for line in response.iter_lines():
                if line.startswith("data:"):
                    events.append(json.loads(line[5:]))
                    if (
                        events[-1]["kind"] == "Experiment"
                        and events[-1]["status"].get("phase") == "Succeeded"
                    ):
                        break
        except httpx.ReadTimeout:
            pass
    kinds = [(e["type"], e["kind"]) for e in events]
    assert kinds[0] == ("ADDED", "Experiment")
    assert kinds.count(("ADDED", "Trial")) == 2
    assert events[-1]["status"]["phase"] == "Succeeded"
    versions = [int(e["resourceVersion"]) for e in events]
    assert versions == sorted(versions)
    listed = server.http.get(f"{NS}/events", params={"object": "experiments/watched"}).json()
    assert len(listed["items"]) >= len(events)
    gone = server.http.get(f"{NS}/events", params={"watch": "true", "object": "bad"})
    assert gone.status_code == 422


def test_metrics_and_probes(server: Running) -> None:
    assert server.http.get("/healthz").json() == {"status": "ok"}
    assert server.http.get("/readyz").status_code == 200
    text = server.http.get("/metrics").text
    for name in (
        "hyperflow_experiments{",
        "hyperflow_trials{",
        "hyperflow_trial_queue_length",
        "hyperflow_suggestion_duration_seconds",
        "hyperflow_api_request_duration_seconds_bucket{",
    ):
        assert name in text
    assert 'route="/healthz"' in text
    assert server.http.get("/openapi.json").json()["paths"]
    # The serving router answers on the serving port (no services yet).
    serving = f"http://127.0.0.1:{server.plane.settings.serving_port}"
    assert httpx.get(f"{serving}/v2/health/ready").status_code == 200
    assert httpx.get(f"{serving}/v1/models").json() == {"models": []}
    assert httpx.get(f"{serving}/v2/models/nope/ready").status_code == 404


def test_stopping_the_server_leaves_trials_running_for_the_next_start(
    hyperflow_home: Path, tmp_path: Path
) -> None:
    settings = server_settings(hyperflow_home)
    with serve_plane(settings) as server:
        body = experiment("detach", tmp_path, max_trials=2, parallel=2, seconds=1.5)
        assert server.http.post(f"{NS}/experiments", json=body).status_code == 201
        wait_until(lambda: len(_pids(hyperflow_home, "detach")) == 2, timeout=30)
        pids = _pids(hyperflow_home, "detach")
        server.plane.manager.shutdown()  # what SIGTERM does: detach
        assert all(_alive(p) for p in pids)
    settings = server_settings(hyperflow_home)
    with serve_plane(settings) as server:
        done = wait_phase(server, "detach")
        assert done["status"]["trialsSucceeded"] == 2 and done["status"]["trials"] == 2
    for p in pids:
        if _alive(p):
            os.kill(p, signal.SIGKILL)
    assert pytest is not None


def test_a_replica_takes_over_an_experiment_whose_replica_died(
    server: Running, tmp_path: Path
) -> None:
    """Replicas on one store: an experiment claimed by a replica on another node whose
    heartbeat lapsed is taken over and run to the end (README promised it; only a
    restart looked)."""
    import time as clock

    from tuner.spec import parse_experiment
    from tuner.store import Store

    store = server.plane.store
    body = experiment("orphan", tmp_path, max_trials=2)
    parsed = parse_experiment(body, base_dir=tmp_path)
    record = store.create_experiment(
        "default", "orphan", parsed.to_dict(), str(tmp_path), "local", owner="server"
    )
    stale = clock.time() - store.claim_lease - 5  # its last heartbeat, long ago
    elsewhere = Store(engine=store.engine, host="node-a", clock=lambda: stale)
    elsewhere.claim(record.uid, 4242)
    # Still alive by its heartbeat (a fresh claim of another node): left alone.
    fresh = Store(engine=store.engine, host="node-b")
    young = fresh.create_experiment(
        "default", "busy", parsed.to_dict() | {"metadata": {"name": "busy"}}, str(tmp_path),
        "local", owner="server",
    )  # fmt: skip
    fresh.claim(young.uid, 4343)
    taken = server.plane.manager.take_over_orphans()
    assert [r.name for r in taken] == ["orphan"]
    done = wait_phase(server, "orphan")
    assert done["status"]["trialsSucceeded"] == 2
    assert not server.plane.manager.is_running("default", "busy")


def test_put_of_an_experiment_takes_the_budget_and_refuses_other_changes(
    server: Running, tmp_path: Path
) -> None:
    """PUT (kubectl apply's request): the same object is a no-op, the budget is applied,
    any other field changed is a 422 naming it, a name other than the URL's too."""
    body = experiment("put-me", tmp_path, max_trials=2, parallel=1, seconds=30)
    assert server.http.post(f"{NS}/experiments", json=body).status_code == 201
    same = server.http.put(f"{NS}/experiments/put-me", json=body)
    assert same.status_code == 200 and same.json()["spec"]["maxTrialCount"] == 2
    # Without the base-dir annotation: the stored folder still resolves `python trial.py`.
    bare = {**body, "metadata": {"name": "put-me"}}
    assert server.http.put(f"{NS}/experiments/put-me", json=bare).status_code == 200
    labelled = {**body, "metadata": {**body["metadata"], "labels": {"team": "x"}}}
    r = server.http.put(f"{NS}/experiments/put-me", json=labelled)
    assert r.status_code == 422 and [d["path"] for d in r.json()["details"]] == ["metadata.labels"]
    body["spec"]["parallelTrialCount"] = 2
    changed = server.http.put(f"{NS}/experiments/put-me", json=body)
    assert changed.status_code == 200 and changed.json()["spec"]["parallelTrialCount"] == 2
    body["spec"]["parameters"][0]["feasibleSpace"]["max"] = "9"
    body["spec"]["objective"]["goal"] = 0.5
    refused = server.http.put(f"{NS}/experiments/put-me", json=body)
    assert refused.status_code == 422, refused.text
    paths = [d["path"] for d in refused.json()["details"]]
    assert paths == ["spec.objective", "spec.parameters"]
    other = {**body, "metadata": {**body["metadata"], "name": "someone-else"}}
    mismatch = server.http.put(f"{NS}/experiments/put-me", json=other)
    assert mismatch.status_code == 422
    assert mismatch.json()["details"][0]["path"] == "metadata.name"
    assert server.http.put(f"{NS}/experiments/nobody", json=body).status_code == 404
    assert server.http.delete(f"{NS}/experiments/put-me").status_code == 200


def test_a_relative_command_sent_without_its_folder_is_refused_naming_what_to_send(
    server: Running, tmp_path: Path
) -> None:
    """Without hyperflow.io/base-dir, `python trial.py` would run in the server's folder
    and fail at start; it is a 422 now. A file's Path sent by the Python client carries its
    folder, as `hyperflow create -f` does."""
    import yaml

    from hyperflow.client import Client

    body = experiment("relative", tmp_path, max_trials=1, parallel=1)
    del body["metadata"]["annotations"]
    refused = server.http.post(f"{NS}/experiments", json=body)
    assert refused.status_code == 422, refused.text
    [detail] = refused.json()["details"]
    assert detail["path"] == "metadata.annotations[hyperflow.io/base-dir]"
    assert detail["message"].startswith("required here: script trial.py does not exist (in ")
    assert "Client.create_experiment(Path(...))" in detail["message"]
    assert server.http.get(f"{NS}/experiments/relative").status_code == 404
    path = tmp_path / "relative.yaml"
    path.write_text(yaml.safe_dump(body))
    with Client(server=server.url) as client:
        created = client.create_experiment(path)
        assert created["metadata"]["annotations"]["hyperflow.io/base-dir"] == str(tmp_path)
        done = client.wait_for_experiment_condition("relative", timeout=60, polling_interval=0.2)
    assert done["status"]["trials"] == 1


def test_a_bad_query_is_a_400_naming_the_parameter(server: Running) -> None:
    """As README says (400: bad query): the parameter, why, and what was given."""
    for query, name in (
        ("limit=abc", "limit"),
        ("limit=-1", "limit"),
        ("dryRun=Foo", "dryRun"),
    ):
        method = "POST" if name == "dryRun" else "GET"
        r = server.http.request(method, f"{NS}/experiments?{query}", json={})
        assert r.status_code == 400, (query, r.status_code, r.text)
        body = r.json()
        assert body["error"].startswith(f"invalid query {name}: "), body
        assert body["error"].endswith(f"got {query.split('=')[1]!r}"), body
        assert body["details"][0]["path"] == f"query.{name}"
    # A body that is not an object of the right shape stays a 422 (its fields).
    r = server.http.post(f"{NS}/experiments", json={"spec": {}})
    assert r.status_code == 422


def test_waiting_for_a_failed_experiment_says_why_in_one_line(
    server: Running, tmp_path: Path
) -> None:
    from hyperflow.client import Client

    body = experiment("fails", tmp_path, max_trials=3, parallel=1)
    body["spec"]["trialTemplate"]["command"] = [
        "python",
        "-c",
        "raise SystemExit(3)  # ${trialParameters.x}",
    ]
    body["spec"]["maxFailedTrialCount"] = 1
    with Client(server=server.url) as client:
        client.create_experiment(body)
        with pytest.raises(RuntimeError) as raised:
            client.wait_for_experiment_condition("fails", timeout=60, polling_interval=0.2)
    message = str(raised.value)
    assert message.startswith("Experiment: default/fails is Failed. ExperimentFailed: "), message
    assert "[{" not in message and "\n" not in message, message


def test_a_number_of_thousands_of_digits_is_a_400_in_json_and_yaml(server: Running) -> None:
    digits = "9" * 5000
    for content_type, body in (
        (
            "application/yaml",
            f"kind: Experiment\nmetadata: {{name: big}}\nspec:\n  maxTrialCount: {digits}\n",
        ),
        ("application/json", f'{{"kind": "Experiment", "spec": {{"maxTrialCount": {digits}}}}}'),
    ):
        r = server.http.post(
            f"{NS}/experiments", content=body.encode(), headers={"content-type": content_type}
        )
        assert r.status_code == 400, (content_type, r.status_code, r.text)  # was a 500 for YAML
        assert "a number has more than 4300 digits" in r.json()["error"], r.text
        assert "set_int_max_str_digits" not in r.text


def test_a_yaml_integer_too_long_to_print_is_a_422_naming_the_field(server: Running) -> None:
    """``0xfff...`` (5,000 digits) is a short hex line but no decimal Python may write: the
    check of the name formatted it and answered 500 on every create route."""
    body = "metadata: {name: 0x%s}\n" % ("f" * 5000)
    for plural in ("experiments", "inferenceservices", "pipelineruns"):
        r = server.http.post(
            f"{NS}/{plural}", content=body.encode(), headers={"content-type": "application/yaml"}
        )
        assert r.status_code == 422, (plural, r.status_code, r.text)
        [detail] = r.json()["details"]
        assert detail["path"] == "metadata.name" and detail["line"] == 1, detail
        assert "a 20000-bit integer" in detail["message"], detail


def test_a_500_is_json_and_the_keep_alive_connection_stays_usable(
    server: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 500 handler for Exception ran inside Starlette's ServerErrorMiddleware, which
    raises again after the answer: uvicorn then dropped the connection, and a keep-alive
    client's next request failed (ConnectionResetError)."""
    import http.client
    from urllib.parse import urlsplit

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(server.plane.experiments, "list", broken)
    url = urlsplit(server.url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
    try:
        connection.request("GET", f"{NS}/experiments")
        answer = connection.getresponse()
        assert answer.status == 500
        assert json.loads(answer.read()) == {"error": "internal server error: RuntimeError"}
        sock = connection.sock
        assert sock is not None  # not closed: no "Connection: close"
        connection.request("GET", "/healthz")
        again = connection.getresponse()
        assert (again.status, json.loads(again.read())) == (200, {"status": "ok"})
        assert connection.sock is sock  # the same connection, not a new one
    finally:
        connection.close()
    metrics = server.http.get("/metrics").text
    assert 'code="500",method="GET",route="/apis/v1/namespaces/{namespace}/experiments"' in metrics
