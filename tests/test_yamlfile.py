"""One safe YAML loader for Experiment and InferenceService files (serving.yamlfile)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from serving import yamlfile
from serving.spec import SpecError as ServingSpecError
from serving.spec import load_inference_services
from tests.util import feeding_fifo
from tuner.spec import SpecError, load_experiments, parse_experiment

EXPERIMENT = textwrap.dedent(
    """
    apiVersion: kubeflow.org/v1beta1
    kind: Experiment
    metadata: {name: dup}
    spec:
      objective: {type: minimize, objectiveMetricName: loss}
      algorithm: {algorithmName: random}
      maxTrialCount: 4
      parameters:
        - {name: x, parameterType: double, feasibleSpace: {min: "0", max: "1"}}
      trialTemplate:
        command: [python, t.py, "${trialParameters.x}"]
        trialParameters: [{name: x, reference: x}]
      maxTrialCount: 400
    """
).lstrip()

ISVC = textwrap.dedent(
    """
    apiVersion: serving.kserve.io/v1beta1
    kind: InferenceService
    metadata:
      name: iris
    spec:
      predictor:
        model:
          modelFormat: {name: sklearn}
          storageUri: ./model
          storageUri: ./other
    """
).lstrip()


def test_libyaml_parses_when_pyyaml_has_it() -> None:
    assert yaml.__with_libyaml__ == yamlfile.LIBYAML
    if yaml.__with_libyaml__:
        assert issubclass(yamlfile._StrictLoader, yaml.CSafeLoader)
    assert issubclass(yamlfile._StrictLoader, yaml.SafeLoader) or issubclass(
        yamlfile._StrictLoader, yaml.CSafeLoader
    )


def test_duplicate_keys_are_refused_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(EXPERIMENT)
    with pytest.raises(SpecError) as caught:
        load_experiments(path)
    assert caught.value.lines() == [
        "invalid YAML: duplicate key 'maxTrialCount' at line 13, column 3 (already set at line 7)"
    ]
    with pytest.raises(SpecError, match="duplicate key 'maxTrialCount'"):
        parse_experiment(EXPERIMENT)

    isvc = tmp_path / "isvc.yaml"
    isvc.write_text(ISVC)
    with pytest.raises(ServingSpecError) as served:
        load_inference_services(isvc)
    assert served.value.lines() == [
        "invalid YAML: duplicate key 'storageUri' at line 10, column 7 (already set at line 9)"
    ]


def test_merge_keys_may_override_and_equal_keys_in_other_mappings_are_fine() -> None:
    text = "base: &b {a: 1, b: 2}\nderived:\n  <<: *b\n  b: 3\nother: {a: 1}\n"
    assert yamlfile.load(text) == {
        "base": {"a": 1, "b": 2},
        "derived": {"a": 1, "b": 3},
        "other": {"a": 1},
    }


def test_files_over_the_cap_are_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * 64 + "\n")
    with pytest.raises(yamlfile.YamlError, match=r"too large: 67 bytes \(at most 10\)"):
        yamlfile.read_text(big, max_bytes=10)
    with pytest.raises(yamlfile.YamlError, match="too large"):
        yamlfile.load_all("a: 1\n" * 5, max_bytes=10)
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as f:  # sparse: no need to write 10 MiB
        f.truncate(yamlfile.MAX_BYTES + 1)
    with pytest.raises(SpecError) as caught:
        load_experiments(huge)
    assert caught.value.lines() == [
        f"{huge}: too large: {yamlfile.MAX_BYTES + 1} bytes (at most {yamlfile.MAX_BYTES})"
    ]
    with pytest.raises(ServingSpecError, match="too large"):
        load_inference_services(huge)


def test_a_pipe_or_a_device_is_read_only_to_the_cap(tmp_path: Path) -> None:
    """A FIFO's or a device's size is 0: the size check passed and the whole stream was
    read (``/dev/zero``: until memory ran out). Now one byte past the cap is read."""
    too_large = pytest.raises(yamlfile.YamlError, match=r"^too large: more than 1000 bytes$")
    with feeding_fifo(tmp_path / "spec.yaml", 1024 * 1024) as feed, too_large:
        yamlfile.read_text(feed.path, max_bytes=1000)
    assert feed.written < 1024 * 1024  # the reader left: at most a pipe's buffer more
    with feeding_fifo(tmp_path / "small.yaml", 1000) as feed:
        assert len(yamlfile.read_text(feed.path, max_bytes=1000)) == 1000


def test_only_plain_data_is_built() -> None:
    with pytest.raises(yamlfile.YamlError, match="could not determine a constructor"):
        yamlfile.load("!!python/object/apply:os.system ['true']")


def _laughs(levels: int) -> str:
    """Each level a list of ten aliases of the one before: 10**levels values expanded."""
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]")
    return "\n".join(lines) + "\n"


def test_a_billion_laughs_is_refused_not_expanded(tmp_path: Path) -> None:
    import time

    started = time.monotonic()
    limit = yamlfile.MAX_VALUES
    with pytest.raises(yamlfile.YamlError, match=f"more than {limit} values once its aliases"):
        yamlfile.load(_laughs(9))
    # A file within the size cap without aliases is never taken for one: a value takes 2
    # bytes at least ("0," in a flow list).
    assert yamlfile.MAX_VALUES >= yamlfile.MAX_BYTES // 2
    # Documents count together: six of two million values each are a file of twelve.
    two_million = (
        "l0: &l0 [" + ", ".join(["0"] * 2000) + "]\nl1: [" + ", ".join(["*l0"] * 1000) + "]\n"
    )
    with pytest.raises(yamlfile.YamlError, match="aliases are expanded"):
        yamlfile.load_all("---\n".join([two_million] * 6))
    with pytest.raises(yamlfile.YamlError, match="aliases are expanded"):
        yamlfile.load_all("a: 1\n---\n" + _laughs(9))
    assert time.monotonic() - started < 60  # refused on the way, not after 10**9 values
    assert len(yamlfile.load(_laughs(3))["l3"]) == 10  # what aliases are for still works
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(EXPERIMENT.replace("maxTrialCount: 400\n", "") + _laughs(9))
    with pytest.raises(SpecError, match="aliases are expanded"):
        load_experiments(bomb)
