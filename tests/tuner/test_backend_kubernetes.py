"""The kubernetes trial backend against the Kubernetes API stand-in (tests/kube/standin.py):
what it creates is validated by the stand-in against the official schemas; what a
cluster's job controller and kubelet would do, the tests do through the stand-in's
``simulate_*`` API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from serving.kube.client import KubeClient
from tests.kube.standin import KubeApiStandIn
from tests.kube.trials import experiment as kube_experiment
from tests.kube.trials import job
from tests.util import wait_until
from tuner.backends._conditions import compile_condition, evaluate
from tuner.backends.base import KILLED, TrialExit, TrialRun
from tuner.backends.kubernetes import (
    EXPERIMENT_LABEL,
    OWNER_ANNOTATION,
    TRIAL_LABEL,
    KubernetesBackend,
)
from tuner.spec.defaults import JOB_FAILURE_CONDITION as JOB_FAILURE
from tuner.spec.defaults import JOB_SUCCESS_CONDITION as JOB_SUCCESS
from tuner.spec.models import Experiment, MetricsCollectorSpec
from tuner.types import Observation

JOB_SPEC = job(
    {
        "image": "ghcr.io/example/train:1",
        "command": ["python", "train.py"],
        "args": ["--lr=${trialParameters.learningRate}", "--name=${trialSpec.Name}"],
        "env": [{"name": "USER_VAR", "value": "1"}],
    },
    pod_labels={"team": "ml"},
)


# What the end-to-end runs' trials do: the local kubelet stand-in runs it as a process.
SQUARE = "import sys; x = float(sys.argv[1]); print(f'loss={x * x}')"
SQUARE_JOB = job(
    {
        "image": "python:3.12-slim",
        "command": ["python", "-c", SQUARE],
        "args": ["${trialParameters.learningRate}"],
    }
)


def experiment(trial_spec: dict[str, Any] | None = None, **template: Any) -> Experiment:
    return kube_experiment(
        trial_spec or JOB_SPEC,
        parameter="lr",
        trial_parameter="learningRate",
        low="0.01",
        high="0.1",
        **template,
    )


def trial_run(tmp: Path, name: str, **kw: Any) -> TrialRun:
    return TrialRun(
        experiment_name="exp",
        trial_name=name,
        command=None,
        env={
            "KATIB_TRIAL_NAME": name,
            "HYPERFLOW_PUSH_URL_FILE": "/local/path",
            **kw.pop("env", {}),
        },
        cwd=tmp,
        trial_dir=tmp / "trials" / name,
        assignments={"lr": 0.05},
        collector=kw.pop("collector", MetricsCollectorSpec()),
        metric_names=["loss"],
    )


@pytest.fixture
def backend(kube: KubeClient) -> Iterator[KubernetesBackend]:
    b = KubernetesBackend(experiment(), client=kube, finish_grace=10)
    try:
        yield b
    finally:
        b.close()


def stored_trials(settings: Any, uid: str) -> list[Any]:
    """The experiment's trials as its store holds them."""
    from tuner.store import Store

    store = Store(settings.store_url)
    try:
        return store.trials(uid)
    finally:
        store.close()


def wait_exit(backend: KubernetesBackend, name: str) -> TrialExit:
    found: list[TrialExit] = []

    def ended() -> bool:
        backend.wait(0.05)
        exit_ = backend.poll(name)
        if exit_ is not None:
            found.append(exit_)
        return bool(found)

    wait_until(ended, timeout=20)
    return found[0]


