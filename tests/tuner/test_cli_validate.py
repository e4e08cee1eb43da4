"""``hyperflow experiment validate -f FILE``: exit 0 when valid, 1 with field errors, never a traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.util import run_hyperflow

MALFORMED = Path(__file__).parent / "malformed"

GOOD = """
apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata: {name: quadratic}
spec:
  objective: {type: minimize, objectiveMetricName: loss}
  algorithm: {algorithmName: tpe}
  maxTrialCount: 8
  parameters:
    - {name: x, parameterType: double, feasibleSpace: {min: "-5", max: "5"}}
  trialTemplate:
    command: [python, quadratic.py, "--x=${trialParameters.x}"]
    trialParameters: [{name: x, reference: x}]
"""


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return run_hyperflow("experiment", "validate", "-f", str(path))


def test_valid_file_exits_zero(tmp_path: Path) -> None:
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    (tmp_path / "quadratic.py").write_text("print('loss=1')\n")
    result = validate(path)
    assert result.returncode == 0, result.stderr
    assert "experiment 'quadratic' is valid" in result.stdout
    assert "note:" not in result.stdout


def test_valid_katib_that_cannot_run_locally_gets_a_note(tmp_path: Path) -> None:
    data = yaml.safe_load(GOOD)
    data["spec"]["algorithm"] = {
        "algorithmName": "pbt",
        "algorithmSettings": [
            {"name": "suggestion_trial_dir", "value": "/var/log/katib/checkpoints/"},
            {"name": "n_population", "value": "5"},
            {"name": "truncation_threshold", "value": "0.2"},
        ],
    }
    data["spec"]["metricsCollectorSpec"] = {
        "collector": {"kind": "TensorFlowEvent"},
        "source": {"fileSystemPath": {"path": "/tmp/tb", "kind": "Directory"}},
    }
    path = tmp_path / "pbt.yaml"
    path.write_text(yaml.safe_dump(data))
    (tmp_path / "quadratic.py").write_text("print('loss=1')\n")
    result = validate(path)
    assert result.returncode == 0, result.stderr  # a valid Katib file
    notes = [line.strip() for line in result.stdout.splitlines() if "note:" in line]
    assert notes == [
        "note: cannot run locally: algorithm pbt is not supported by the local suggestion service",
        "note: cannot run locally: metrics collector kind TensorFlowEvent is not supported by "
        "local trials; use StdOut, File, Push or None",
    ]


# One process per case is slow on a shared machine; a handful covers every failure class.
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("objective-type-typo.yaml", "spec.objective.type: must be one of minimize, maximize"),
        (
            "bad-yaml-syntax.yaml",
            "invalid YAML: mapping values are not allowed in this context at line 8",
        ),
        ("binary-garbage.yaml", "not UTF-8 text"),
        ("parameter-min-huge.yaml", "spec.parameters[0].feasibleSpace.min: must be a finite"),
        ("grid-too-small.yaml", "spec.maxTrialCount: grid needs maxTrialCount (20)"),
    ],
)
def test_invalid_file_exits_one_with_field_message(name: str, expected: str) -> None:
    result = validate(MALFORMED / name)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert expected in output
    assert "Traceback" not in output


def test_missing_file_exits_one(tmp_path: Path) -> None:
    result = validate(tmp_path / "absent.yaml")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "file not found" in output
    assert "Traceback" not in output


def test_multi_document_errors_name_the_document(tmp_path: Path) -> None:
    bad = yaml.safe_load(GOOD)
    bad["metadata"]["name"] = "second"
    bad["spec"]["parallelTrialCount"] = 0
    path = tmp_path / "two.yaml"
    path.write_text(GOOD + "---\n" + yaml.safe_dump(bad))
    result = validate(path)
    assert result.returncode == 1
    assert "document[1].spec.parallelTrialCount: must be >= 1; got 0" in result.stderr


def _notes(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line.strip() for line in result.stdout.splitlines() if "note:" in line]


def test_a_missing_script_or_command_is_a_note(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(GOOD.replace("quadratic.py", "quadratc.py"))
    result = validate(path)
    assert result.returncode == 0, result.stderr
    assert _notes(result) == [
        f"note: cannot run locally: trial command: script quadratc.py does not exist (in {tmp_path})"
    ]
    path.write_text(GOOD.replace("python, quadratic.py", "./train.sh"))
    assert _notes(validate(path)) == [
        "note: cannot run locally: trial command: command not found: ./train.sh"
    ]
    # A script chosen by a parameter cannot be checked before a trial runs: no note.
    data = yaml.safe_load(GOOD)
    data["spec"]["parameters"].append(
        {"name": "s", "parameterType": "categorical", "feasibleSpace": {"list": ["a.py"]}}
    )
    data["spec"]["trialTemplate"]["command"] = [
        "python",
        "${trialParameters.s}",
        "${trialParameters.x}",
    ]
    data["spec"]["trialTemplate"]["trialParameters"].append({"name": "s", "reference": "s"})
    path.write_text(yaml.safe_dump(data))
    assert _notes(validate(path)) == []


def test_configmap_images_argo_and_trainjobs_get_the_truth(tmp_path: Path) -> None:
    data = yaml.safe_load(GOOD)
    template = data["spec"]["trialTemplate"]
    del template["command"]
    template["configMap"] = {
        "configMapName": "trial-templates",
        "configMapNamespace": "kubeflow",
        "templatePath": "defaultTrialTemplate.yaml",
    }
    template["primaryContainerName"] = "training-container"
    path = tmp_path / "cm.yaml"
    path.write_text(yaml.safe_dump(data))
    result = validate(path)
    assert result.returncode == 0, result.stderr
    assert _notes(result) == [
        "note: cannot run locally: trialTemplate.configMap: the trial template is in ConfigMap "
        "kubeflow/trial-templates of a cluster, which is not read here; put it in "
        "trialTemplate.trialSpec (or use trialTemplate.command)"
    ]

    del template["configMap"]
    template["trialSpec"] = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "spec": {
            "entrypoint": "main",
            "templates": [
                {
                    "name": "main",
                    "container": {
                        "name": "training-container",
                        "image": "python:3.11",
                        "command": ["python", "quadratic.py", "--x=${trialParameters.x}"],
                    },
                }
            ],
        },
    }
    path.write_text(yaml.safe_dump(data))
    result = validate(path)
    assert result.returncode == 0, result.stderr  # Katib accepts any kind but a Job as is
    assert _notes(result) == [
        "note: cannot run locally: trialTemplate.trialSpec: an Argo Workflow runs its steps on "
        "a cluster with Argo; local trials run a Job, a Kubeflow training job, a TrainJob or "
        "trialTemplate.command"
    ]

    template["trialSpec"] = {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "spec": {
            "runtimeRef": {"name": "torch-distributed"},
            "trainer": {
                "image": "docker.io/me/quadratic:1",
                "command": ["python", "quadratic.py", "--x=${trialParameters.x}"],
            },
        },
    }
    path.write_text(yaml.safe_dump(data))
    (tmp_path / "quadratic.py").write_text("print('loss=1')\n")
    result = validate(path)
    assert result.returncode == 0, result.stderr
    assert _notes(result) == [
        "note: image docker.io/me/quadratic:1 is not pulled or run: the primary container's "
        "command runs as a process on this machine"
    ]


def test_what_cannot_run_fails_at_start_before_any_trial(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(GOOD.replace("quadratic.py", "quadratc.py"))
    result = run_hyperflow("experiment", "run", "-f", str(path), "--no-mlflow")
    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        "quadratic: Failed (ExperimentFailed) — Experiment cannot run on its backend: trial "
        f"command: script quadratc.py does not exist (in {tmp_path})"
    ) in result.stderr
    assert "trials: none" in result.stderr


LONG_NAME = "a-rather-long-experiment-name-for-a-tuning-run-on-k8s-x"  # 55 characters
JOB_EXPERIMENT = f"""
apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata: {{name: {LONG_NAME}}}
spec:
  objective: {{type: minimize, objectiveMetricName: loss}}
  algorithm: {{algorithmName: random}}
  maxTrialCount: 4
  parameters:
    - {{name: x, parameterType: double, feasibleSpace: {{min: "-5", max: "5"}}}}
  trialTemplate:
    primaryContainerName: training
    trialParameters: [{{name: x, reference: x}}]
    trialSpec:
      apiVersion: batch/v1
      kind: Job
      spec:
        template:
          spec:
            restartPolicy: Never
            containers:
              - name: training
                image: python:3.11-slim
                command: [python, -c, "print('loss=${{trialParameters.x}}')"]
