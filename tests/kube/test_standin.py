"""The Kubernetes API stand-in answers as an API server does, through the official client:
both its typed APIs and hyperflow's adapter (serving.kube.client)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from serving.kube.client import (
    AlreadyExists,
    Conflict,
    Gone,
    Invalid,
    KubeClient,
    KubeError,
    NotFound,
    Unavailable,
)
from tests.kube.standin import KubeApiStandIn
from tests.util import free_port, wait_until


def job(name: str, command: list[str] | None = None, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "main", "image": "python:3.12", "command": command or ["true"]}
                    ],
                },
            },
        },
    }


def test_the_official_typed_client_works_against_it(kube_api: KubeApiStandIn) -> None:
    from kubernetes import client as k8s

    configuration = k8s.Configuration()
    configuration.host = kube_api.url
    with k8s.ApiClient(configuration) as api:
        batch = k8s.BatchV1Api(api)
        created = batch.create_namespaced_job("default", job("typed", app="x"))
        assert created.metadata.uid and created.metadata.resource_version
        assert created.spec.template.metadata.labels["batch.kubernetes.io/job-name"] == "typed"
        listed = batch.list_namespaced_job("default", label_selector="app=x")
        assert [j.metadata.name for j in listed.items] == ["typed"]
        assert batch.list_namespaced_job("default", label_selector="app=y").items == []
        with pytest.raises(k8s.ApiException) as err:
            batch.read_namespaced_job("nope", "default")
        assert err.value.status == 404
        version = k8s.VersionApi(api).get_code()
        assert version.major == "1" and version.minor == "30"


def test_every_write_is_checked_against_the_schemas_and_the_api_servers_rules(
    kube: KubeClient,
) -> None:
    bad = job("bad")
    container = bad["spec"]["template"]["spec"]["containers"][0]
    container["imagePullPolicy"] = 3  # wrong type
    container["comand"] = ["typo"]  # unknown field (strict schema)
    del container["image"]
    bad["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    bad["metadata"]["labels"] = {"ok": "x" * 64}
    with pytest.raises(Invalid) as err:
        kube.create(bad)
    fields = {c.field for c in err.value.causes}
    assert {
        "spec.template.spec.containers[0]",  # comand
        "spec.template.spec.containers[0].imagePullPolicy",
        "spec.template.spec.containers[0].image",
        "spec.template.spec.restartPolicy",
        "metadata.labels",
    } <= fields, err.value.causes
    assert err.value.status == 422 and "comand" in str(err.value)
    assert kube.find("batch/v1", "Job", "bad") is None
    with pytest.raises(Invalid, match=r"metadata\.name"):
        kube.create(job("Not_A_Name"))
    with pytest.raises(Invalid, match="no more than 63"):
        kube.create(job("j" * 64))


def test_create_get_conflicts_and_namespaces(kube: KubeClient, kube_api: KubeApiStandIn) -> None:
    created = kube.create(job("one"))
    assert kube.get("batch/v1", "Job", "one")["metadata"]["uid"] == created["metadata"]["uid"]
    with pytest.raises(AlreadyExists):
        kube.create(job("one"))
    with pytest.raises(NotFound, match='namespaces "team-a" not found'):
        kube.create(job("two"), namespace="team-a")
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})
    kube.create(job("two"), namespace="team-a")
    assert [j["metadata"]["name"] for j in kube.list("batch/v1", "Job", "team-a").items] == ["two"]
    with pytest.raises(NotFound, match="no kind Jobb"):
        kube.resource_type("batch/v1", "Jobb")
    # A stale resourceVersion is a conflict, as optimistic concurrency wants.
    stale = dict(created)
    kube_api.simulate_status("batch/v1", "Job", "one", {"active": 1})
    from serving.kube.client import ResourceType

    rt = ResourceType("batch/v1", "Job", "jobs", True)
    with pytest.raises(Conflict):
        kube._call("PUT", rt.path("default", "one"), body=stale)


def test_watch_streams_changes_in_order_and_410_after_compaction(
    kube: KubeClient, kube_api: KubeApiStandIn
) -> None:
    listed = kube.list("batch/v1", "Job", label_selector="exp=a")
    events: list[tuple[str, str]] = []
    watch = kube.watch(
        "batch/v1", "Job", label_selector="exp=a", resource_version=listed.resource_version
    )

    def consume() -> None:
        for event in watch:
            events.append((event.type, event.object["metadata"]["name"]))

    reader = threading.Thread(target=consume)
    reader.start()
    kube.create(job("a1", exp="a"))
    kube.create(job("b1", exp="b"))  # another label: not seen
    kube_api.simulate_status("batch/v1", "Job", "a1", {"active": 1})
    kube.delete("batch/v1", "Job", "a1")
    wait_until(lambda: len(events) >= 3, timeout=10)
    watch.close()
    reader.join(10)
    assert events == [("ADDED", "a1"), ("MODIFIED", "a1"), ("DELETED", "a1")]

    kube_api.forget_events()
    with pytest.raises(Gone):
        list(kube.watch("batch/v1", "Job", resource_version=listed.resource_version))
    # Without a version: the current objects first (as ADDED), then changes.
    fresh = kube.watch("batch/v1", "Job", timeout_seconds=1)
    assert [(e.type, e.object["metadata"]["name"]) for e in fresh] == [("ADDED", "b1")]


def test_delete_propagation_and_the_jobs_pods(kube: KubeClient, kube_api: KubeApiStandIn) -> None:
    kube.create(job("bg"))
    pod = kube_api.simulate_job_pod("bg")
    assert kube.get("v1", "Pod", pod)["metadata"]["ownerReferences"][0]["name"] == "bg"
    assert kube.delete("batch/v1", "Job", "bg", propagation="Background")
    assert kube.find("v1", "Pod", pod) is None
    assert not kube.delete("batch/v1", "Job", "bg")  # already gone
    # The REST API's default for a Job is Orphan: its pods stay.
    kube.create(job("orphan"))
    orphan = kube_api.simulate_job_pod("orphan")
    kube._call("DELETE", kube.resource_type("batch/v1", "Job").path("default", "orphan"))
    assert "ownerReferences" not in kube.get("v1", "Pod", orphan)["metadata"]
    assert [(d["name"], d["propagationPolicy"]) for d in kube_api.deletions] == [
        ("bg", "Background"),
        ("orphan", "Orphan"),
    ]


def test_pod_logs_follow_until_the_container_ends(
    kube: KubeClient, kube_api: KubeApiStandIn
) -> None:
    kube.create(job("logs"))
    pod = kube_api.simulate_job_pod("logs", phase="Pending")
    with pytest.raises(KubeError, match="is waiting to start: ContainerCreating") as err:
        kube.pod_log(pod)
    assert err.value.status == 400
    kube_api.simulate_pod_phase(pod, "Running")
    kube_api.simulate_log(pod, "loss=0.5\n")
    assert b"".join(kube.pod_log(pod)) == b"loss=0.5\n"
    got: list[bytes] = []
    stream = kube.pod_log(pod, follow=True)
    reader = threading.Thread(target=lambda: got.extend(stream))
    reader.start()
    wait_until(lambda: b"".join(got) == b"loss=0.5\n", timeout=10)
    kube_api.simulate_log(pod, "loss=0.25\n")
    wait_until(lambda: b"".join(got).endswith(b"loss=0.25\n"), timeout=10)
    assert reader.is_alive()  # still running: the log is followed
    kube_api.simulate_job_finished("logs", 0)
    reader.join(10)
    assert not reader.is_alive() and b"".join(got) == b"loss=0.5\nloss=0.25\n"
    assert kube.get("batch/v1", "Job", "logs")["status"]["conditions"][-1]["type"] == "Complete"


def test_a_pod_of_several_containers_needs_a_container_name(
    kube: KubeClient, kube_api: KubeApiStandIn
) -> None:
    two = job("two")
    two["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "busybox"})
    kube.create(two)
    pod = kube_api.simulate_job_pod("two")
    with pytest.raises(KubeError, match=r"choose one of: \[main side\]"):
        kube.pod_log(pod)
    kube_api.simulate_log(pod, "from side", container="side")
    assert b"".join(kube.pod_log(pod, container="side")) == b"from side"
    assert b"".join(kube.pod_log(pod, container="main")) == b""


def test_server_side_apply_creates_then_owns_what_it_applied(kube: KubeClient) -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cfg", "labels": {"a": "1"}},
        "data": {"x": "1", "y": "2"},
    }
    first = kube.apply(cm)
    cm2 = {**cm, "data": {"x": "3"}}
    second = kube.apply(cm2)
    assert second["metadata"]["uid"] == first["metadata"]["uid"]
    assert second["data"] == {"x": "3"}  # y was applied before and is no longer
    with pytest.raises(Invalid):
        kube.apply({**cm, "data": {"x": 1}})  # ConfigMap data values are strings
    assert kube.get("v1", "ConfigMap", "cfg")["data"] == {"x": "3"}


def test_custom_resources_are_served_after_their_definition(kube: KubeClient) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "trainjobs.example.org"},
        "spec": {
            "group": "example.org",
            "scope": "Namespaced",
            "names": {"plural": "trainjobs", "singular": "trainjob", "kind": "TrainJob"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": ["steps"],
                                    "properties": {"steps": {"type": "integer"}},
                                },
                                "status": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                },
                            },
                        }
                    },
                }
            ],
        },
    }
    with pytest.raises(NotFound):
        kube.resource_type("example.org/v1", "TrainJob")
    bad_crd = {**crd, "spec": {**crd["spec"], "scope": 3}}
    with pytest.raises(Invalid):
        kube.create(bad_crd)
    kube.create(crd)
    obj = {"apiVersion": "example.org/v1", "kind": "TrainJob", "metadata": {"name": "t"}}
    with pytest.raises(Invalid, match="steps"):
        kube.create({**obj, "spec": {}})
    kube.create({**obj, "spec": {"steps": 3}})
    assert kube.get("example.org/v1", "TrainJob", "t")["spec"] == {"steps": 3}


def test_a_token_from_a_kubeconfig(tmp_path: Path) -> None:
    with KubeApiStandIn(token="s3cret") as api:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": api.url}}],
            "users": [{"name": "u", "user": {"token": "s3cret"}}],
            "contexts": [
                {"name": "ctx", "context": {"cluster": "c", "user": "u", "namespace": "team-b"}}
            ],
            "current-context": "ctx",
        }
        path = tmp_path / "kubeconfig"
        path.write_text(yaml.safe_dump(config))
        with KubeClient(kubeconfig=path) as client:
            assert client.namespace == "team-b"
            assert client.version()["gitVersion"].startswith("v1.30")
        with KubeClient(host=api.url) as anonymous, pytest.raises(KubeError) as err:
            anonymous.list("batch/v1", "Job")
        assert err.value.status == 401


def test_no_api_server_is_unavailable_not_a_traceback() -> None:
    with (
        KubeClient(host=f"http://127.0.0.1:{free_port()}", request_timeout=2) as client,
        pytest.raises(Unavailable, match="no answer from the API server"),
    ):
        client.list("batch/v1", "Job")