def test_a_trial_is_the_rendered_job_labelled_as_katib_does(
    backend: KubernetesBackend, kube_api: KubeApiStandIn, tmp_path: Path
) -> None:
    backend.launch(trial_run(tmp_path, "exp-abc"))
    job = kube_api.get_object("batch/v1", "Job", "exp-abc")
    assert job is not None  # stored: it passed the stand-in's schema validation
    labels = job["metadata"]["labels"]
    assert labels[EXPERIMENT_LABEL] == "exp" and labels[TRIAL_LABEL] == "exp-abc"
    assert labels["app.kubernetes.io/managed-by"] == "hyperflow"
    assert job["metadata"]["annotations"][OWNER_ANNOTATION] == "default/exp/exp-abc"
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["team"] == "ml" and pod_labels[TRIAL_LABEL] == "exp-abc"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["--lr=0.05", "--name=exp-abc"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {  # no local paths
        "USER_VAR": "1",
        "HYPERFLOW_TRIAL_NAME": "exp-abc",
        "HYPERFLOW_EXPERIMENT_NAME": "exp",
        "KATIB_TRIAL_NAME": "exp-abc",
    }
    assert backend.poll("exp-abc") is None


def test_status_log_and_metrics_follow_the_job_and_its_pod(
    backend: KubernetesBackend, kube_api: KubeApiStandIn, tmp_path: Path
) -> None:
    backend.launch(trial_run(tmp_path, "t1"))
    pod = kube_api.simulate_job_pod("t1", phase="Pending")
    assert backend.poll("t1") is None and backend.collect("t1") == []
    kube_api.simulate_pod_phase(pod, "Running")
    kube_api.simulate_log(pod, "epoch 1\nloss=0.5\n")

    def streamed() -> bool:
        backend.wait(0.05)
        return bool(got := backend.collect("t1")) and seen.extend(got) is None

    seen: list[Observation] = []
    wait_until(streamed, timeout=20)  # streamed while the trial runs
    assert [(o.name, o.value) for o in seen] == [("loss", 0.5)]
    assert backend.poll("t1") is None
    kube_api.simulate_log(pod, "loss=0.25\n")
    kube_api.simulate_job_finished("t1", 0)
    assert wait_exit(backend, "t1") == TrialExit(True, 0, "exit code 0")
    tail = backend.collect("t1")
    assert [(o.name, o.value) for o in seen + tail] == [("loss", 0.5), ("loss", 0.25)]
    assert backend.log_path("t1").read_text() == "epoch 1\nloss=0.5\nloss=0.25\n"
    # Released (retain: false, Katib's default): the Job and its pods are deleted.
    backend.release("t1")
    assert kube_api.get_object("batch/v1", "Job", "t1") is None
    assert kube_api.get_object("v1", "Pod", pod) is None
    assert kube_api.deletions[-1]["propagationPolicy"] == "Background"


def test_exit_codes_and_a_command_that_cannot_start(
    backend: KubernetesBackend, kube_api: KubeApiStandIn, tmp_path: Path
) -> None:
    backend.launch(trial_run(tmp_path, "bad"))
    pod = kube_api.simulate_job_pod("bad")
    kube_api.simulate_log(pod, "Traceback...\nValueError: boom\n")
    kube_api.simulate_job_finished("bad", 3)
    assert wait_exit(backend, "bad") == TrialExit(False, 3, "exit code 3: ValueError: boom")

    backend.launch(trial_run(tmp_path, "nocmd"))
    pod = kube_api.simulate_job_pod("nocmd", phase="Pending")
    kube_api.simulate_pod_phase(
        pod,
        "Failed",
        exit_code=128,
        reason="StartError",
        message='exec: "python": executable file not found in $PATH',
    )
    kube_api.simulate_job_finished("nocmd", 128)
    exit_ = wait_exit(backend, "nocmd")
    assert not exit_.succeeded and exit_.exit_code == 128
    assert "StartError" in exit_.message and "executable file not found" in exit_.message

    # The Job failed before any pod ran (e.g. activeDeadlineSeconds): the condition says why.
    backend.launch(trial_run(tmp_path, "deadline"))
    kube_api.simulate_status(
        "batch/v1",
        "Job",
        "deadline",
        {
            "failed": 1,
            "conditions": [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "DeadlineExceeded",
                    "message": "Job was active longer than specified deadline",
                }
            ],
        },
    )
    exit_ = wait_exit(backend, "deadline")
    assert exit_ == TrialExit(
        False, None, "Job failed: DeadlineExceeded: Job was active longer than specified deadline"
    )


def test_kill_deletes_the_job_in_the_background(
    backend: KubernetesBackend, kube_api: KubeApiStandIn, tmp_path: Path
) -> None:
    backend.launch(trial_run(tmp_path, "k"))
    pod = kube_api.simulate_job_pod("k")
    backend.kill("k")
    assert wait_exit(backend, "k") == TrialExit(False, None, KILLED)
    assert kube_api.get_object("batch/v1", "Job", "k") is None
    assert kube_api.get_object("v1", "Pod", pod) is None
    assert [(d["name"], d["propagationPolicy"]) for d in kube_api.deletions] == [
        ("k", "Background")
    ]
    backend.kill("k")  # a no-op once ended
    backend.release("k")
    assert len(kube_api.deletions) == 1


