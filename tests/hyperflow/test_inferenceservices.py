"""Inference services as resources of a real server: create/list/get/replace/delete over
the API, real replica processes behind the one serving router, KServe's canary rollout,
namespaces on the data plane, events, and what a restarted server finds."""

from __future__ import annotations

import collections
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

from hyperflow.services import stop_recorded_replicas
from hyperflow.store.services import ReplicaRecord, ServiceStore
from tests.hyperflow.conftest import (
    V1_BODY,
    V2_BODY,
    Running,
    isvc,
    serve_plane,
    server_settings,
    wait_ready,
)
from tests.util import free_port, running, wait_http_ok, wait_until

API = "/apis/v1/namespaces"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _replica_rows(home: Path) -> list[tuple[int, str, int]]:
    with sqlite3.connect(home / "hyperflow.db") as db:
        return db.execute("SELECT pid, name, revision FROM hyperflow_isvc_replicas").fetchall()


def _pids(obj: dict[str, Any]) -> list[int]:
    revisions = obj["status"]["components"]["predictor"]["revisions"]
    return [pid for r in revisions for pid in r["pids"]]


def _revisions_of(url: str, body: dict[str, Any], n: int) -> collections.Counter[str]:
    with httpx.Client(timeout=60) as c:
        return collections.Counter(
            c.post(url, json=body).headers["x-hyperflow-revision"] for _ in range(n)
        )


