"""The suggestion service over HTTP: protocol and errors in-process (TestClient), the
transport and the restart/409/restore path against a real ``hyperflow suggestion serve``."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

with warnings.catch_warnings():
    # starlette asks for `httpx2`, which is not installed; httpx still works.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from tests.tuner.test_suggestion_algorithms import ALL_CELLS, GRID, cell
from tests.tuner.test_suggestion_conformance import make_experiment
from tests.util import free_port, hyperflow_cmd, running, wait_http_ok
from tuner.suggestion import HttpSuggestionClient
from tuner.suggestion.base import InvalidRequest, NotSupported, UnknownExperiment
from tuner.suggestion.http import create_app, serve
from tuner.suggestion.wire import PREFIX, result_to_json
from tuner.types import TrialPhase, TrialResult

EXP = f"{PREFIX}/experiments/ns/exp"


@pytest.fixture
def api() -> Iterator[TestClient]:
    with TestClient(create_app(max_body=64 * 1024)) as client:
        yield client


def restore_body(algorithm: str = "random") -> dict[str, object]:
    return {"experiment": make_experiment(algorithm).to_dict(), "trials": []}


def test_suggest_report_roundtrip_in_process(api: TestClient) -> None:
    assert api.post(f"{EXP}/restore", json=restore_body()).json() == {"known": 0, "told": 0}
    r = api.post(f"{EXP}/suggest", json={"count": 2, "known": 0, "told": 0})
    assert r.status_code == 200
    body = r.json()
    assert (body["known"], body["told"]) == (2, 0)
    s = body["suggestions"][0]
    assert isinstance(s["assignments"]["n"], int) and isinstance(s["assignments"]["x"], float)
    result = TrialResult(s["trialName"], s["assignments"], TrialPhase.SUCCEEDED, 0.5)
    r = api.post(f"{EXP}/report", json={"result": result_to_json(result), "known": 2, "told": 0})
    assert r.json() == {"known": 2, "told": 1}
    r = api.post(
        f"{EXP}/intermediate",
        json={
            "trialName": body["suggestions"][1]["trialName"],
            "step": 1,
            "value": 0.3,
            "known": 2,
            "told": 1,
        },
    )
    assert r.json() == {"prune": False}
    assert api.delete(f"{PREFIX}/experiments/other/exp").status_code == 200  # not this one
    r = api.post(f"{EXP}/suggest", json={"count": 1, "known": 2, "told": 1})
    assert r.status_code == 200
    assert api.delete(EXP).json() == {"closed": "ns/exp"}
    r = api.post(f"{EXP}/suggest", json={"count": 1, "known": 3, "told": 1})
    assert r.status_code == 409 and r.json()["reason"] == "restore"


def test_unknown_experiment_and_count_mismatch_answer_409(api: TestClient) -> None:
    r = api.post(f"{EXP}/suggest", json={"count": 1, "known": 0, "told": 0})
    assert r.status_code == 409
    assert "not known to this suggestion service" in r.json()["error"]
    api.post(f"{EXP}/restore", json=restore_body())
    r = api.post(f"{EXP}/suggest", json={"count": 1, "known": 3, "told": 0})
    assert r.status_code == 409
    assert "the service knows 0 trials" in r.json()["error"]


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        (f"{EXP}/suggest", b"not json", 400, "the body must be JSON"),
        (f"{EXP}/suggest", b"[1, 2]", 400, "the body must be a JSON object"),
        (
            f"{EXP}/suggest",
            b'{"count": -1, "known": 0, "told": 0}',
            400,
            "'count' must be an integer >= 0",
        ),
        (
            f"{EXP}/suggest",
            b'{"count": "2", "known": 0, "told": 0}',
            400,
            "'count' must be an integer",
        ),
        (f"{EXP}/suggest", b'{"count": 1}', 400, "'known' must be an integer"),
        (
            f"{EXP}/report",
            b'{"known": 0, "told": 0, "result": {"phase": "Succeeded"}}',
            400,
            "a trial needs 'trialName'",
        ),
        (
            f"{EXP}/report",
            b'{"known": 0, "told": 0, "result": {"trialName": "t", "phase": "Exploded"}}',
            400,
            "malformed trial",
        ),
        (
            f"{EXP}/report",
            b'{"known": 0, "told": 0, "result": {"trialName": "t", "phase": "Running", "assignments": {}}}',
            400,
            "has not finished",
        ),
        (
            f"{EXP}/intermediate",
            b'{"known": 0, "told": 0, "trialName": "t", "step": 1, "value": 1}',
            404,
            "unknown trial",
        ),
        (
            f"{EXP}/intermediate",
            b'{"known": 0, "told": 0, "trialName": "t", "step": 1, "value": "x"}',
            400,
            "'value' must be a number",
        ),
        (
            f"{EXP}/restore",
            b'{"experiment": {"metadata": {"name": "exp"}}}',
            422,
            "invalid experiment",
        ),
        (f"{PREFIX}/experiments/ns/other/restore", None, 400, "differ from the URL"),
        (f"{PREFIX}/nowhere", b"{}", 404, "Not Found"),
    ],
)
def test_bad_requests_get_4xx_json(
    api: TestClient, path: str, body: bytes | None, status: int, error: str
) -> None:
    api.post(f"{EXP}/restore", json=restore_body())
    if body is None:
        r = api.post(path, json=restore_body())
    else:
        r = api.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert error in r.json()["error"]


def test_a_refused_report_changes_nothing(api: TestClient) -> None:
    # It used to count the refused trial as known: every later call was a 409 "restore".
    api.post(f"{EXP}/restore", json=restore_body())
    body = api.post(f"{EXP}/suggest", json={"count": 1, "known": 0, "told": 0}).json()
    s = body["suggestions"][0]
    outside = TrialResult("other", {**s["assignments"], "x": 99.0}, TrialPhase.SUCCEEDED, 1.0)
    r = api.post(f"{EXP}/report", json={"result": result_to_json(outside), "known": 1, "told": 0})
    assert r.status_code == 400 and "outside the search space" in r.json()["error"]
    good = TrialResult(s["trialName"], s["assignments"], TrialPhase.SUCCEEDED, 0.5)
    r = api.post(f"{EXP}/report", json={"result": result_to_json(good), "known": 1, "told": 0})
    assert r.status_code == 200, r.text
    assert r.json() == {"known": 1, "told": 1}


def test_bodies_must_be_json(api: TestClient) -> None:
    # A text/plain POST needs no CORS preflight: a web page could send it to loopback.
    for content_type in ("text/plain", None):
        headers = {"content-type": content_type} if content_type else {}
        r = api.post(f"{EXP}/restore", content=b'{"trials": []}', headers=headers)
        assert r.status_code == 415, r.text
        assert "application/json" in r.json()["error"]


def test_unsupported_and_invalid_algorithms_are_4xx(api: TestClient) -> None:
    body = {
        "experiment": make_experiment(
            "pbt",
            {"suggestion_trial_dir": "/d", "n_population": "5", "truncation_threshold": "0.2"},
        ).to_dict(),
        "trials": [],
    }
    r = api.post(f"{EXP}/restore", json=body)
    assert r.status_code == 422 and "pbt is not supported" in r.json()["error"]
    r = api.post(
        f"{EXP}/restore", json={**body, "experiment": make_experiment("tpe", {"x": "1"}).to_dict()}
    )
    assert r.status_code == 400 and "unknown setting 'x' for tpe" in r.json()["error"]


def test_body_limit_and_token() -> None:
    with TestClient(create_app(token="s3cret", max_body=1024)) as api:
        assert api.get(f"{PREFIX}/healthz").status_code == 200  # readiness stays open
        r = api.get(f"{PREFIX}/algorithms")
        assert r.status_code == 401 and r.json() == {"error": "missing or wrong bearer token"}
        auth = {"Authorization": "Bearer s3cret"}
        algorithms = api.get(f"{PREFIX}/algorithms", headers=auth).json()
        assert (
            algorithms["tpe"]["sampler"] == "TPESampler" and algorithms["pbt"]["supported"] is False
        )
        r = api.post(f"{EXP}/restore", content=b"x" * 2000, headers=auth)
        assert r.status_code == 413 and "over 1024 bytes" in r.json()["error"]

        def chunks() -> Iterator[bytes]:  # no content-length: counted while streaming
            yield b"x" * 600
            yield b"x" * 600

        r = api.post(f"{EXP}/restore", content=chunks(), headers=auth)
        assert r.status_code == 413


def test_serve_refuses_non_loopback_without_token() -> None:
    with pytest.raises(SystemExit, match="without a token"):
        serve("0.0.0.0", free_port(), None)


def test_real_service_restart_is_recovered_through_restore() -> None:
    """Grid over a real service process: restart it mid-experiment; the client gets 409,
    re-sends the history and carries on; every combination is still suggested once."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    experiment = make_experiment("grid", parameters=GRID)
    history: dict[str, TrialResult] = {}
    client = HttpSuggestionClient(url, history=lambda name: list(history.values()))
    seen: list[tuple[object, ...]] = []
    try:
        with running(hyperflow_cmd("suggestion", "serve", "--port", str(port))) as proc:
            wait_http_ok(f"{url}{PREFIX}/healthz", proc=proc)
            client.restore(experiment, [])
            batch = client.suggest(experiment, 6)
            for s in batch:
                history[s.trial_name] = TrialResult(s.trial_name, s.assignments, TrialPhase.RUNNING)
            for s in batch[:4]:
                result = TrialResult(s.trial_name, s.assignments, TrialPhase.SUCCEEDED, 1.0)
                history[s.trial_name] = result  # the controller stores before it reports
                client.report(experiment, result)
            assert client.report_intermediate(experiment, batch[4].trial_name, 1, 0.5) is False
            seen += [cell(s.assignments) for s in batch]
        # the service is gone: calls fail clearly
        with pytest.raises(Exception, match="unreachable"):
            client.suggest(experiment, 1)

        with running(hyperflow_cmd("suggestion", "serve", "--port", str(port))) as proc:
            wait_http_ok(f"{url}{PREFIX}/healthz", proc=proc)
            # a pending trial from before the restart finishes: 409 -> restore -> retried
            done = TrialResult(batch[5].trial_name, batch[5].assignments, TrialPhase.SUCCEEDED, 2.0)
            history[done.trial_name] = done
            client.report(experiment, done)
            while more := client.suggest(experiment, 5):
                seen += [cell(s.assignments) for s in more]
            assert len(seen) == 18 and set(seen) == ALL_CELLS
            client.close("ns", "exp")
            # a client without history cannot rebuild an experiment that has trials
            blind = HttpSuggestionClient(url)
            blind._counts["ns/exp"] = (3, 1)
            with pytest.raises(UnknownExperiment):
                blind.suggest(experiment, 1)
            # but a fresh experiment needs no history: 409 -> empty restore -> suggestions
            fresh = make_experiment("tpe", name="fresh")
            assert len(blind.suggest(fresh, 2)) == 2
            with pytest.raises(NotSupported):
                blind.suggest(
                    make_experiment(
                        "pbt",
                        {
                            "suggestion_trial_dir": "/d",
                            "n_population": "5",
                            "truncation_threshold": "0",
                        },
                        name="p",
                    ),
                    1,
                )
            with pytest.raises(InvalidRequest):
                blind.report(
                    fresh, TrialResult("fresh-zzzzzzzz", {"x": 5.0}, TrialPhase.SUCCEEDED, 1.0)
                )
    finally:
        client.shutdown()


def test_serve_says_where_it_listens_and_when_it_stopped() -> None:
    import signal
    import subprocess

    port = free_port()
    args = hyperflow_cmd("suggestion", "serve", "--port", str(port))
    with running(args, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line == f"hyperflow suggestion service on http://127.0.0.1:{port}"
        wait_http_ok(f"http://127.0.0.1:{port}{PREFIX}/healthz", proc=proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == -signal.SIGTERM  # uvicorn re-raises it, as a server does
        assert proc.stdout.read().strip() == "hyperflow suggestion service: stopped"
