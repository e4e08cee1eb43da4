"""Tokens and namespaces: 401 without or with a bad token, 403 for another namespace,
and a walk over every path of the OpenAPI document with a token of namespace a against
namespace b."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hyperflow.handlers.auth import LOCAL_ADMIN
from hyperflow.server import TokenGate
from tests.hyperflow.conftest import Running, experiment, serve_plane, server_settings
from tests.util import hyperflow_cmd, run_hyperflow, wait_until


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
            walked += 1
            templates.add(template)
    assert walked >= 10
    # Every resource's routes, pipeline runs too.
    assert {
        "/apis/v1/namespaces/{namespace}/pipelineruns",
        "/apis/v1/namespaces/{namespace}/pipelineruns/{name}",
        "/apis/v1/namespaces/{namespace}/pipelineruns/{name}/log",
    } <= templates
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
    bad = run_hyperflow("token", "create", "--namespace", "Bad_NS")
    assert bad.returncode == 1 and "namespaces[0]" in bad.stderr
    assert run_hyperflow("token", "revoke", token_id).returncode == 0
    assert token_id not in run_hyperflow("token", "list").stdout
    assert run_hyperflow("token", "revoke", token_id).returncode == 1


def test_a_non_loopback_bind_refuses_to_start_without_tokens(hyperflow_home: Path) -> None:
    result = subprocess.run(
        hyperflow_cmd("server", "--host", "0.0.0.0", "--port", "1", "--serving-port", "2"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "needs API tokens" in result.stderr and "hyperflow token create" in result.stderr


def test_the_serving_port_on_a_non_loopback_bind_wants_a_token(hyperflow_home: Path) -> None:
    from hyperflow.plane import build

    plane = build(server_settings(hyperflow_home, host="0.0.0.0"))
    _, token = plane.tokens.create(LOCAL_ADMIN, ["a"])

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def calls() -> list[int]:
        transport = httpx.ASGITransport(app=TokenGate(app, plane))
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
            return [
                (await c.get("/v2/models/m")).status_code,
                (await c.get("/v2/models/m", headers=_auth(token))).status_code,
                (await c.get("/v2/health/ready")).status_code,
            ]

    try:
        assert asyncio.run(calls()) == [401, 200, 200]
    finally:
        plane.close()