"""


def test_a_name_too_long_for_kubernetes_labels_is_noted_for_that_backend(tmp_path: Path) -> None:
    """A trial Job is named <experiment>-<8 characters> and that name becomes a label value
    of its pods (at most 63): validate --backend kubernetes says so, naming the field; the
    same file is fine locally, and the notes name where it cannot run."""
    assert len(LONG_NAME) == 55
    path = tmp_path / "long.yaml"
    path.write_text(JOB_EXPERIMENT)
    local = validate(path)
    assert local.returncode == 0, local.stderr
    assert "cannot run" not in local.stdout
    on_kube = run_hyperflow("experiment", "validate", "-f", str(path), "--backend", "kubernetes")
    assert on_kube.returncode == 0, on_kube.stderr  # valid Katib all the same
    notes = [line.strip() for line in on_kube.stdout.splitlines() if "note:" in line]
    assert notes == [
        "note: cannot run on kubernetes: metadata.name: at most 54 characters on kubernetes "
        "(got 55): a trial's Job is named <name>-<8 characters>, and a Job's name is a label "
        "value of its pods (at most 63)"
    ]
    unknown = run_hyperflow("experiment", "validate", "-f", str(path), "--backend", "nomad")
    assert unknown.returncode == 1 and "--backend: unknown backend 'nomad'" in unknown.stderr
