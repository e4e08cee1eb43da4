"""Loading, validating and defaulting Experiments: Katib's examples and the public API."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.util import SHARED, needs_shared
from tuner.spec import (
    Distribution,
    Experiment,
    MetricsCollectorKind,
    SpecError,
    check_experiment,
    load_experiment,
    load_experiments,
    parse_experiment,
    validate_experiment,
)
from tuner.spec.defaults import (
    JOB_FAILURE_CONDITION,
    JOB_SUCCESS_CONDITION,
    KUBEFLOW_JOB_PRIMARY_POD_LABELS,
    KUBEFLOW_JOB_SUCCESS_CONDITION,
)
from tuner.spec.models import MetricStrategyType

KATIB_EXAMPLES = SHARED / "katib-examples"
EXAMPLE_FILES = sorted(KATIB_EXAMPLES.rglob("*.yaml")) if KATIB_EXAMPLES.is_dir() else []

BASE: dict[str, Any] = yaml.safe_load(
    """
apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata: {name: quadratic}
spec:
  objective: {type: maximize, objectiveMetricName: accuracy, additionalMetricNames: [loss]}
  algorithm: {algorithmName: random}
  parallelTrialCount: 2
  maxTrialCount: 4
  parameters:
    - {name: lr, parameterType: double, feasibleSpace: {min: "0.001", max: "0.1"}}
    - {name: layers, parameterType: int, feasibleSpace: {min: 1, max: 4}}
    - {name: optimizer, parameterType: categorical, feasibleSpace: {list: [adam, sgd]}}
  trialTemplate:
    command: [python, train.py, "--lr=${trialParameters.lr}", "--layers=${trialParameters.layers}"]
    env: {OPTIMIZER: "${trialParameters.optimizer}"}
    trialParameters:
      - {name: lr, reference: lr}
      - {name: layers, reference: layers}
      - {name: optimizer, reference: optimizer}