def test_create_serve_list_get_and_delete(
    server: Running, iris_models: Path, hyperflow_home: Path
) -> None:
    http = server.http
    serving = server.plane.settings.serving_port
    body = yaml.safe_dump(isvc("iris", iris_models))
    r = http.post(
        f"{API}/default/inferenceservices",
        content=body,
        headers={"content-type": "application/yaml"},
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["metadata"]["generation"] == 1 and created["metadata"]["namespace"] == "default"
    url = f"http://127.0.0.1:{serving}/v2/models/iris"
    assert created["status"]["url"] == url
    assert created["status"]["components"]["predictor"]["latestCreatedRevision"] == (
        "iris-predictor-00001"
    )
    again = http.post(f"{API}/default/inferenceservices", json=isvc("iris", iris_models))
    assert again.status_code == 409 and "already exists" in again.json()["error"]

    ready = wait_ready(http, "iris")
    v2 = httpx.post(f"{url}/infer", json=V2_BODY, timeout=60)
    assert v2.status_code == 200 and v2.json()["outputs"][0]["data"] == [2]
    assert v2.headers["x-hyperflow-revision"] == "iris-predictor-00001"
    v1 = httpx.post(f"http://127.0.0.1:{serving}/v1/models/iris:predict", json=V1_BODY, timeout=60)
    assert v1.json() == {"predictions": [2]}

    listed = http.get(f"{API}/default/inferenceservices").json()
    assert listed["kind"] == "InferenceServiceList"
    [item] = listed["items"]
    predictor = item["status"]["components"]["predictor"]
    assert item["status"]["url"] == url
    assert predictor["traffic"] == [
        {"revisionName": "iris-predictor-00001", "percent": 100, "latestRevision": True}
    ]
    assert predictor["revisions"][0]["replicas"]["ready"] == 1
    assert predictor["latestReadyRevision"] == "iris-predictor-00001"
    everywhere = http.get("/apis/v1/inferenceservices").json()["items"]
    assert [i["metadata"]["name"] for i in everywhere] == ["iris"]

    [pid] = _pids(ready)
    assert _replica_rows(hyperflow_home) == [(pid, "iris", 1)]
    events = http.get(f"{API}/default/events", params={"object": "inferenceservices/iris"}).json()[
        "items"
    ]
    reasons = [e["reason"] for e in events]
    for reason in ("InferenceServiceCreated", "ReplicaStarted", "ReplicaReady", "RevisionReady"):
        assert reason in reasons, reasons
    assert f"started replica pid {pid}" in events[reasons.index("ReplicaStarted")]["message"]

    deleted = http.delete(f"{API}/default/inferenceservices/iris")
    assert deleted.status_code == 200 and deleted.json()["metadata"]["name"] == "iris"
    assert not _alive(pid)  # drained and stopped before the answer
    assert _replica_rows(hyperflow_home) == []
    assert http.get(f"{API}/default/inferenceservices/iris").status_code == 404
    gone = httpx.post(f"{url}/infer", json=V2_BODY, timeout=60)
    assert gone.status_code == 404 and "iris" in gone.json()["error"]
    assert http.delete(f"{API}/default/inferenceservices/iris").status_code == 404
    last = http.get(f"{API}/default/events", params={"object": "inferenceservices/iris"})
    assert last.json()["items"][-1]["type"] == "DELETED"


def test_try_it_starts_from_a_request_shaped_as_the_model_says(
    server: Running, iris_models: Path, tmp_path: Path
) -> None:
    """The console's example request: an iris flower for the iris model; zeros of the
    model's stated shape (its V2 metadata) for a model of six features, which the router
    then serves."""
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    features = np.random.default_rng(0).normal(size=(40, 6))
    six = LogisticRegression().fit(features, (features[:, 0] > 0).astype(int))
    (tmp_path / "six").mkdir()
    joblib.dump(six, tmp_path / "six" / "model.joblib")
    http = server.http
    assert http.post(f"{API}/default/inferenceservices", json=isvc("iris", iris_models)).is_success
    six_v2 = isvc("six", tmp_path, "./six", model={"protocolVersion": "v2"})
    assert http.post(f"{API}/default/inferenceservices", json=six_v2).is_success
    wait_ready(http, "iris")
    wait_ready(http, "six")
    # No protocolVersion: KServe's default, v1 (as `serve validate` says).
    iris = http.get(f"{API}/default/inferenceservices/iris/try").json()
    assert iris == {"protocol": "v1", "body": {"instances": [[5.1, 3.5, 1.4, 0.2]]}}
    answer = http.post(f"{API}/default/inferenceservices/iris/try", json=iris["body"]).json()
    assert answer["status"] == 200 and answer["path"] == "/v1/models/iris:predict"
    assert answer["body"] == {"predictions": [0]}
    example = http.get(f"{API}/default/inferenceservices/six/try").json()
    assert example["body"] == {
        "inputs": [{"name": "input-0", "shape": [1, 6], "datatype": "FP64", "data": [0.0] * 6}]
    }
    answer = http.post(f"{API}/default/inferenceservices/six/try", json=example["body"]).json()
    assert answer["status"] == 200 and answer["body"]["outputs"][0]["shape"] == [1]
    # A request is sent as it is shaped, whatever the service's protocol (both are served).
    v1 = {"instances": [[0.0] * 6]}
    answer = http.post(f"{API}/default/inferenceservices/six/try", json=v1).json()
    assert (answer["status"], answer["path"]) == (200, "/v1/models/six:predict")
    assert http.get(f"{API}/default/inferenceservices/nope/try").status_code == 404


def test_invalid_services_get_422_naming_each_field(server: Running, iris_models: Path) -> None:
    http = server.http

    def problems(body: Any, method: str = "POST", name: str = "") -> dict[str, str]:
        path = f"{API}/default/inferenceservices" + (f"/{name}" if name else "")
        r = http.request(method, path, json=body)
        assert r.status_code == 422, (r.status_code, r.text)
        return {d["path"]: d["message"] for d in r.json().get("details", [])}

    bad = isvc("iris", iris_models, minReplicas="many")
    bad["spec"]["predictor"]["model"]["storageURI"] = bad["spec"]["predictor"]["model"].pop(
        "storageUri"
    )
    found = problems(bad)
    assert "must be an integer" in found["spec.predictor.minReplicas"]
    assert (
        "must be >= 0"
        in problems(isvc("iris", iris_models, minReplicas=-1))["spec.predictor.minReplicas"]
    )
    assert "did you mean 'storageUri'" in found["spec.predictor.model.storageURI"]
    found = problems(isvc("iris", iris_models, "gs://bucket/model"))
    assert "'gs://' is not supported locally" in found["spec.predictor.model"]
    found = problems(isvc("iris", None))
    assert "hyperflow.io/base-dir" in found["spec.predictor.model.storageUri"]
    found = problems(isvc("iris", iris_models, "../../etc"))
    assert "must stay inside" in found["spec.predictor.model.storageUri"]
    found = problems(isvc("Bad_Name", iris_models))
    assert "DNS label" in found["metadata.name"]
    # Another kind of object is named as such (it got "metadata: required: name").
    experiment = {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "spec": {}}
    assert problems(experiment) == {"kind": "must be 'InferenceService', got 'Experiment'"}
    found = problems(isvc("iris", iris_models, namespace="other"))
    assert "does not match the namespace" in found["metadata.namespace"]
    tf = isvc("iris", iris_models, model={"modelFormat": {"name": "tensorflow"}})
    assert "not supported locally" in problems(tf)["spec.predictor.model"]
    gone = isvc("iris", iris_models)
    gone["metadata"]["annotations"]["hyperflow.io/base-dir"] = "/no/such/folder"
    assert "no such folder" in problems(gone)["metadata.annotations[hyperflow.io/base-dir]"]
    # One Model Registry serves every namespace: another namespace's model is refused.
    found = problems(isvc("iris", None, "models:/team-b.secret/1"))
    assert "another namespace's model" in found["spec.predictor.model.storageUri"]
    r = http.post(
        f"{API}/default/experiments/anything/deploy-best",
        json={"service": "digits", "modelName": "team-b.sklearn-digits"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["details"][0]["path"] == "modelName"
    # dryRun=All (the UI's Create page, as it types): judged, never stored or started; a
    # YAML body's problems carry their line.
    dry = http.post(f"{API}/default/inferenceservices?dryRun=All", json=isvc("iris", iris_models))
    assert dry.status_code == 200 and dry.json()["metadata"]["name"] == "iris", dry.text
    text = yaml.safe_dump(isvc("iris", iris_models, minReplicas=-1), sort_keys=False)
    r = http.post(
        f"{API}/default/inferenceservices?dryRun=All",
        content=text.encode(),
        headers={"content-type": "application/yaml"},
    )
    assert r.status_code == 422, r.text
    [detail] = r.json()["details"]
    line = text.splitlines().index("    minReplicas: -1") + 1
    assert (detail["path"], detail.get("line")) == ("spec.predictor.minReplicas", line)
    # Nothing of it was stored.
    assert http.get(f"{API}/default/inferenceservices").json()["items"] == []
    assert (
        http.put(
            f"{API}/default/inferenceservices/iris", json=isvc("iris", iris_models)
        ).status_code
        == 404
    )
    created = http.post(f"{API}/default/inferenceservices", json=isvc("iris", iris_models))
    assert created.status_code == 201
    found = problems(isvc("other", iris_models), "PUT", "iris")
    assert "does not match the name in the URL" in found["metadata.name"]
    r = http.post(
        f"{API}/default/inferenceservices",
        content=b"{",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400 and "invalid JSON" in r.json()["error"]
    r = http.post(
        f"{API}/default/inferenceservices", content=b"x", headers={"content-type": "text/plain"}
    )
    assert r.status_code == 415


def test_an_integer_out_of_range_is_a_422_naming_it_and_nothing_is_stored(
    server: Running, iris_models: Path
) -> None:
    """A 2**64 was stored (the create a 500: orjson writes 64 bits at most), and then every
    read of the namespace was a 500 too. Now: int64 for any integer of a body, KServe's
    int32 for the component's fields, Go's durations and int32 scales for annotations."""
    http = server.http
    services = f"{API}/team-a/inferenceservices"
    retention = "autoscaling.knative.dev/scale-to-zero-pod-retention-period"
    fields = ("minReplicas", "maxReplicas", "scaleTarget", "containerConcurrency", "timeout")
    # The second retention is an int64 but, in seconds, past Go's time.Duration.
    for value, message, seconds in (
        (2**64, "(int64)", 2**64),
        (2**31, "must be <= 2147483647", 2**40),
    ):
        for field in fields:
            r = http.post(services, json=isvc("iris", iris_models, **{field: value}))
            assert r.status_code == 422, (field, value, r.status_code, r.text)
            [detail] = r.json()["details"]
            assert detail["path"] == f"spec.predictor.{field}", detail
            assert message in detail["message"], detail
        noted = isvc("iris", iris_models)
        noted["metadata"]["annotations"][retention] = seconds
        r = http.post(services, json=noted)
        assert r.status_code == 422, (value, r.status_code, r.text)
        [detail] = r.json()["details"]
        assert detail["path"] == f"metadata.annotations.{retention}", detail
    for path in (services, "/apis/v1/inferenceservices", f"{services}/iris"):
        assert http.get(path).status_code in (200, 404), path
    assert http.get(services).json()["items"] == []


def test_a_stored_integer_beyond_64_bits_fails_no_read(server: Running, iris_models: Path) -> None:
    """A row written before the bound (orjson cannot write it) is still read, in full."""
    obj = isvc("legacy", iris_models, namespace="team-a", maxReplicas=2**64)
    server.plane.inferenceservices.store.create("team-a", "legacy", obj, str(iris_models))
    for path in (
        f"{API}/team-a/inferenceservices",
        "/apis/v1/inferenceservices",
        f"{API}/team-a/inferenceservices/legacy",
    ):
        r = server.http.get(path)
        assert r.status_code == 200, (path, r.status_code, r.text)
        assert '"maxReplicas":18446744073709551616' in r.text, r.text


def test_canary_rollout_traffic_changes_promotion_and_a_failed_revision(
    server: Running, iris_models: Path
) -> None:
    http = server.http
    path = f"{API}/default/inferenceservices/iris"
    assert (
        http.post(f"{API}/default/inferenceservices", json=isvc("iris", iris_models)).status_code
        == 201
    )
    first = wait_ready(http, "iris")
    [first_pid] = _pids(first)
    url = first["status"]["url"] + "/infer"

    # A new revision with 20% of the traffic; the previous one keeps 80%.
    canary = isvc("iris", iris_models, "./model/v2", canaryTrafficPercent=20)
    r = http.put(path, json=canary)
    assert r.status_code == 200, r.text
    replaced = r.json()
    assert replaced["metadata"]["generation"] == 2
    predictor = replaced["status"]["components"]["predictor"]
    assert predictor["latestCreatedRevision"] == "iris-predictor-00002"
    assert predictor["latestRolledoutRevision"] == "iris-predictor-00001"
    ready = wait_ready(http, "iris")
    traffic = ready["status"]["components"]["predictor"]["traffic"]
    assert [(t["revisionName"], t["percent"], t["tag"]) for t in traffic] == [
        ("iris-predictor-00001", 80, "prev"),
        ("iris-predictor-00002", 20, "latest"),
    ]
    assert _revisions_of(url, V2_BODY, 50) == {
        "iris-predictor-00001": 40,
        "iris-predictor-00002": 10,
    }

    # Only the split changes: no new revision, the same replicas.
    pids = set(_pids(ready))
    canary["spec"]["predictor"]["canaryTrafficPercent"] = 50
    moved = http.put(path, json=canary).json()
    assert moved["metadata"]["generation"] == 3
    assert moved["status"]["components"]["predictor"]["latestCreatedRevision"] == (
        "iris-predictor-00002"
    )
    assert set(_pids(moved)) == pids
    assert _revisions_of(url, V2_BODY, 50) == {
        "iris-predictor-00001": 25,
        "iris-predictor-00002": 25,
    }
    # The same object again changes nothing.
    assert http.put(path, json=canary).json()["metadata"]["generation"] == 3

    # Promote by removing canaryTrafficPercent: the latest takes it all, the previous stops.
    del canary["spec"]["predictor"]["canaryTrafficPercent"]
    http.put(path, json=canary)

    def promoted() -> bool:
        got = http.get(path).json()["status"]["components"]["predictor"]
        return [t["revisionName"] for t in got["traffic"]] == ["iris-predictor-00002"]

    wait_until(promoted, timeout=30)
    wait_until(lambda: not _alive(first_pid), timeout=60)
    got = http.get(path).json()["status"]["components"]["predictor"]
    assert got["latestRolledoutRevision"] == "iris-predictor-00002"
    assert _revisions_of(url, V2_BODY, 10) == {"iris-predictor-00002": 10}

    # A revision that fails leaves the traffic where it was, and says why.
    broken = isvc("iris", iris_models, "./model/missing")
    http.put(path, json=broken)

    def failed() -> bool:
        ready = http.get(path).json()["status"]["conditions"][-1]
        return ready["status"] == "False" and ready.get("reason") == "RevisionFailed"

    wait_until(failed, timeout=90)
    status = http.get(path).json()["status"]
    assert "iris-predictor-00003" in status["conditions"][-1]["message"]
    assert "does not exist" in status["conditions"][-1]["message"]
    assert [
        (t["revisionName"], t["percent"]) for t in status["components"]["predictor"]["traffic"]
    ] == [
        ("iris-predictor-00002", 100),
        ("iris-predictor-00003", 0),
    ]
    assert _revisions_of(url, V2_BODY, 10) == {"iris-predictor-00002": 10}
    assert status["components"]["predictor"]["latestReadyRevision"] == "iris-predictor-00002"

    # A good canary, then a failing one in its place: the revision serving is still the
    # latest ready one (the field was unset: Knative never unsets it).
    http.put(path, json=isvc("iris", iris_models, "./model/v2", canaryTrafficPercent=20))
    wait_until(
        lambda: (
            http.get(path).json()["status"]["components"]["predictor"].get("latestReadyRevision")
            == "iris-predictor-00004"
        ),
        timeout=90,
    )
    http.put(path, json=isvc("iris", iris_models, "./model/gone", canaryTrafficPercent=20))
    wait_until(
        lambda: (
            "iris-predictor-00005"
            in http.get(path).json()["status"]["conditions"][-1].get("message", "")
        ),
        timeout=90,
    )
    predictor = http.get(path).json()["status"]["components"]["predictor"]
    assert predictor["latestCreatedRevision"] == "iris-predictor-00005"
    assert predictor["latestReadyRevision"] == "iris-predictor-00002"
    events = http.get(f"{API}/default/events", params={"object": "inferenceservices/iris"}).json()
    reasons = [e["reason"] for e in events["items"]]
    for reason in (
        "RevisionCreated",
        "TrafficChanged",
        "RevisionRolledOut",
        "RevisionStopped",
        "RevisionFailed",
    ):
        assert reason in reasons, reasons


def test_the_same_name_in_two_namespaces_on_the_one_router(
    server: Running, iris_models: Path
) -> None:
    http = server.http
    serving = server.plane.settings.serving_port
    proba = {"env": [{"name": "PREDICT_PROBA", "value": "true"}]}
    assert (
        http.post(f"{API}/default/inferenceservices", json=isvc("iris", iris_models)).status_code
        == 201
    )
    r = http.post(f"{API}/team-a/inferenceservices", json=isvc("iris", iris_models, model=proba))
    assert r.status_code == 201, r.text
    assert r.json()["status"]["url"] == (
        f"http://127.0.0.1:{serving}/serving/team-a/iris/v2/models/iris"
    )
    wait_ready(http, "iris")
    team = wait_ready(http, "iris", "team-a")
    base = f"http://127.0.0.1:{serving}"
    plain = httpx.post(f"{base}/v1/models/iris:predict", json=V1_BODY, timeout=60).json()
    assert plain == {"predictions": [2]}
    prefixed = team["status"]["address"]["url"] + "/v1/models/iris:predict"
    probabilities = httpx.post(prefixed, json=V1_BODY, timeout=60).json()["predictions"]
    assert len(probabilities[0]) == 3 and abs(sum(probabilities[0]) - 1) < 1e-6
    same = httpx.post(
        f"{base}/serving/default/iris/v1/models/iris:predict", json=V1_BODY, timeout=60
    )
    assert same.json() == {"predictions": [2]}
    assert httpx.get(f"{base}/v1/models").json() == {"models": ["iris"]}
    missing = httpx.post(f"{base}/serving/team-b/iris/v1/models/iris:predict", json=V1_BODY)
    assert missing.status_code == 404 and "team-b" in missing.json()["error"]
    both = http.get("/apis/v1/inferenceservices").json()["items"]
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in both] == [
        ("default", "iris"),
        ("team-a", "iris"),
    ]
    metrics = httpx.get(f"{base}/metrics").text
    assert 'namespace="team-a",revision="iris-predictor-00001",service="iris"' in metrics
    # "Try it" says the path it sent, which curl can take (it said /v2/models/iris/infer).
    tried = http.post(f"{API}/team-a/inferenceservices/iris/try", json=V2_BODY).json()
    assert tried["status"] == 200 and tried["path"] == "/serving/team-a/iris/v2/models/iris/infer"
    again = httpx.post(f"{base}{tried['path']}", json=V2_BODY, timeout=60)
    assert again.status_code == 200
    plain_try = http.post(f"{API}/default/inferenceservices/iris/try", json=V2_BODY).json()
    assert plain_try["path"] == "/v2/models/iris/infer"


def test_a_restarted_server_serves_the_same_urls_with_new_replicas(
    hyperflow_home: Path, iris_models: Path
) -> None:
    settings = server_settings(hyperflow_home)
    with serve_plane(settings) as server:
        r = server.http.post(
            f"{API}/default/inferenceservices",
            json=isvc("iris", iris_models, canaryTrafficPercent=30),
        )
        assert r.status_code == 201
        before = wait_ready(server.http, "iris")
        old = _pids(before)
    assert old and not any(_alive(p) for p in old)  # stopped with the server
    assert _replica_rows(hyperflow_home) == []
    with serve_plane(settings) as server:
        after = wait_ready(server.http, "iris")
        assert after["status"]["url"] == before["status"]["url"]
        assert after["metadata"]["uid"] == before["metadata"]["uid"]
        assert set(_pids(after)).isdisjoint(old)
        answer = httpx.post(after["status"]["url"] + "/infer", json=V2_BODY, timeout=60)
        assert answer.status_code == 200 and answer.json()["outputs"][0]["data"] == [2]


def test_recorded_replicas_are_stopped_only_if_they_are_still_ours(
    hyperflow_home: Path, tmp_path: Path
) -> None:
    """What a starting server does with the replica records a killed one left: a pid that
    is a replica started at the recorded time is stopped (its whole process group); a pid
    now used by another program, or a replica started at another time, is left alone."""
    from hyperflow.plane import build

    plane = build(server_settings(hyperflow_home))
    store = ServiceStore(plane.store.engine)
    service = isvc("m", tmp_path, "./nothing-here")
    replica = [
        sys.executable,
        "-m",
        "serving.replica",
        "--isvc-json",
        json.dumps(service),
        "--base-dir",
        str(tmp_path),
    ]
    ports = [free_port(), free_port()]
    try:
        with (
            running(
                [*replica, "--port", str(ports[0])],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ) as ours,
            running(
                [*replica, "--port", str(ports[1])],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ) as other_time,
            running(["sleep", "120"]) as stranger,
        ):
            wait_http_ok(f"http://127.0.0.1:{ports[0]}/v2/health/live", proc=ours)
            wait_http_ok(f"http://127.0.0.1:{ports[1]}/v2/health/live", proc=other_time)
            child = psutil.Process(ours.pid)
            for proc, offset in ((ours, 0.0), (other_time, -50.0), (stranger, 0.0)):
                store.add_replica(
                    ReplicaRecord(
                        proc.pid,
                        psutil.Process(proc.pid).create_time() + offset,
                        "uid",
                        "default",
                        "m",
                        1,
                        0,
                        0.0,
                    )
                )
            assert stop_recorded_replicas(store) == [ours.pid]
            assert ours.wait(10) is not None
            assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
            assert other_time.poll() is None and stranger.poll() is None
            assert store.replicas() == []
    finally:
        plane.close()


def test_lists_page_with_continue_tokens(server: Running, iris_models: Path) -> None:
    http = server.http
    for name in ("a", "b", "c"):
        body = isvc(name, iris_models, minReplicas=0)
        body["metadata"]["annotations"]["autoscaling.knative.dev/initial-scale"] = "0"
        assert http.post(f"{API}/default/inferenceservices", json=body).status_code == 201
    for limit in (1, 2):
        names: list[str] = []
        params: dict[str, Any] = {"limit": limit}
        while True:
            page = http.get(f"{API}/default/inferenceservices", params=params).json()
            assert len(page["items"]) <= limit
            names += [i["metadata"]["name"] for i in page["items"]]
            if not page["metadata"]["continue"]:
                break
            params["continue"] = page["metadata"]["continue"]
        assert names == ["a", "b", "c"]
    other = http.get(
        f"{API}/team-x/inferenceservices", params={"continue": params.get("continue", "x")}
    )
    assert other.status_code == 400
    # Scaled to zero from the start: Ready, no replica process.
    item = wait_ready(http, "a")
    assert (
        _pids(item) == []
        and item["status"]["components"]["predictor"]["revisions"][0]["replicas"]["desired"] == 0
    )
