"""``hyperflow serve validate``: exit codes, field errors, one summary line per service."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from serving.cli import app
from serving.storage import StorageError, resolve_storage_uri
from tests.util import REPO, SHARED, needs_shared, run_hyperflow

runner = CliRunner()


@needs_shared("kserve-examples")
def test_valid_files_exit_0_with_one_line_each() -> None:
    files = [
        SHARED / "kserve-examples/04-canary.yaml",
        REPO / "examples/serving/sklearn-iris.yaml",
        REPO / "examples/serving/custom.yaml",
    ]
    args = ["validate"] + [arg for f in files for arg in ("-f", str(f))]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if not line.startswith("  ")]
    assert lines == [
        "inferenceservice 'my-model' is valid: format tensorflow, protocol v1, "
        "storageUri gs://kfserving-examples/models/tensorflow/flowers-2, replicas 1..unbounded, "
        "concurrency target 100, canary 10%",
        "inferenceservice 'sklearn-iris' is valid: format sklearn, protocol v2, "
        "storageUri ./model, replicas 0..3, concurrency target 8",
        "inferenceservice 'iris-rules' is valid: format custom, protocol v1, storageUri -, "
        "replicas 1..unbounded, concurrency target 100",
    ]
    # Valid but not runnable here: said so, still exit 0.
    assert "note: cannot run locally: spec.predictor.tensorflow: model format 'tensorflow'" in (
        result.stdout
    )


def test_invalid_file_exits_1_with_field_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n"
        "metadata: {name: iris}\n"
        "spec:\n  predictor:\n    minReplicas: -1\n    canaryTrafficPercent: 120\n"
        "    model: {modelFormat: {name: sklearn}, storageUri: ./m}\n"
    )
    result = runner.invoke(app, ["validate", "-f", str(bad)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{bad}: invalid",
        "  spec.predictor.minReplicas: must be >= 0",
        "  spec.predictor.canaryTrafficPercent: must be between 0 and 100",
    ]
    assert result.stdout == ""


def test_unknown_fields_are_reported_together_with_hints(tmp_path: Path) -> None:
    bad = tmp_path / "typos.yaml"
    bad.write_text(
        "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n"
        "metadata: {name: iris}\n"
        "spec:\n  predictor:\n    minReplica: 0\n"
        "    model: {modelFormat: {name: sklearn}, storageURI: ./m}\n"
    )
    result = runner.invoke(app, ["validate", "-f", str(bad)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{bad}: invalid",
        "  spec.predictor.model.storageURI: unknown field; did you mean 'storageUri'?",
        "  spec.predictor.minReplica: unknown field (not an InferenceService component or "
        "Kubernetes PodSpec field); did you mean 'minReplicas'?",
    ]


def _isvc_file(folder: Path, uri: str) -> Path:
    path = folder / "isvc.yaml"
    path.write_text(
        "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n"
        "metadata: {name: iris}\n"
        f"spec:\n  predictor:\n    model: {{modelFormat: {{name: sklearn}}, storageUri: {uri}}}\n"
    )
    return path


def test_missing_local_storage_is_a_note_and_still_valid(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", "-f", str(_isvc_file(tmp_path, "./nomodel"))])
    assert result.exit_code == 0, result.output
    assert (
        f"  note: storageUri ./nomodel does not exist (yet): {tmp_path / 'nomodel'}"
        in result.stdout.splitlines()
    )
    (tmp_path / "nomodel").mkdir()
    result = runner.invoke(app, ["validate", "-f", str(_isvc_file(tmp_path, "./nomodel"))])
    assert result.exit_code == 0 and "note:" not in result.stdout


def test_storage_that_climbs_out_is_refused_as_at_deploy_time(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b"
    folder.mkdir(parents=True)
    (tmp_path / "x").mkdir()  # it exists, but outside the file's folder
    with pytest.raises(StorageError) as deploy:
        resolve_storage_uri("../../x", folder)
    path = _isvc_file(folder, "../../x")
    result = runner.invoke(app, ["validate", "-f", str(path)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{path}: invalid",
        f"  spec.predictor.model.storageUri: {deploy.value}",
    ]
    assert "a relative path must stay inside" in str(deploy.value)


def test_one_bad_file_among_good_ones_exits_1(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "validate",
            "-f",
            str(REPO / "examples/serving/sklearn-v1.yaml"),
            "-f",
            str(tmp_path / "missing.yaml"),
        ],
    )
    assert result.exit_code == 1
    assert "inferenceservice 'iris' is valid" in result.stdout
    assert "missing.yaml: invalid" in result.stderr and "file not found" in result.stderr


def test_real_cli_never_prints_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [")
    proc = run_hyperflow("serve", "validate", "-f", str(bad))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "invalid YAML" in proc.stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("kind: Experiment\n", "kind: must be 'InferenceService', got 'Experiment'"),
        ("- just a list\n", "an InferenceService must be a mapping, got list"),
    ],
)
def test_non_inference_service_documents(tmp_path: Path, content: str, expected: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    result = runner.invoke(app, ["validate", "-f", str(bad)])
    assert result.exit_code == 1 and expected in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