def test_adopt_after_a_restart_finds_the_trial_by_label_and_skips_what_was_stored(
    kube: KubeClient, kube_api: KubeApiStandIn, tmp_path: Path
) -> None:
    first = KubernetesBackend(experiment(), client=kube)
    first.launch(trial_run(tmp_path, "a1"))
    pod = kube_api.simulate_job_pod("a1")
    kube_api.simulate_log(pod, "loss=3\n")
    wait_until(lambda: first.collect("a1") != [] or (first.wait(0.05) and False), timeout=20)
    # The controller dies (no close: close would kill the trial); a new one adopts.
    first.detach()
    kube_api.simulate_log(pod, "loss=2\n")
    second = KubernetesBackend(experiment(), client=kube)
    try:
        second.adopt(trial_run(tmp_path, "a1"), skip_observations=1)
        second.adopt(trial_run(tmp_path, "gone"), skip_observations=0)
        assert second.poll("gone") == TrialExit(
            False, None, "lost: the trial's Job is gone from the cluster"
        )
        kube_api.simulate_job_finished("a1", 0)
        assert wait_exit(second, "a1").succeeded
        assert [(o.name, o.value) for o in second.collect("a1")] == [("loss", 2.0)]
    finally:
        second.close()


def test_relaunch_after_a_crash_between_create_and_record_adopts_its_own_job(
    backend: KubernetesBackend, kube: KubeClient, kube_api: KubeApiStandIn, tmp_path: Path
) -> None:
    other = KubernetesBackend(experiment(), client=kube)
    other.launch(trial_run(tmp_path, "twice"))
    other.detach()
    backend.launch(trial_run(tmp_path, "twice"))
    assert backend.poll("twice") is None
    assert len(kube_api.objects("batch/v1", "Job")) == 1
    # A Job of that name that is not this trial's is not taken over.
    kube.create(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "taken"},
            "spec": JOB_SPEC["spec"],
        }
    )
    backend.launch(trial_run(tmp_path, "taken"))
    exit_ = backend.poll("taken")
    assert exit_ is not None and "already exists" in exit_.message
    backend.kill("taken")
    backend.release("taken")
    assert kube_api.get_object("batch/v1", "Job", "taken") is not None  # not ours: kept


def test_a_kind_the_cluster_does_not_serve_fails_the_trial_with_the_reason(
    kube: KubeClient, tmp_path: Path
) -> None:
    spec = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "spec": {
            "pytorchReplicaSpecs": {
                "Master": {
                    "template": {
                        "spec": {
                            "containers": [
                                {
                                    "name": "pytorch",
                                    "image": "x",
                                    "args": ["${trialParameters.learningRate}"],
                                }
                            ]
                        }
                    }
                }
            }
        },
    }
    backend = KubernetesBackend(experiment(spec, primaryContainerName="pytorch"), client=kube)
    try:
        backend.launch(trial_run(tmp_path, "nocrd"))
        exit_ = wait_exit(backend, "nocrd")
        assert not exit_.succeeded and "does not serve kubeflow.org/v1" in exit_.message
    finally:
        backend.close()


def test_what_cannot_run_on_kubernetes_fails_with_a_reason(
    backend: KubernetesBackend, kube: KubeClient, kube_api: KubeApiStandIn, tmp_path: Path
) -> None:
    file_collector = MetricsCollectorSpec.model_validate(
        {
            "collector": {"kind": "File"},
            "source": {"fileSystemPath": {"path": "/m.txt", "kind": "File"}},
        }
    )
    backend.launch(trial_run(tmp_path, "f", collector=file_collector))
    exit_ = backend.poll("f")
    assert exit_ is not None and "File reads files inside the trial's pod" in exit_.message
    push = MetricsCollectorSpec.model_validate({"collector": {"kind": "Push"}})
    backend.launch(trial_run(tmp_path, "p", collector=push))
    exit_ = backend.poll("p")
    assert exit_ is not None and "control plane's URL" in exit_.message
    # The API server's refusal (here: an invalid image) fails the trial, naming the field.
    bad = {**JOB_SPEC, "spec": {**JOB_SPEC["spec"], "backoffLimit": "many"}}
    refused = KubernetesBackend(experiment(bad), client=kube)
    try:
        refused.launch(trial_run(tmp_path, "r"))
        exit_ = refused.poll("r")
        assert exit_ is not None and "422" in exit_.message and "backoffLimit" in exit_.message
    finally:
        refused.close()
    assert kube_api.objects("batch/v1", "Job") == []
    with pytest.raises(ValueError, match="successCondition and failureCondition"):
        KubernetesBackend(
            experiment(
                {
                    "apiVersion": "example.com/v1",
                    "kind": "Trainer",
                    "spec": {"x": "${trialParameters.learningRate}"},
                }
            ),
            client=kube,
        )


