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

from tests.hyperflow.conftest import Running, experiment

EXAMPLES = 25  # per operation and mode: the whole run stays within about a minute


@pytest.mark.timeout(600)
def test_fuzz_every_operation(server: Running, tmp_path: Path) -> None:
    # Something for the generated requests to find: an experiment with finished trials.
    r = server.http.post(
        "/apis/v1/namespaces/default/experiments",
        json=experiment("fuzzed", tmp_path, max_trials=2, parallel=2),
    )
    assert r.status_code == 201
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    problems: list[str] = []
    statuses: dict[int, int] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14
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
