"""Each malformed Experiment file yields exactly the field-named errors listed here."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuner.spec import SpecError, load_experiments

MALFORMED = Path(__file__).parent / "malformed"

# file -> every expected error line, in order ("{path}" is the fixture's path).
CASES: dict[str, list[str]] = {
    "additional-metric-is-objective.yaml": [
        "spec.objective.additionalMetricNames[1]: must not contain objectiveMetricName 'loss'"
    ],
    "algorithm-name-empty.yaml": ["spec.algorithm.algorithmName: required"],
    "algorithm-unknown-setting.yaml": [
        "spec.algorithm.algorithmSettings[0].name: unknown setting 'foo' for random; "
        "valid settings: random_state"
    ],
    "algorithm-unknown.yaml": [
        "spec.algorithm.algorithmName: unknown algorithm 'simulated-annealing'; valid: "
        "bayesianoptimization, cmaes, grid, hyperband, multivariate-tpe, pbt, random, sobol, tpe"
    ],
    "bad-yaml-syntax.yaml": [
        "invalid YAML: mapping values are not allowed in this context at line 8, column 9"
    ],
    "bad-yaml-tab.yaml": [
        "invalid YAML: found character that cannot start any token at line 7, column 1"
    ],
    "binary-garbage.yaml": ["{path}: not UTF-8 text (byte 128 is invalid)"],
    "categorical-duplicate-value.yaml": [
        "spec.parameters[0].feasibleSpace.list[2]: duplicate value 'adam' (also list[0])"
    ],
    "categorical-empty-list.yaml": ["spec.parameters[0].feasibleSpace.list: must not be empty"],
    "categorical-without-list.yaml": [
        "spec.parameters[0].feasibleSpace.min: not allowed for parameterType categorical; use list",
        "spec.parameters[0].feasibleSpace.max: not allowed for parameterType categorical; use list",
        "spec.parameters[0].feasibleSpace.list: required for parameterType categorical",
    ],
    "cmaes-one-parameter.yaml": ["spec.parameters: cmaes needs at least 2 double/int parameters"],
    "collector-kind-unknown.yaml": [
        "spec.metricsCollectorSpec.collector.kind: must be one of StdOut, File, TensorFlowEvent, "
        "PrometheusMetric, Custom, None, Push; got 'Stdout'"
    ],
    "discrete-not-number.yaml": [
        "spec.parameters[0].feasibleSpace.list[1]: must be a number; got 'two' "
        "(parameterType discrete takes numbers)"
    ],
    "distribution-unknown.yaml": [
        "spec.parameters[0].feasibleSpace.distribution: must be one of uniform, logUniform, "
        "normal, logNormal; got 'gaussian'"
    ],
    "early-stopping-bad-value.yaml": [
        "spec.earlyStopping.algorithmSettings[0].value: must be an integer >= 1; got '0'"
    ],
    "early-stopping-unknown-setting.yaml": [
        "spec.earlyStopping.algorithmSettings[0].name: unknown setting 'min_trials'; "
        "valid settings: min_trials_required, start_step"
    ],
    "early-stopping-unknown.yaml": [
        "spec.earlyStopping.algorithmName: unknown early stopping algorithm 'patience'; "
        "valid: medianstop"
    ],
    "empty.yaml": ["{path}: no Experiment in file (it is empty)"],
    "field-typo.yaml": ["spec.maxTrialCounts: unknown field; did you mean 'maxTrialCount'?"],
    "file-collector-no-path.yaml": [
        "spec.metricsCollectorSpec.source.fileSystemPath.path: required for collector kind File"
    ],
    "goal-huge.yaml": ["spec.objective.goal: must be a finite number"],
    "grid-too-small.yaml": [
        "spec.maxTrialCount: grid needs maxTrialCount (20) <= number of grid combinations (6)"
    ],
    "log-uniform-nonpositive.yaml": [
        "spec.parameters[0].feasibleSpace.min: must be > 0 for distribution logUniform; got '0'"
    ],
    "max-failed-negative.yaml": ["spec.maxFailedTrialCount: must be >= 0; got -1"],
    "max-trials-negative.yaml": ["spec.maxTrialCount: must be >= 1; got -1"],
    "max-trials-not-int.yaml": ["spec.maxTrialCount: must be an integer; got 'ten'"],
    "max-trials-overflow.yaml": ["spec.maxTrialCount: must be <= 2147483647; got 99999999999"],
    "metadata-name-invalid.yaml": [
        "metadata.name: must consist of lower case letters, digits or '-', start with a letter "
        "and end with a letter or digit (e.g. 'my-name'); got 'My_Experiment'"
    ],
    "metadata-name-missing.yaml": ["metadata.name: required"],
    "metric-strategy-bad-value.yaml": [
        "spec.objective.metricStrategies[0].value: must be one of min, max, latest; got 'median'"
    ],
    "metric-strategy-unknown-metric.yaml": [
        "spec.objective.metricStrategies[0].name: unknown metric 'acc'; must be "
        "objectiveMetricName or one of additionalMetricNames (loss)"
    ],
    "metrics-format-bad-regex.yaml": [
        "spec.metricsCollectorSpec.source.filter.metricsFormat[0]: invalid regular expression: "
        "missing ), unterminated subpattern at position 6"
    ],
    "metrics-format-one-group.yaml": [
        "spec.metricsCollectorSpec.source.filter.metricsFormat[0]: must have two groups: "
        "the first matches the metric name, the second its value"
    ],
    "multi-document-duplicate-name.yaml": [
        "document[1].metadata.name: 'quadratic' is already defined by document[0]"
    ],
    "multi-document-second-bad.yaml": [
        "document[1].spec.objective.type: must be one of minimize, maximize; got 'maximum'"
    ],
    "nas-config.yaml": [
        "spec.nasConfig: neural architecture search (NAS) experiments are not supported; "
        "hyperflow runs hyperparameter tuning (spec.parameters)"
    ],
    "not-a-mapping.yaml": ["an Experiment must be a mapping; got a list"],
    "objective-metric-missing.yaml": ["spec.objective.objectiveMetricName: required"],
    "objective-missing.yaml": ["spec.objective: required"],
    "objective-type-typo.yaml": [
        "spec.objective.type: must be one of minimize, maximize; got 'maximise'"
    ],
    "parallel-above-max.yaml": ["spec.parallelTrialCount: must be <= maxTrialCount (6); got 10"],
    "parallel-default-above-max.yaml": [
        "spec.parallelTrialCount: must be <= maxTrialCount (2); got 3 (3 is the default)"
    ],
    "parallel-zero.yaml": ["spec.parallelTrialCount: must be >= 1; got 0"],
    "parameter-duplicate-name.yaml": [
        "spec.parameters[1].name: duplicate parameter name 'x' (also spec.parameters[0])",
        "spec.trialTemplate.trialParameters[1].reference: 'y' is not a parameter name (x) nor "
        "a trial metadata reference such as ${trialSpec.Name}",
    ],
    "parameter-int-not-integer.yaml": [
        "spec.parameters[1].feasibleSpace.min: must be an integer; got '1.5'"
    ],
    "parameter-list-on-double.yaml": [
        "spec.parameters[0].feasibleSpace.list: not allowed for parameterType double; "
        "use min and max"
    ],
    "parameter-max-missing.yaml": [
        "spec.parameters[0].feasibleSpace.max: required for parameterType double "
        "(Katib accepts one bound; local runs need both min and max)"
    ],
    "parameter-min-ge-max.yaml": [
        "spec.parameters[0].feasibleSpace.min: must be < max (got min 5, max -5)"
    ],
    "parameter-min-huge.yaml": [
        "spec.parameters[0].feasibleSpace.min: must be a finite number; got '1e400'"
    ],
    "parameter-min-not-number.yaml": [
        "spec.parameters[0].feasibleSpace.min: must be a number; got 'abc'"
    ],
    "parameter-step-too-large.yaml": [
        "spec.parameters[0].feasibleSpace.step: must be <= max - min (10); got '20'"
    ],
    "parameter-step-zero.yaml": ["spec.parameters[0].feasibleSpace.step: must be > 0; got '0'"],
    "parameter-type-unknown.yaml": [
        "spec.parameters[0].parameterType: must be one of double, int, discrete, categorical; "
        "got 'float'"
    ],
    "parameters-empty.yaml": ["spec.parameters: at least one parameter is required"],
    "parameters-not-list.yaml": ["spec.parameters: must be a list; got a mapping"],
    "resume-policy-bad.yaml": [
        "spec.resumePolicy: must be one of Never, LongRunning, FromVolume; got 'Always'"
    ],
    "scalar-document.yaml": ["an Experiment must be a mapping; got a string"],
    "trial-command-empty.yaml": [
        "spec.trialTemplate.command: must be a non-empty argv list",
        "spec.trialTemplate.trialParameters[0].name: 'x' is not used in the trial template "
        "(no ${trialParameters.x} found)",
        "spec.trialTemplate.trialParameters[1].name: 'y' is not used in the trial template "
        "(no ${trialParameters.y} found)",
    ],
    "trial-meta-unknown.yaml": [
        "spec.trialTemplate.command[4]: unknown trial metadata reference ${trialSpec.Uid}; "
        "valid: Name, Namespace, Kind, APIVersion, Labels[key], Annotations[key]"
    ],
    "trial-parameter-bad-reference.yaml": [
        "spec.trialTemplate.trialParameters[1].reference: 'why' is not a parameter name (x, y) "
        "nor a trial metadata reference such as ${trialSpec.Name}"
    ],
    "trial-parameter-duplicate-name.yaml": [
        "spec.trialTemplate.trialParameters[1].name: duplicate trial parameter name 'x' "
        "(also trialParameters[0])"
    ],
    "trial-parameter-unused.yaml": [
        "spec.trialTemplate.trialParameters[1].name: 'y' is not used in the trial template "
        "(no ${trialParameters.y} found)"
    ],
    "trial-placeholder-undeclared.yaml": [
        "spec.trialTemplate.command[4]: ${trialParameters.z} is not declared in "
        "trialTemplate.trialParameters"
    ],
    "trial-spec-env-with-trialspec.yaml": [
        "spec.trialTemplate.env: only used with trialTemplate.command; in a trialSpec set env "
        "on the container"
    ],
    "trial-spec-no-command.yaml": [
        "spec.trialTemplate.trialSpec.spec.template.spec.containers[0]: the primary container "
        "needs a command or args (local trials run them as a process)"
    ],
    "trial-spec-no-kind.yaml": ["spec.trialTemplate.trialSpec.kind: required"],
    "trial-spec-primary-missing.yaml": [
        "spec.trialTemplate.primaryContainerName: no container named 'trainer' in trialSpec "
        "(found: training)"
    ],
    "trial-template-missing.yaml": ["spec.trialTemplate: required"],
    "trial-template-two-sources.yaml": [
        "spec.trialTemplate: only one of trialSpec, configMap or command may be set; "
        "got trialSpec, command"
    ],
    "wrong-api-version.yaml": [
        "apiVersion: must be kubeflow.org/v1beta1; got 'kubeflow.org/v1alpha3'"
    ],
    "wrong-kind.yaml": ["kind: must be Experiment; got 'InferenceService'"],
}


def test_every_fixture_has_a_case() -> None:
    on_disk = {p.name for p in MALFORMED.iterdir() if p.is_file()}
    assert on_disk == set(CASES)
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_file_names_the_field(name: str) -> None:
    path = MALFORMED / name
    with pytest.raises(SpecError) as caught:
        load_experiments(path)
    expected = [line.replace("{path}", str(path)) for line in CASES[name]]
    assert caught.value.lines() == expected
    assert str(caught.value) == "\n".join(expected)
