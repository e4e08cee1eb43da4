"""Tokens and namespaces: 401 without or with a bad token, 403 for another namespace,
and a walk over every path of the OpenAPI document with a token of namespace a against
namespace b."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hyperflow.handlers.auth import LOCAL_ADMIN
from tests.hyperflow.conftest import (
    V1_BODY,
    V2_BODY,
    Running,
    experiment,
    isvc,
    serve_plane,
    server_settings,
    wait_ready,
)
from tests.util import free_port, hyperflow_cmd, run_hyperflow, wait_until


@pytest.fixture
def secured(hyperflow_home: Path, tmp_path: Path) -> Iterator[tuple[Running, dict[str, str]]]:
    """A server with tokens for namespace a, namespace b and an admin, and one experiment
    (with a finished trial) in each of a and b."""
    with serve_plane(server_settings(hyperflow_home)) as server:
        tokens = {}
        for key, namespaces, admin in (
            ("a", ["a"], False),
            ("b", ["b"], False),
            ("admin", [], True),
        ):
            _, tokens[key] = server.plane.tokens.create(LOCAL_ADMIN, namespaces, admin=admin)
        for ns in ("a", "b"):
            r = server.http.post(
                f"/apis/v1/namespaces/{ns}/experiments",
                json=experiment(f"exp-{ns}", tmp_path, max_trials=1, parallel=1),
                headers={"authorization": f"Bearer {tokens[ns]}"},
            )
            assert r.status_code == 201, r.text

        def finished() -> bool:
            r = server.http.get(
                "/apis/v1/experiments", headers={"authorization": f"Bearer {tokens['admin']}"}
            )
            return all(i["status"].get("trialsSucceeded") == 1 for i in r.json()["items"])

        wait_until(finished, timeout=60)
        yield server, tokens


def _auth(token: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"} if token else {}


def test_no_token_or_a_bad_one_is_401_once_tokens_exist(
    secured: tuple[Running, dict[str, str]],
) -> None:
    server, tokens = secured
    for headers in ({}, _auth("hf_000000000000_" + "x" * 43), {"authorization": "Basic abc"}):
        r = server.http.get("/apis/v1/namespaces/a/experiments", headers=headers)
        assert r.status_code == 401 and "error" in r.json()
    assert server.http.get("/metrics").status_code == 401
    assert server.http.get("/healthz").status_code == 200  # probes stay open
    r = server.http.get("/apis/v1/namespaces/a/experiments", headers=_auth(tokens["a"]))
    assert [i["metadata"]["name"] for i in r.json()["items"]] == ["exp-a"]


def test_admin_sees_every_namespace_others_only_theirs(
    secured: tuple[Running, dict[str, str]],
) -> None:
    server, tokens = secured
    every = server.http.get("/apis/v1/experiments", headers=_auth(tokens["admin"])).json()
    assert sorted(i["metadata"]["name"] for i in every["items"]) == ["exp-a", "exp-b"]
    mine = server.http.get("/apis/v1/experiments", headers=_auth(tokens["a"])).json()
    assert [i["metadata"]["name"] for i in mine["items"]] == ["exp-a"]
    events = server.http.get("/apis/v1/events", headers=_auth(tokens["a"])).json()["items"]
    assert events and {e["namespace"] for e in events} == {"a"}


def _concrete(path: str, names: dict[str, str]) -> str:
    for key, value in names.items():
        path = path.replace("{" + key + "}", value)
    return path


def _body(method: str, path: str, tmp: Path) -> dict[str, Any]:
    if method == "post" and path.endswith("/observations"):
        return {"json": {"observations": [{"name": "loss", "value": 1.0}]}}
    if method == "post":
        return {"json": experiment("intruder", tmp, namespace="b")}
    if method == "patch":
        return {
            "content": json.dumps({"spec": {"maxTrialCount": 5}}),
            "headers": {"content-type": "application/merge-patch+json"},
        }
    return {}


def test_a_token_of_namespace_a_can_do_nothing_in_namespace_b(
    secured: tuple[Running, dict[str, str]], tmp_path: Path
) -> None:
    server, tokens = secured
    trial = server.http.get(
        "/apis/v1/namespaces/b/experiments/exp-b/trials", headers=_auth(tokens["b"])
    ).json()["items"][0]["metadata"]["name"]
    names = {"namespace": "b", "name": "exp-b", "trial": trial}
    doc = server.http.get("/openapi.json").json()
    walked = 0
    templates = set()
    for template, operations in doc["paths"].items():
        if "{namespace}" not in template:
            continue
        path = _concrete(template, names)
        for method in operations:
            kw = _body(method, template, tmp_path)
            headers = {**kw.pop("headers", {}), **_auth(tokens["a"])}
            params = {"watch": "true"} if template.endswith("/events") else None
            r = server.http.request(method.upper(), path, headers=headers, params=params, **kw)
            # The push route takes only a trial's own push token: an API token is no such.
            expected = 401 if template.endswith("/observations") else 403
            assert r.status_code == expected, (method, path, r.status_code, r.text)
            assert "exp-b" not in r.text or "error" in r.json()
            if method in ("post", "put", "patch"):
                # A malformed body is not even read: the namespace (or the push token) is
                # checked first.
                r = server.http.request(
                    method.upper(),
                    path,
                    content=b"{not json",
                    headers={**_auth(tokens["a"]), "content-type": "application/json"},
                )
                assert r.status_code == expected, (method, path, r.status_code, r.text)
            walked += 1
            templates.add(
                f"{method.upper()} {template.removeprefix('/apis/v1/namespaces/{namespace}/')}"
            )
    assert walked >= 10
    # The walk covers every resource, inference services included (a new route is walked
    # as soon as it exists).
    assert {
        "POST inferenceservices",
        "GET inferenceservices",
        "GET inferenceservices/{name}",
        "PUT inferenceservices/{name}",
        "DELETE inferenceservices/{name}",
        "POST experiments/{name}/deploy-best",
        "POST pipelineruns",
        "GET pipelineruns",
        "GET pipelineruns/{name}",
        "DELETE pipelineruns/{name}",
        "GET pipelineruns/{name}/log",
    } <= templates, templates
    # Nothing happened to b's objects.
    r = server.http.get("/apis/v1/namespaces/b/experiments/exp-b", headers=_auth(tokens["b"]))
    assert r.status_code == 200 and r.json()["spec"]["maxTrialCount"] == 1
    r = server.http.get(
        "/apis/v1/namespaces/b/experiments/intruder", headers=_auth(tokens["admin"])
    )
    assert r.status_code == 404


def test_a_watch_of_every_namespace_shows_only_the_tokens_own(
    secured: tuple[Running, dict[str, str]], tmp_path: Path
) -> None:
    server, tokens = secured
    version = server.http.get("/apis/v1/events", headers=_auth(tokens["admin"])).json()["metadata"][
        "resourceVersion"
    ]
    seen: list[dict[str, Any]] = []

    def watch() -> None:
        with httpx.stream(
            "GET",
            f"{server.url}/apis/v1/events",
            params={"watch": "true", "resourceVersion": version},
            headers=_auth(tokens["a"]),
            timeout=httpx.Timeout(10, read=3),
        ) as response:
            try:
                for line in response.iter_lines():
                    if line.startswith("data:"):
                        seen.append(json.loads(line[5:]))
                        if seen[-1]["name"] == "exp-a" and seen[-1]["type"] == "DELETED":
                            return
            except httpx.ReadTimeout:
                return

    thread = threading.Thread(target=watch)
    thread.start()
    for ns in ("b", "a"):
        r = server.http.delete(
            f"/apis/v1/namespaces/{ns}/experiments/exp-{ns}", headers=_auth(tokens[ns])
        )
        assert r.status_code == 200
    thread.join(30)
    assert [(e["type"], e["name"]) for e in seen] == [("DELETED", "exp-a")]


def test_revoked_tokens_are_refused_at_once(secured: tuple[Running, dict[str, str]]) -> None:
    server, tokens = secured
    token_id = tokens["a"].split("_")[1]
    server.plane.tokens.revoke(LOCAL_ADMIN, token_id)
    r = server.http.get("/apis/v1/namespaces/a/experiments", headers=_auth(tokens["a"]))
    assert r.status_code == 401


def test_token_commands_print_once_and_store_only_a_hash(hyperflow_home: Path) -> None:
    created = run_hyperflow("token", "create", "--namespace", "team-a", "--namespace", "team-b")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("hf_") and "shown only now" in created.stderr
    token_id = token.split("_")[1]
    listed = run_hyperflow("token", "list")
    assert token_id in listed.stdout and "team-a,team-b" in listed.stdout
    assert token not in listed.stdout
    db = (hyperflow_home / "hyperflow.db").read_bytes()
    assert token.split("_", 2)[2].encode() not in db and token_id.encode() in db
    day = run_hyperflow("token", "create", "-n", "team-a", "--duration", "24h")
    assert day.returncode == 0 and "it expires at 20" in day.stderr, day.stderr
    listed = run_hyperflow("token", "list").stdout
    assert "EXPIRES" in listed and "never" in listed, listed
    assert day.stdout.strip().split("_")[1] in listed
    for bad in ("soon", "24", "1e300h"):  # no duration, no unit (as kubectl's), past 100 years
        refused = run_hyperflow("token", "create", "-n", "team-a", "--duration", bad)
        assert refused.returncode == 1 and "duration" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    bad = run_hyperflow("token", "create", "--namespace", "Bad_NS")
    assert bad.returncode == 1 and "namespaces[0]" in bad.stderr
    assert run_hyperflow("token", "revoke", token_id).returncode == 0
    assert token_id not in run_hyperflow("token", "list").stdout
    assert run_hyperflow("token", "revoke", token_id).returncode == 1


def test_a_token_with_a_duration_is_refused_once_it_expires(tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    from hyperflow.handlers.auth import Tokens
    from hyperflow.handlers.errors import Invalid, Unauthorized
    from hyperflow.store.schema import upgrade_store
    from hyperflow.store.tokens import TokenStore

    engine = create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade_store(engine)
    now = [1_000_000.0]
    tokens = Tokens(TokenStore(engine), loopback=True, clock=lambda: now[0])
    tokens.TTL = 0.0  # the store is asked every time: only the clock moves here
    record, secret = tokens.create(LOCAL_ADMIN, ["a"], duration=3600)
    forever, other = tokens.create(LOCAL_ADMIN, ["a"])
    assert (record.expires_at, forever.expires_at) == (now[0] + 3600, None)
    caller = tokens.authenticate(secret)
    assert caller.namespaces == {"a"} and tokens.still_valid(caller)
    now[0] += 3600
    with pytest.raises(Unauthorized, match=f"token {record.id} has expired"):
        tokens.authenticate(secret)
    assert not tokens.still_valid(caller)  # an open watch ends too
    assert tokens.authenticate(other).name == forever.id
    assert tokens.required()  # an expired token still means the server wants tokens
    for bad in (0.0, -5.0, float("inf"), 1e300, 101 * 365.25 * 86400):
        with pytest.raises(Invalid):
            tokens.create(LOCAL_ADMIN, ["a"], duration=bad)
    engine.dispose()


def test_a_non_loopback_bind_refuses_to_start_without_tokens(hyperflow_home: Path) -> None:
    result = subprocess.run(
        hyperflow_cmd("server", "--host", "0.0.0.0", "--port", "1", "--serving-port", "2"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "needs API tokens" in result.stderr and "hyperflow token create" in result.stderr


def test_an_api_port_taken_stops_the_start_in_one_line(hyperflow_home: Path) -> None:
    # uvicorn logged its raw error after the start, and the server said its services stopped.
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = ["server", "--port", str(port), "--serving-port", str(free_port())]
        result = subprocess.run(hyperflow_cmd(*command), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert (
        f"error: cannot serve the API on 127.0.0.1:{port}: Address already in use "
        "(choose another --port)"
    ) in result.stderr
    assert "Errno" not in result.stderr and "stopped" not in result.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "127.0.0.1"])
def test_the_serving_port_wants_a_token_of_the_services_namespace_once_tokens_exist(
    hyperflow_home: Path, iris_models: Path, host: str
) -> None:
    """A real server bound to every address, or to loopback (where other local users are
    kept out too: it answered them without a token), tokens made first, a real service
    ``m`` in namespace a; requests from here reach it on loopback."""
    from hyperflow.plane import build

    settings = server_settings(hyperflow_home, host=host)
    plane = build(settings)
    try:
        _, token_a = plane.tokens.create(LOCAL_ADMIN, ["a"])
        _, token_default = plane.tokens.create(LOCAL_ADMIN, ["default"])
        _, admin = plane.tokens.create(LOCAL_ADMIN, [], admin=True)
    finally:
        plane.close()
    with serve_plane(settings) as server:
        server.http.headers["authorization"] = f"Bearer {token_a}"
        r = server.http.post(
            "/apis/v1/namespaces/a/inferenceservices", json=isvc("m", iris_models, namespace="a")
        )
        assert r.status_code == 201, r.text
        wait_ready(server.http, "m", "a")
        # status.url: where clients elsewhere reach it (this machine's name on a wildcard
        # bind, as KServe's external URL); status.address.url: from this machine.
        status = server.http.get("/apis/v1/namespaces/a/inferenceservices/m").json()["status"]
        machine = socket.gethostname() if host == "0.0.0.0" else "127.0.0.1"
        public = f"http://{machine}:{settings.serving_port}/serving/a/m"
        assert status["url"] == f"{public}/v2/models/m"
        assert status["components"]["predictor"]["url"] == public
        assert status["address"]["url"] == f"http://127.0.0.1:{settings.serving_port}/serving/a/m"
        infer, predict = "/v2/models/m/infer", "/v1/models/m:predict"
        calls = [
            (infer, None, 401),
            (infer, "hf_000000000000_" + "x" * 43, 401),
            # The plain paths are the default namespace's services.
            (infer, token_a, 403),
            (predict, token_a, 403),
            ("/v1/models", token_a, 403),
            (infer, token_default, 404),  # let through: default has no service m
            # KServe's path template names the namespace.
            (f"/serving/a/m{infer}", token_a, 200),
            (f"/serving/a/m{predict}", token_a, 200),
            (f"/serving/b/m{infer}", token_a, 403),
            (f"/serving/a/m{infer}", token_default, 403),
            (f"/serving/a/m{infer}", None, 401),
            (f"/serving/a/m{infer}", admin, 200),
            (f"/serving/b/m{infer}", admin, 404),
            # The router's own answers: any valid token; the probes: none.
            ("/metrics", token_a, 200),
            ("/metrics", None, 401),
            ("/v2/health/ready", None, 200),
            ("/v2/health/live", None, 200),
        ]
        got = []
        with httpx.Client(base_url=f"http://127.0.0.1:{settings.serving_port}", timeout=60) as c:
            for path, token, _ in calls:
                if path.endswith("/infer"):
                    r = c.post(path, json=V2_BODY, headers=_auth(token))
                elif path.endswith(":predict"):
                    r = c.post(path, json=V1_BODY, headers=_auth(token))
                else:
                    r = c.get(path, headers=_auth(token))
                got.append(r.status_code)
                if r.status_code >= 400:
                    assert "error" in r.json(), (path, r.text)
                elif path.endswith("/infer"):
                    assert r.json()["outputs"][0]["data"] == [2], r.text
        assert got == [want for _, _, want in calls], list(zip(calls, got, strict=True))


def test_serving_url_is_what_services_status_urls_show() -> None:
    from hyperflow.settings import ServerSettings

    given = ServerSettings(serving_url="https://models.example.com/", serving_port=9000)
    assert given.public_serving_url() == "https://models.example.com"
    assert ServerSettings(serving_port=9000).public_serving_url() == "http://127.0.0.1:9000"
    assert ServerSettings(host="::1", serving_port=9000).public_serving_url() == (
        "http://[::1]:9000"
    )


def test_serving_url_must_be_http(hyperflow_home: Path) -> None:
    # (--max-running-trials 0 stops it too, with another message, if the check were gone)
    result = subprocess.run(
        hyperflow_cmd("server", "--serving-url", "models.example.com", "--max-running-trials", "0"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--serving-url must start with http:// or https://" in result.stderr


def test_a_token_revoked_while_it_watches_gets_nothing_more(
    secured: tuple[Running, dict[str, str]], tmp_path: Path
) -> None:
    """README: revocation takes effect at once. An open event stream of the revoked token
    ended with the next event, not after sending it (it went on for ever)."""
    server, tokens = secured
    _, watcher = server.plane.tokens.create(LOCAL_ADMIN, ["b"])
    url = f"{server.url}/apis/v1/namespaces/b/events?watch=true"
    lines: list[str] = []
    with httpx.stream("GET", url, headers=_auth(watcher), timeout=30) as stream:
        chunks = stream.iter_lines()
        assert next(chunks) == ": watching"
        token_id = watcher.split("_")[1]
        server.plane.tokens.revoke(LOCAL_ADMIN, token_id)
        created = server.http.post(
            "/apis/v1/namespaces/b/experiments",
            json=experiment("after-revoke", tmp_path, max_trials=1, parallel=1),
            headers=_auth(tokens["b"]),
        )
        assert created.status_code == 201
        lines.extend(chunks)  # ends: the server closed the stream at that event
    assert not any("after-revoke" in line for line in lines), lines
    assert server.http.get(url, headers=_auth(watcher)).status_code == 401