"""
)


def base() -> dict[str, Any]:
    return copy.deepcopy(BASE)


def errors_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_experiment(data)
    return caught.value.lines()


@needs_shared("katib-examples")
@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: str(p.relative_to(KATIB_EXAMPLES)))
def test_katib_example_loads_unchanged(path: Path) -> None:
    experiments = load_experiments(path)
    assert experiments
    raw = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for experiment, document in zip(experiments, raw, strict=True):
        assert experiment.metadata.name == document["metadata"]["name"]
        assert experiment.base_dir == path.resolve().parent
        # Every field the author wrote survives the round trip (defaults only add).
        assert _contains(experiment.to_dict(), document)


def _contains(full: Any, part: Any) -> bool:
    if isinstance(part, dict):
        return isinstance(full, dict) and all(
            k in full and _contains(full[k], v) for k, v in part.items()
        )
    if isinstance(part, list):
        return (
            isinstance(full, list)
            and len(full) >= len(part)
            and all(_contains(f, p) for f, p in zip(full, part, strict=False))
        )
    return full == part or str(full) == str(part)


@needs_shared("katib-examples")
def test_katib_defaults_applied_to_job_example() -> None:
    experiment = load_experiment(KATIB_EXAMPLES / "hp-tuning" / "random.yaml")
    template = experiment.spec.trial_template
    assert template is not None
    assert template.success_condition == JOB_SUCCESS_CONDITION
    assert template.failure_condition == JOB_FAILURE_CONDITION
    assert experiment.spec.metrics_collector_spec.collector.kind is MetricsCollectorKind.STDOUT
    assert all(
        p.feasible_space.distribution is Distribution.UNIFORM for p in experiment.spec.parameters
    )


def test_parse_mapping_applies_katib_defaults() -> None:
    data = base()
    del data["spec"]["parallelTrialCount"]
    data["spec"]["maxTrialCount"] = 10
    experiment = parse_experiment(data)
    spec = experiment.spec
    assert spec.parallel_trial_count == 3
    assert experiment.base_dir is None
    assert [(s.name, s.value) for s in spec.objective.metric_strategies] == [
        ("accuracy", MetricStrategyType.MAX),
        ("loss", MetricStrategyType.MAX),
    ]
    kinds = [p.feasible_space.distribution for p in spec.parameters]
    assert kinds == [Distribution.UNIFORM, Distribution.UNIFORM, None]
    # Idempotent: validating again changes nothing.
    before = experiment.to_dict()
    validate_experiment(experiment)
    assert experiment.to_dict() == before


def test_explicit_strategy_kept_missing_ones_added() -> None:
    data = base()
    data["spec"]["objective"]["metricStrategies"] = [{"name": "loss", "value": "latest"}]
    experiment = parse_experiment(data)
    strategies = {s.name: s.value for s in experiment.spec.objective.metric_strategies}
    assert strategies == {"loss": MetricStrategyType.LATEST, "accuracy": MetricStrategyType.MAX}


def test_parse_yaml_text_with_base_dir(tmp_path: Path) -> None:
    experiment = parse_experiment(yaml.safe_dump(BASE), base_dir=tmp_path)
    assert experiment.base_dir == tmp_path
    assert "base_dir" not in str(experiment.to_dict())
    assert "_base_dir" not in experiment.model_dump_json()


def test_load_sets_base_dir_to_file_folder(tmp_path: Path) -> None:
    folder = tmp_path / "exp"
    folder.mkdir()
    path = folder / "experiment.yaml"
    path.write_text(yaml.safe_dump(BASE))
    experiment = load_experiment(path)
    assert experiment.base_dir == folder.resolve()
    assert experiment.spec.trial_template is not None
    assert experiment.spec.trial_template.command is not None
    assert experiment.spec.trial_template.command[0] == "python"  # replaced at run time


def test_multiple_documents(tmp_path: Path) -> None:
    second = base()
    second["metadata"]["name"] = "second"
    path = tmp_path / "two.yaml"
    path.write_text("---\n" + yaml.safe_dump(BASE) + "---\n---\n" + yaml.safe_dump(second))
    assert [e.metadata.name for e in load_experiments(path)] == ["quadratic", "second"]
    with pytest.raises(SpecError) as caught:
        load_experiment(path)
    assert caught.value.lines() == [f"expected one Experiment in {path}, found 2"]


def test_single_document_errors_have_no_document_prefix(tmp_path: Path) -> None:
    data = base()
    data["spec"]["objective"]["type"] = "up"
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError) as caught:
        load_experiments(path)
    assert caught.value.lines() == [
        "spec.objective.type: must be one of minimize, maximize; got 'up'"
    ]
    assert caught.value.errors[0].path == "spec.objective.type"


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_experiments(tmp_path / "nope.yaml")
    assert caught.value.lines() == [f"{tmp_path / 'nope.yaml'}: file not found"]
    with pytest.raises(SpecError) as caught:
        load_experiments(tmp_path)
    assert caught.value.lines() == [f"{tmp_path} is a directory, not a file"]


def test_several_errors_reported_together() -> None:
    data = base()
    data["spec"]["parallelTrialCount"] = 0
    data["spec"]["objective"]["goal"] = float("nan")
    data["spec"]["parameters"][0]["feasibleSpace"]["max"] = "-1"
    assert errors_of(data) == [
        "spec.objective.goal: must be a finite number",
        "spec.parallelTrialCount: must be >= 1; got 0",
        "spec.parameters[0].feasibleSpace.min: must be < max (got min 0.001, max -1)",
    ]


def test_validate_experiment_built_in_python() -> None:
    experiment = Experiment.model_validate(base())
    experiment.spec.max_trial_count = 0
    assert [str(e) for e in check_experiment(experiment)] == [
        "spec.maxTrialCount: must be >= 1; got 0"
    ]
    with pytest.raises(SpecError, match=r"spec\.maxTrialCount: must be >= 1"):
        validate_experiment(experiment)
    experiment.spec.max_trial_count = 5
    validate_experiment(experiment)
    assert experiment.spec.objective.metric_strategies


def test_hyperband_resource_parameter_may_have_empty_range() -> None:
    data = base()
    data["spec"]["parameters"][1]["feasibleSpace"] = {"min": "1", "max": "1"}
    # Only hyperband's resource parameter (its value is the bracket budget) may do this.
    assert errors_of(data) == [
        "spec.parameters[1].feasibleSpace.min: must be < max (got min 1, max 1)"
    ]
    data["spec"]["algorithm"] = {
        "algorithmName": "hyperband",
        "algorithmSettings": [
            {"name": "resource_name", "value": "layers"},
            {"name": "r_l", "value": "2"},
            {"name": "eta", "value": "2"},
        ],
    }
    assert parse_experiment(data).spec.algorithm.algorithm_name == "hyperband"


def test_meta_references_and_kubeflow_job_defaults() -> None:
    data = base()
    template = data["spec"]["trialTemplate"]
    del template["command"], template["env"]
    template["primaryContainerName"] = "pytorch"
    template["trialParameters"].append({"name": "trialName", "reference": "${trialSpec.Name}"})
    args = [
        "--lr=${trialParameters.lr}",
        "--layers=${trialParameters.layers}",
        "--opt=${trialParameters.optimizer}",
        "--name=${trialParameters.trialName}",
        "--ns=${trialSpec.Namespace}",
        "--team=${trialSpec.Labels[team]}",
    ]
    template["trialSpec"] = {
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
                                    "command": ["python"],
                                    "args": args,
                                }
                            ]
                        }
                    },
                }
            }
        },
    }
    experiment = parse_experiment(data)
    assert experiment.spec.trial_template is not None
    assert experiment.spec.trial_template.success_condition == KUBEFLOW_JOB_SUCCESS_CONDITION
    assert experiment.spec.trial_template.primary_pod_labels == KUBEFLOW_JOB_PRIMARY_POD_LABELS
    template["primaryContainerName"] = "worker"
    assert errors_of(data) == [
        "spec.trialTemplate.primaryContainerName: no container named 'worker' in trialSpec "
        "(found: pytorch)"
    ]


def test_trial_spec_rules() -> None:
    data = base()
    template = data["spec"]["trialTemplate"]
    del template["command"], template["env"]
    template["trialParameters"] = template["trialParameters"][:1]
    template["trialSpec"] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "fixed"},
        "spec": {"template": {"spec": {"containers": [{"name": "main", "args": "--lr=1"}]}}},
    }
    assert errors_of(data) == [
        "spec.trialTemplate.trialSpec.metadata.name: must be omitted (each trial gets its own "
        "name and the experiment's namespace)",
        "spec.trialTemplate.primaryContainerName: required with trialSpec",
        "spec.trialTemplate.trialParameters[0].name: 'lr' is not used in the trial template "
        "(no ${trialParameters.lr} found)",
    ]
    template["primaryContainerName"] = "main"
    del template["trialSpec"]["metadata"]
    assert errors_of(data) == [
        "spec.trialTemplate.trialSpec.spec.template.spec.containers[0].args: "
        "must be a list of strings",
        "spec.trialTemplate.trialParameters[0].name: 'lr' is not used in the trial template "
        "(no ${trialParameters.lr} found)",
    ]
    template["trialSpec"]["spec"]["template"]["spec"]["containers"] = []
    assert errors_of(data)[0] == (
        "spec.trialTemplate.trialSpec.spec.template.spec.containers: "
        "required: a list with the trial's container"
    )


def test_config_map_source_needs_all_fields() -> None:
    data = base()
    template = data["spec"]["trialTemplate"]
    del template["command"], template["env"]
    template["configMap"] = {"configMapName": "templates", "templatePath": "job.yaml"}
    assert errors_of(data) == ["spec.trialTemplate.configMap.configMapNamespace: required"]
    template["configMap"]["configMapNamespace"] = "kubeflow"
    assert parse_experiment(data).spec.trial_template is not None


def test_collector_rules_and_defaults() -> None:
    data = base()
    data["spec"]["metricsCollectorSpec"] = {
        "collector": {"kind": "File"},
        "source": {
            "fileSystemPath": {"path": "metrics.json", "kind": "File", "format": "JSON"},
            "filter": {"metricsFormat": ["(\\w+)=(\\S+)"]},
        },
    }
    assert errors_of(data) == [
        "spec.metricsCollectorSpec.source.filter: must not be set when the file format is JSON"
    ]
    del data["spec"]["metricsCollectorSpec"]["source"]["filter"]
    # A relative path is a local extension (Katib wants an absolute one in the container).
    assert parse_experiment(data).spec.metrics_collector_spec.source is not None

    data["spec"]["metricsCollectorSpec"] = {"collector": {"kind": "PrometheusMetric"}}
    http = parse_experiment(data).spec.metrics_collector_spec.source
    assert http is not None and http.http_get is not None
    assert (http.http_get.path, http.http_get.port) == ("/metrics", 8080)
    data["spec"]["metricsCollectorSpec"]["source"] = {"httpGet": {"path": "metrics", "port": 0}}
    assert errors_of(data) == [
        "spec.metricsCollectorSpec.source.httpGet.port: must be a port number 1-65535; got 0",
        "spec.metricsCollectorSpec.source.httpGet.path: must start with '/'; got 'metrics'",
    ]
    # A digit to str.isdigit, not to int(): refused by name, not a ValueError.
    data["spec"]["metricsCollectorSpec"]["source"] = {"httpGet": {"path": "/m", "port": "\u00b9"}}
    assert errors_of(data) == [
        "spec.metricsCollectorSpec.source.httpGet.port: must be a port number 1-65535; got '\u00b9'"
    ]
    data["spec"]["metricsCollectorSpec"] = {"collector": {"kind": "Custom"}}
    assert errors_of(data) == [
        "spec.metricsCollectorSpec.collector.customCollector: required for collector kind Custom"
    ]


def test_pydantic_errors_use_camel_case_paths() -> None:
    data = base()
    data["spec"]["trialTemplate"]["trialParameters"][0] = {"name": "lr"}
    data["spec"]["parameters"][0]["feasibleSpace"]["mn"] = "1"
    data["spec"]["objective"]["additionalMetricNames"] = "loss"
    assert errors_of(data) == [
        "spec.parameters[0].feasibleSpace.mn: unknown field; did you mean 'min'?",
        "spec.objective.additionalMetricNames: must be a list; got a string",
        "spec.trialTemplate.trialParameters[0].reference: required",
    ]


def test_counts_and_the_goal_take_numbers_only_as_the_crd_types_do() -> None:
    """``true`` is no count nor goal, ``"5"`` no count (they read as 1 and 5 before);
    a goal without a dot, which PyYAML reads as a string (``1e-3``), stays a number."""
    data = base()
    data["spec"].update(maxTrialCount="5", parallelTrialCount=True, maxFailedTrialCount=2.0)
    data["spec"]["objective"]["goal"] = True
    assert errors_of(data) == [
        "spec.objective.goal: must be a number; got True",
        "spec.parallelTrialCount: must be an integer; got True",
        "spec.maxTrialCount: must be an integer; got '5'",
        "spec.maxFailedTrialCount: must be an integer; got 2.0",
    ]
    data = base()
    data["spec"]["objective"]["goal"] = "1e-3"
    assert parse_experiment(data).spec.objective.goal == 0.001


def test_spec_error_lines_and_str() -> None:
    from tuner.spec import FieldError

    error = SpecError([FieldError("spec.a", "bad"), FieldError("", "file problem")])
    assert error.lines() == ["spec.a: bad", "file problem"]
    assert str(error) == "spec.a: bad\nfile problem"
    assert isinstance(error, ValueError)


def test_non_string_keys_and_container_names() -> None:
    data = base()
    data["spec"][7] = "x"
    assert errors_of(data) == ["spec: field names must be strings; got 7"]
    data = base()
    template = data["spec"]["trialTemplate"]
    del template["command"], template["env"]
    template["trialParameters"] = []
    template["primaryContainerName"] = "main"
    template["trialSpec"] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "spec": {"template": {"spec": {"containers": [{"command": ["python", "t.py"]}]}}},
    }
    assert errors_of(data) == [
        "spec.trialTemplate.trialSpec.spec.template.spec.containers[0].name: "
        "required: a container name",
        "spec.trialTemplate.primaryContainerName: no container named 'main' in trialSpec "
        "(found: None)",
    ]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["spec"].__setitem__("parameters", [{}] * 3),
        lambda d: d["spec"].__setitem__("trialTemplate", {"trialSpec": [1, 2]}),
        lambda d: d["spec"]["objective"].__setitem__("goal", "1e999"),
        lambda d: d["spec"]["algorithm"].__setitem__("algorithmSettings", [{"name": None}]),
        lambda d: d.__setitem__("metadata", None),
        lambda d: d["spec"].__setitem__(
            "metricsCollectorSpec", {"source": {"filter": {"metricsFormat": "("}}}
        ),
    ],
)
def test_odd_shapes_raise_spec_error_only(mutate: Any) -> None:
    data = base()
    mutate(data)
    assert errors_of(data)  # a SpecError with at least one line, nothing else
