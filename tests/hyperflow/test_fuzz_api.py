"""Fuzz the whole OpenAPI document with schemathesis (positive and negative data, bounded
in time): no 5xx, every error a JSON body with an ``error`` message."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.hyperflow.conftest import Running, experiment, isvc

EXAMPLES = 25  # per operation and mode: the whole run stays within about a minute


@pytest.mark.timeout(600)
def test_fuzz_every_operation(server: Running, tmp_path: Path, iris_models: Path) -> None:
    # Something for the generated requests to find: an experiment with finished trials and
    # an inference service (scaled to zero: no replica process).
    r = server.http.post(
        "/apis/v1/namespaces/default/experiments",
        json=experiment("fuzzed", tmp_path, max_trials=2, parallel=2),
    )
    assert r.status_code == 201
    service = isvc("fuzzed", iris_models, minReplicas=0)
    service["metadata"]["annotations"]["autoscaling.knative.dev/initial-scale"] = "0"
    r = server.http.post("/apis/v1/namespaces/default/inferenceservices", json=service)
    assert r.status_code == 201, r.text
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    problems: list[str] = []
    statuses: dict[int, int] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14
    labels = {operation.label for operation in operations}
    assert {
        "POST /apis/v1/namespaces/{namespace}/inferenceservices",
        "PUT /apis/v1/namespaces/{namespace}/inferenceservices/{name}",
        "DELETE /apis/v1/namespaces/{namespace}/inferenceservices/{name}",
        "GET /apis/v1/inferenceservices",
        "POST /apis/v1/namespaces/{namespace}/experiments/{name}/deploy-best",
    } <= labels, labels
    started = time.monotonic()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate],
            )
            def run(case: schemathesis.Case) -> None:
                if isinstance(case.query, dict):
                    # Streams that would only end when their trial or the server does.
                    case.query.pop("watch", None)
                    case.query.pop("follow", None)
                response = case.call(base_url=server.url, timeout=30)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                where = (
                    f"{case.method} {case.formatted_path} {case.query} -> {response.status_code}"
                )
                if response.status_code >= 500:
                    problems.append(f"{where}: {response.text[:300]}")
                elif response.status_code >= 400:
                    try:
                        body = response.json()
                    except ValueError:
                        problems.append(f"{where}: not JSON: {response.text[:200]}")
                        return
                    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
                        problems.append(f"{where}: no error message: {body}")

            try:
                run()
            except Unsatisfiable:
                # No invalid request exists for an operation without inputs (/healthz).
                assert mode is GenerationMode.NEGATIVE, operation.label
    assert problems == [], "\n".join(problems[:20])
    # It reached the handlers both ways: answers and refusals of several kinds.
    assert statuses.get(200, 0) > 20 and sum(statuses.get(c, 0) for c in (400, 404, 415, 422)) > 50
    assert len([c for c in statuses if 400 <= c < 500]) >= 3, statuses
    assert time.monotonic() - started < 400
    # Whatever the fuzzer created is cleaned up by the fixture (controllers stopped).


_EXP = b"/apis/v1/namespaces/default/experiments"
_JSON = b"content-type: application/json\r\n"
RAW_CASES = [
    ("garbage request line", b"\x00\x01\x02 nonsense\r\n\r\n"),
    ("unknown method", b"BREW " + _EXP + b" HTTP/1.1\r\nhost: x\r\n\r\n"),
    ("bad content-length", b"POST " + _EXP + b" HTTP/1.1\r\nhost: x\r\n" + _JSON + b"content-length: abc\r\n\r\n{}"),
    ("body longer than the limit, announced", b"POST " + _EXP + b" HTTP/1.1\r\nhost: x\r\n" + _JSON + b"content-length: 99999999999\r\n\r\n{"),
    ("chunked body over the limit", b"POST " + _EXP + b" HTTP/1.1\r\nhost: x\r\n" + _JSON + b"transfer-encoding: chunked\r\n\r\n" + (b"100000\r\n" + b"x" * 0x100000 + b"\r\n") * 4 + b"0\r\n\r\n"),
    ("truncated JSON", b"POST " + _EXP + b" HTTP/1.1\r\nhost: x\r\n" + _JSON + b"content-length: 2\r\n\r\n{\""),
    ("deep JSON", b"POST " + _EXP + b" HTTP/1.1\r\nhost: x\r\n" + _JSON + b"content-length: 200000\r\n\r\n" + b"[" * 100000 + b"]" * 100000),
    ("not UTF-8", b"POST " + _EXP + b" HTTP/1.1\r\nhost: x\r\n" + _JSON + b"content-length: 2\r\n\r\n\xff\xfe"),
    ("huge header", b"GET " + _EXP + b" HTTP/1.1\r\nhost: x\r\nx-a: " + b"a" * 100_000 + b"\r\n\r\n"),
    ("huge target", b"GET " + _EXP + b"?" + b"a" * 100_000 + b" HTTP/1.1\r\nhost: x\r\n\r\n"),
    ("bad percent-encoding", b"GET /apis/v1/namespaces/%zz/experiments HTTP/1.1\r\nhost: x\r\n\r\n"),
    ("NUL in a path segment", b"GET /apis/v1/namespaces/a%00b/experiments HTTP/1.1\r\nhost: x\r\n\r\n"),
    ("bad bearer bytes", b"GET " + _EXP + b" HTTP/1.1\r\nhost: x\r\nauthorization: Bearer \xff\r\n\r\n"),
    ("bad resourceVersion", b"GET /apis/v1/events?resourceVersion=99999999999999999999999 HTTP/1.1\r\nhost: x\r\n\r\n"),
    # A digit to str.isdigit, not to int() (found by the fuzzer: a 500 once).
    ("superscript resourceVersion", b"GET /apis/v1/events?resourceVersion=%C2%B9 HTTP/1.1\r\nhost: x\r\n\r\n"),
]  # fmt: skip


def test_malformed_requests_on_the_socket_get_json_4xx(server: Running) -> None:
    from tests.test_http_fuzz import Failures, client_error, raw

    port = int(server.url.rsplit(":", 1)[1])
    fails = Failures()
    for name, data in RAW_CASES:
        answers = raw(port, data)
        fails.check(name, answers[0] if answers else None, client_error)
    fails.assert_none()
    assert server.http.get("/healthz").status_code == 200
