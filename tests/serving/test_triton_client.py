"""A stock V2 client (tritonclient.http) against a real replica process on loopback."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import joblib
import numpy as np
import pytest
import tritonclient.http as httpclient
from sklearn.linear_model import LogisticRegression

from tests.serving.test_dataplane_support import X_TRAIN, Y_TRAIN
from tests.util import REPO, free_port, running, wait_http_ok


def sklearn_isvc(name: str, model_dir: Path, **predictor: object) -> str:
    return json.dumps(
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": name},
            "spec": {
                "predictor": {
                    **predictor,
                    "model": {
                        "modelFormat": {"name": "sklearn"},
                        "protocolVersion": "v2",
                        "storageUri": str(model_dir),
                    },
                }
            },
        }
    )


def train(model_dir: Path) -> LogisticRegression:
    model_dir.mkdir(parents=True, exist_ok=True)
    est = LogisticRegression(max_iter=500).fit(X_TRAIN, Y_TRAIN)
    joblib.dump(est, model_dir / "model.joblib")
    return est


def replica_cmd(isvc_json: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "serving.replica", "--isvc-json", isvc_json,
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, LogisticRegression]]:
    model_dir = tmp_path_factory.mktemp("model") / "iris"
    est = train(model_dir)
    port = free_port()
    with running(replica_cmd(sklearn_isvc("iris", model_dir), port), cwd=REPO) as proc:
        wait_http_ok(f"http://127.0.0.1:{port}/v2/health/ready", timeout=60, proc=proc)
        yield f"127.0.0.1:{port}", est


ROWS = np.array([[5.0, 3.4, 1.5, 0.2], [6.3, 3.3, 6.0, 2.5], [5.8, 2.7, 4.1, 1.0]])


def test_health_and_metadata(replica: tuple[str, LogisticRegression]) -> None:
    url, _ = replica
    client = httpclient.InferenceServerClient(url=url)
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("iris")
    assert not client.is_model_ready("nope")
    meta = client.get_model_metadata("iris")
    assert meta["name"] == "iris"
    assert meta["inputs"][0]["shape"] == [-1, 4]
    server = client.get_server_metadata()
    assert "binary_tensor_data" in server["extensions"]


@pytest.mark.parametrize("binary", [False, True])
def test_infer_json_and_binary(replica: tuple[str, LogisticRegression], binary: bool) -> None:
    url, est = replica
    client = httpclient.InferenceServerClient(url=url)
    x = ROWS.astype(np.float32)
    inp = httpclient.InferInput("input-0", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=binary)
    out = httpclient.InferRequestedOutput("output-0", binary_data=binary)
    result = client.infer("iris", [inp], outputs=[out], request_id="abc")
    np.testing.assert_array_equal(result.as_numpy("output-0"), est.predict(x))
    assert result.get_response()["id"] == "abc"
    # No outputs requested: tritonclient asks for all outputs in binary.
    result = client.infer("iris", [inp])
    np.testing.assert_array_equal(result.as_numpy("output-0"), est.predict(x))


def test_client_sees_errors_as_exceptions(replica: tuple[str, LogisticRegression]) -> None:
    url, _ = replica
    client = httpclient.InferenceServerClient(url=url)
    inp = httpclient.InferInput("input-0", [1, 3], "FP32")
    inp.set_data_from_numpy(np.ones((1, 3), np.float32))
    with pytest.raises(httpclient.InferenceServerException) as err:
        client.infer("iris", [inp])
    assert err.value.status() == "400"
    with pytest.raises(httpclient.InferenceServerException) as err:
        client.infer("nope", [inp])
    assert err.value.status() == "404"
    assert client.is_server_live()


def test_gzip_request_from_client(replica: tuple[str, LogisticRegression]) -> None:
    url, est = replica
    client = httpclient.InferenceServerClient(url=url)
    inp = httpclient.InferInput("input-0", [3, 4], "FP64")
    inp.set_data_from_numpy(ROWS, binary_data=True)
    result = client.infer("iris", [inp], request_compression_algorithm="gzip")
    np.testing.assert_array_equal(result.as_numpy("output-0"), est.predict(ROWS))