def test_any_kind_with_success_and_failure_conditions(
    kube: KubeClient, kube_api: KubeApiStandIn, tmp_path: Path
) -> None:
    kube.create(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "pytorchjobs.kubeflow.org"},
            "spec": {
                "group": "kubeflow.org",
                "scope": "Namespaced",
                "names": {"kind": "PyTorchJob", "plural": "pytorchjobs", "singular": "pytorchjob"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "subresources": {"status": {}},
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            }
                        },
                    }
                ],
            },
        }
    )
    spec = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "spec": {
            "pytorchReplicaSpecs": {
                "Master": {
                    "replicas": 1,
                    "template": {
                        "spec": {
                            "containers": [
                                {
                                    "name": "pytorch",
                                    "image": "x",
                                    "command": ["python", "t.py"],
                                    "args": ["--lr=${trialParameters.learningRate}"],
                                }
                            ]
                        }
                    },
                }
            }
        },
    }
    exp = experiment(
        spec,
        primaryContainerName="pytorch",
        successCondition='status.conditions.#(type=="Succeeded")#|#(status=="True")#',
        failureCondition='status.conditions.#(type=="Failed")#|#(status=="True")#',
    )
    backend = KubernetesBackend(exp, client=kube)
    try:
        backend.launch(trial_run(tmp_path, "pt"))
        obj = kube_api.get_object("kubeflow.org/v1", "PyTorchJob", "pt")
        assert obj is not None
        master = obj["spec"]["pytorchReplicaSpecs"]["Master"]["template"]
        assert master["metadata"]["labels"][TRIAL_LABEL] == "pt"
        kube_api.simulate_status(
            "kubeflow.org/v1",
            "PyTorchJob",
            "pt",
            {"conditions": [{"type": "Running", "status": "True"}]},
        )
        backend.wait(0.2)
        assert backend.poll("pt") is None
        kube_api.simulate_status(
            "kubeflow.org/v1",
            "PyTorchJob",
            "pt",
            {
                "conditions": [
                    {"type": "Running", "status": "False"},
                    {"type": "Succeeded", "status": "True"},
                ]
            },
        )
        assert wait_exit(backend, "pt").succeeded
        backend.kill("pt")
        backend.release("pt")
        assert kube_api.deletions[-1] == {
            **kube_api.deletions[-1],
            "name": "pt",
            "propagationPolicy": "Background",
        }
    finally:
        backend.close()


def test_katib_conditions() -> None:
    complete = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    not_yet = {"status": {"conditions": [{"type": "Complete", "status": "False"}]}}
    assert evaluate(JOB_SUCCESS, complete) and not evaluate(JOB_FAILURE, complete)
    assert not evaluate(JOB_SUCCESS, not_yet) and not evaluate(JOB_SUCCESS, {})
    argo = 'status.[@this].#(phase=="Succeeded")#'
    assert evaluate(argo, {"status": {"phase": "Succeeded"}})
    assert not evaluate(argo, {"status": {"phase": "Running"}})
    assert evaluate("status.succeeded", {"status": {"succeeded": 1}})
    assert evaluate("status.conditions.#(count>=2)", {"status": {"conditions": [{"count": 3}]}})
    for bad in ("", "status.*", "status.#(type=Complete)"):
        with pytest.raises(ValueError):
            compile_condition(bad)


def test_an_experiment_runs_end_to_end_as_jobs(
    kube: KubeClient, kube_api: KubeApiStandIn, tmp_path: Path
) -> None:
    """The controller drives the backend; a local kubelet stand-in runs each Job's
    container as a process (tests/kube/kubelet.py). Metrics come back only through the
    API: the pods' logs."""
    from tests.kube.kubelet import LocalKubelet
    from tuner.runner import run_experiment
    from tuner.settings import TunerSettings

    exp = experiment(SQUARE_JOB)
    exp.spec.max_trial_count = 4
    exp.spec.parallel_trial_count = 2
    settings = TunerSettings(home=tmp_path / "home")
    backend = KubernetesBackend(exp, client=kube)
    with LocalKubelet(kube_api, tmp_path):
        outcome = run_experiment(exp, settings=settings, backend=backend, track=False)
    assert outcome.record.phase.value == "Succeeded"
    trials = stored_trials(settings, outcome.record.uid)
    assert len(trials) == 4 and {t.phase.value for t in trials} == {"Succeeded"}
    for t in trials:
        assert t.objective_value == pytest.approx(float(t.assignments["lr"]) ** 2)
    # Each trial was its own Job, deleted once finished (retain: false).
    assert sorted(d["name"] for d in kube_api.deletions) == sorted(t.name for t in trials)
    assert kube_api.objects("batch/v1", "Job") == []


def test_experiment_run_backend_kubernetes_end_to_end(
    kube_api: KubeApiStandIn, tmp_path: Path
) -> None:
    """``hyperflow experiment run -f job.yaml --backend kubernetes`` in its own process,
    the cluster found as kubectl finds it: ``$KUBECONFIG`` names the stand-in's URL."""
    import json
    import os
    import subprocess

    from tests.kube.kubelet import LocalKubelet
    from tests.kube.trials import kubeconfig
    from tests.util import REPO, hyperflow_cmd

    data = experiment(SQUARE_JOB).to_dict()
    data["spec"]["maxTrialCount"] = 3
    data["spec"]["parallelTrialCount"] = 2
    path = tmp_path / "job-experiment.yaml"
    path.write_text(json.dumps(data))
    config = tmp_path / "kubeconfig"
    config.write_text(kubeconfig(kube_api.url))
    env = {
        **os.environ,
        "KUBECONFIG": str(config),
        "HYPERFLOW_HOME": str(tmp_path / "home"),
        "COLUMNS": "400",
    }
    env.pop("HYPERFLOW_BACKEND", None)
    with LocalKubelet(kube_api, tmp_path):
        done = subprocess.run(
            hyperflow_cmd(
                "experiment",
                "run",
                "-f",
                str(path),
                "--backend",
                "kubernetes",
                "--json",
                "--no-mlflow",
            ),
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    status = json.loads(done.stdout)["status"]
    assert status["trialsSucceeded"] == 3, status
    # Each trial was a Job on the cluster (the stand-in validated it), deleted once done.
    assert len(kube_api.deletions) == 3
    assert kube_api.objects("batch/v1", "Job") == []
    # A trialTemplate.command experiment cannot run as Jobs: refused, saying why.
    data["spec"]["trialTemplate"] = {"command": ["python", "-c", SQUARE, "1"]}
    data["metadata"]["name"] = "cmd"
    path.write_text(json.dumps(data))
    refused = subprocess.run(
        hyperflow_cmd("experiment", "run", "-f", str(path), "--no-mlflow"),
        cwd=REPO,
        env={**env, "HYPERFLOW_BACKEND": "kubernetes"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "--backend kubernetes: spec.trialTemplate.trialSpec" in refused.stderr, refused.stderr


# An image whose ENTRYPOINT is the trial's program: the container gives only args.
ENTRYPOINT_IMAGE = "ghcr.io/example/square:1"
ENTRYPOINT_JOB = job({"image": ENTRYPOINT_IMAGE, "args": ["${trialParameters.learningRate}"]})
ENTRYPOINT_FIELD = "spec.trialTemplate.trialSpec.spec.template.spec.containers[0].command"


def test_a_container_without_command_runs_its_images_entrypoint_as_a_job(
    kube: KubeClient, kube_api: KubeApiStandIn, tmp_path: Path
) -> None:
    """Katib lets a trial container leave out ``command`` (the image's entrypoint runs
    with the args): the kubernetes backend creates the Job with the container as written,
    its args substituted."""
    from tests.kube.kubelet import LocalKubelet
    from tuner.runner import run_experiment
    from tuner.settings import TunerSettings

    exp = experiment(ENTRYPOINT_JOB)
    exp.spec.max_trial_count = 2
    exp.spec.parallel_trial_count = 2
    settings = TunerSettings(home=tmp_path / "home")
    backend = KubernetesBackend(exp, client=kube)
    assert backend.problems(exp) == []
    entrypoints = {ENTRYPOINT_IMAGE: ["python", "-c", SQUARE]}
    with LocalKubelet(kube_api, tmp_path, entrypoints=entrypoints) as kubelet:
        outcome = run_experiment(exp, settings=settings, backend=backend, track=False)
    assert outcome.record.phase.value == "Succeeded", outcome.record.message
    trials = stored_trials(settings, outcome.record.uid)
    assert len(trials) == 2 and {t.phase.value for t in trials} == {"Succeeded"}
    for t in trials:
        container = kubelet.containers[t.name]
        assert "command" not in container  # as written: the image's entrypoint runs
        assert container["args"] == [repr(float(t.assignments["lr"]))]
        assert container["image"] == ENTRYPOINT_IMAGE
        assert t.objective_value == pytest.approx(float(t.assignments["lr"]) ** 2)


def test_local_and_ray_refuse_a_container_without_command_naming_the_field(
    tmp_path: Path,
) -> None:
    """A process has no image to run: the experiment fails at start (no trial runs),
    ``experiment validate`` says why, each naming the missing field."""
    from tuner.backends.local import LocalBackend
    from tuner.backends.ray import RayBackend
    from tuner.runnable import local_problems
    from tuner.runner import run_experiment
    from tuner.settings import TunerSettings

    exp = experiment(ENTRYPOINT_JOB)
    exp.spec.max_trial_count = 1
    [problem] = local_problems(exp)
    assert problem.startswith(f"{ENTRYPOINT_FIELD}: required here")
    [ray_problem] = RayBackend(address="ray://nowhere:10001").problems(exp)
    assert ray_problem == problem
    outcome = run_experiment(
        exp, settings=TunerSettings(home=tmp_path / "home"), backend=LocalBackend(), track=False
    )
    assert outcome.record.phase.value == "Failed"
    assert ENTRYPOINT_FIELD in outcome.record.message
    assert outcome.record.message.startswith("Experiment cannot run on its backend")


def test_an_api_server_that_does_not_answer_is_said_before_any_trial(tmp_path: Path) -> None:
    # Every trial ended Failed, "the API server refused the trial's Job", and so did the
    # experiment: no answer is not a refusal.
    from tests.util import free_port
    from tuner.backends import BackendError

    with KubeClient(host=f"http://127.0.0.1:{free_port()}", request_timeout=2.0) as silent:
        b = KubernetesBackend(experiment(), client=silent, finish_grace=1)
        b.LAUNCH_RETRIES = (0.01,)  # type: ignore[misc]
        try:
            with pytest.raises(BackendError, match="no answer from the API server"):
                b.prestart()
            b.launch(trial_run(tmp_path, "exp-late"))  # gone after the start: not "refused"
            message = b.poll("exp-late").message  # type: ignore[union-attr]
            assert message.startswith("no answer from the API server for the trial's Job")
        finally:
            b.close()


def test_deleting_a_controllerless_experiment_deletes_its_trials_objects(
    backend: KubernetesBackend, kube: KubeClient, kube_api: KubeApiStandIn, tmp_path: Path
) -> None:
    # Its Jobs ran on to the end after `experiment delete` said "deleted".
    for name in ("exp-a", "exp-b"):
        backend.launch(trial_run(tmp_path, name))
    assert kube_api.get_object("batch/v1", "Job", "exp-a") is not None
    other = KubernetesBackend(experiment(), client=kube, finish_grace=10)  # a later process
    try:
        other.delete_leftovers("uid", [])
    finally:
        other.close()
    wait_until(lambda: kube_api.get_object("batch/v1", "Job", "exp-a") is None, timeout=10)
    assert kube_api.get_object("batch/v1", "Job", "exp-b") is None


def test_a_name_too_long_for_a_job_label_fails_the_experiment_before_any_trial(
    kube: KubeClient, tmp_path: Path
) -> None:
    """A trial's Job is named <experiment>-<8 characters>, a label value of its pods: an
    experiment name over 54 characters is refused at start naming metadata.name, not by the
    API server trial after trial."""
    from tuner.runner import run_experiment
    from tuner.settings import TunerSettings

    exp = experiment(SQUARE_JOB)
    exp.metadata.name = "n" * 55
    exp.spec.max_trial_count = 1
    exp.spec.parallel_trial_count = 1
    backend = KubernetesBackend(exp, client=kube)
    [problem] = backend.problems(exp)
    assert problem.startswith("metadata.name: at most 54 characters on kubernetes (got 55)")
    settings = TunerSettings(home=tmp_path / "home")
    outcome = run_experiment(exp, settings=settings, backend=backend, track=False)
    assert outcome.record.phase.value == "Failed"
    assert "metadata.name: at most 54 characters" in outcome.record.message
    assert stored_trials(settings, outcome.record.uid) == []
    exp.metadata.name = "n" * 54
    assert backend.problems(exp) == []
