"""The API the web UI reads (trial columns with ``after``, summaries, importance, contour,
artifacts, dry runs with YAML lines), its login cookie, its static files and the
inference-service console's router sampling, on a real server."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import httpx

from hyperflow.api.deps import COOKIE
from hyperflow.handlers.console import quantile, read_router
from tests.hyperflow.conftest import Running, experiment
from tests.hyperflow.test_auth import secured  # noqa: F401  (fixture)
from tests.util import wait_until

NS = "/apis/v1/namespaces/default"


def _finished(server: Running, name: str) -> dict[str, Any]:
    def done() -> bool:
        obj = server.http.get(f"{NS}/experiments/{name}").json()
        return bool(obj["status"].get("completionTime"))

    wait_until(done, timeout=60)
    return server.http.get(f"{NS}/experiments/{name}").json()


def test_trial_columns_are_read_incrementally(server: Running, tmp_path: Path) -> None:
    body = experiment("cols", tmp_path, max_trials=5, parallel=2)
    assert server.http.post(f"{NS}/experiments", json=body).status_code == 201
    first = server.http.get(f"{NS}/experiments/cols/trialtable").json()
    assert first["after"] == -1
    assert first["parameters"] == [
        {"name": "x", "type": "double", "log": False, "min": 0.0, "max": 1.0, "step": None}
    ]
    assert first["objective"]["metrics"] == ["loss"]
    obj = _finished(server, "cols")
    table = server.http.get(f"{NS}/experiments/cols/trialtable").json()
    trials = table["trials"]
    assert trials["number"] == [0, 1, 2, 3, 4]
    assert table["finishedThrough"] == 4
    assert set(trials["phase"]) == {"Succeeded"}
    # Columns line up: each trial's loss is (x - 0.3)^2, as the trial printed it.
    for x, loss in zip(trials["params"]["x"], trials["metrics"]["loss"], strict=True):
        assert abs(loss - (x - 0.3) ** 2) < 1e-5
    best = min(trials["metrics"]["loss"])
    assert (
        obj["status"]["currentOptimalTrial"]["bestTrialName"]
        == trials["name"][trials["metrics"]["loss"].index(best)]
    )
    # After the last finished one: nothing more to read.
    again = server.http.get(f"{NS}/experiments/cols/trialtable?after=4").json()
    assert again["trials"]["number"] == [] and again["after"] == 4
    part = server.http.get(f"{NS}/experiments/cols/trialtable?after=2").json()
    assert part["trials"]["number"] == [3, 4]
    # Compressed when asked for (the browser always asks).
    raw = httpx.get(
        f"{server.url}{NS}/experiments/cols/trialtable", headers={"accept-encoding": "identity"}
    )
    assert "content-encoding" not in raw.headers
    for bad in ("-2", "x"):
        r = server.http.get(f"{NS}/experiments/cols/trialtable?after={bad}")
        assert r.status_code == 400 and r.json()["error"].startswith("invalid query after: ")
    # Curves, importance, contour, artifacts.
    curves = server.http.get(f"{NS}/experiments/cols/intermediatevalues").json()
    assert curves["number"] == [0, 1, 2, 3, 4] and curves["step"] == [0] * 5
    assert (
        server.http.get(f"{NS}/experiments/cols/intermediatevalues?metric=nope").status_code == 422
    )
    imp = server.http.get(f"{NS}/experiments/cols/importances?evaluator=mdi").json()
    assert imp["importances"] == [{"name": "x", "importance": 1.0}] and imp["trials"] == 5
    r = server.http.get(f"{NS}/experiments/cols/importances?evaluator=shap")
    assert r.status_code == 400 and "fanova" in r.json()["error"]
    r = server.http.get(f"{NS}/experiments/cols/contour?x=x&y=z")
    assert r.status_code == 422 and r.json()["details"][0]["path"] == "y"
    art = server.http.get(f"{NS}/experiments/cols/trials/{trials['name'][0]}/artifacts").json()
    assert art == {"mlflowRunId": None, "storageUris": [], "storageUri": None, "modelFormat": None}
    summaries = server.http.get("/apis/v1/experimentsummaries").json()["items"]
    assert [(s["name"], s["trials"], s["best"]) for s in summaries] == [
        ("cols", {"Succeeded": 5}, best)
    ]
    # The list is kept until the store changes, also by a writer outside the server (as
    # `experiment run` on the same store): seen by the next read.
    from tuner.store import Store

    outside = Store(server.plane.settings.store_url)
    try:
        body = experiment("outside", tmp_path)
        outside.create_experiment("default", "outside", body, str(tmp_path), "local")
    finally:
        outside.close()
    summaries = server.http.get("/apis/v1/experimentsummaries").json()["items"]
    assert [s["name"] for s in summaries] == ["cols", "outside"]


def test_a_dry_run_stores_nothing_and_yaml_errors_name_their_line(
    server: Running, tmp_path: Path
) -> None:
    body = experiment("dry", tmp_path)
    r = server.http.post(f"{NS}/experiments?dryRun=All", json=body)
    assert r.status_code == 200 and r.json()["spec"]["maxTrialCount"] == 4
    assert server.http.get(f"{NS}/experiments/dry").status_code == 404
    assert server.http.get(f"{NS}/experiments").json()["items"] == []
    assert server.http.post(f"{NS}/experiments?dryRun=Some", json=body).status_code == 400
    assert server.http.post(f"{NS}/experiments", json=body).status_code == 201
    assert server.http.post(f"{NS}/experiments?dryRun=All", json=body).status_code == 409
    text = (
        "apiVersion: kubeflow.org/v1beta1\n"
        "kind: Experiment\n"
        "metadata:\n"
        "  name: lines\n"
        "spec:\n"
        "  objective: {type: minimize, objectiveMetricName: loss}\n"
        "  algorithm: {algorithmName: random}\n"
        "  maxTrialCount: -3\n"
        "  parameters:\n"
        "    - name: x\n"
        "      parameterType: double\n"
        "      feasibleSpace: {min: '1', max: '0'}\n"
        "  trialTemplate: {command: [python, t.py]}\n"
    )
    r = server.http.post(
        f"{NS}/experiments?dryRun=All",
        content=text,
        headers={"content-type": "application/yaml"},
    )
    assert r.status_code == 422
    lines = {d["path"]: d.get("line") for d in r.json()["details"]}
    assert lines["spec.maxTrialCount"] == 8
    assert any(p.startswith("spec.parameters[0]") and line in (10, 12) for p, line in lines.items())
    # A YAML syntax error: its line as a detail too, for the editor to mark.
    broken = "kind: Experiment\nmetadata:\n  name: x\nspec:\n  a: 1\n b: 2\n"
    r = server.http.post(
        f"{NS}/experiments?dryRun=All",
        content=broken,
        headers={"content-type": "application/yaml"},
    )
    assert r.status_code == 400 and r.json()["error"].startswith("invalid YAML: ")
    [detail] = r.json()["details"]
    assert detail["line"] == 6 and detail["message"] == r.json()["error"], detail


def test_the_login_cookie_holds_exactly_what_its_token_grants(
    secured: tuple[Running, dict[str, str]],  # noqa: F811
) -> None:
    server, tokens = secured
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        session = browser.get("/ui/session").json()
        assert session == {"authenticated": False, "required": True}
        r = browser.post("/ui/login", json={"token": "hf_000000000000_wrongwrongwrongwrongwrong"})
        assert r.status_code == 401 and COOKIE not in browser.cookies
        # Malformed JSON is a 400, as to every other route with a body.
        r = browser.post(
            "/ui/login", content=b'{"token": ', headers={"content-type": "application/json"}
        )
        assert r.status_code == 400 and r.json()["error"].startswith("invalid JSON"), r.text
        r = browser.post("/ui/login", json={"token": tokens["a"]})
        assert r.status_code == 200 and r.json()["namespaces"] == ["a"]
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        # The cookie is the token: a's objects, not b's.
        assert browser.get("/apis/v1/namespaces/a/experiments/exp-a").status_code == 200
        assert browser.get("/apis/v1/namespaces/b/experiments/exp-b").status_code == 403
        assert browser.get("/apis/v1/namespaces/b/experiments/exp-b/trialtable").status_code == 403
        names = [s["name"] for s in browser.get("/apis/v1/experimentsummaries").json()["items"]]
        assert names == ["exp-a"]
        # A change with the cookie needs the UI's header (no cross-site form can add it).
        r = browser.delete("/apis/v1/namespaces/a/experiments/exp-a")
        assert r.status_code == 403 and "x-requested-with" in r.json()["error"]
        assert browser.get("/apis/v1/namespaces/a/experiments/exp-a").status_code == 200
        r = browser.delete(
            "/apis/v1/namespaces/a/experiments/exp-a", headers={"x-requested-with": "hyperflow-ui"}
        )
        assert r.status_code == 200, r.text
        # Revoking the token ends the login at once; logging out drops the cookie.
        token_id = tokens["a"].split("_")[1]
        from hyperflow.handlers.auth import LOCAL_ADMIN

        server.plane.tokens.revoke(LOCAL_ADMIN, token_id)
        assert browser.get("/apis/v1/namespaces/a/experiments").status_code == 401
        assert browser.get("/ui/session").json()["authenticated"] is False
        browser.post("/ui/logout")
        assert COOKIE not in browser.cookies


def test_pages_and_static_files(server: Running, tmp_path: Path) -> None:
    # The list's page carries its data; it is made again once that changes.
    first = server.http.get("/")
    assert server.http.get("/").content == first.content and "listed" not in first.text
    body = experiment("listed", tmp_path, max_trials=1, parallel=1)
    assert server.http.post(f"{NS}/experiments", json=body).status_code == 201
    assert '"name":"listed"' in server.http.get("/").text
    page = server.http.get("/experiments/default/anything")
    assert page.status_code == 200 and '<main id="main"' in page.text
    assert "/ui/static/plotly.min.js?v=" in page.text
    # The view's first API reads are fetched with its modules (the page's fetches reuse them).
    base = "/apis/v1/namespaces/default/experiments/anything"
    assert f'<link rel="preload" as="fetch" crossorigin href="{base}">' in page.text
    assert f'href="{base}/trialtable?after=-1"' in page.text
    assert 'rel="preload" as="fetch"' not in server.http.get("/create").text
    plotly = (resources.files("plotly") / "package_data" / "plotly.min.js").read_bytes()
    r = httpx.get(f"{server.url}/ui/static/plotly.min.js", headers={"accept-encoding": "gzip"})
    assert r.content == plotly and r.headers["content-encoding"] == "gzip"
    assert int(r.headers["content-length"]) < len(plotly) / 2
    again = httpx.get(
        f"{server.url}/ui/static/plotly.min.js", headers={"if-none-match": r.headers["etag"]}
    )
    assert again.status_code == 304
    for name in ("app.js", "style.css", "experiment.js"):
        assert server.http.get(f"/ui/static/{name}").status_code == 200
    for bad in ("nope.js", "..%2Froutes.py", "%2e%2e%2fassets.py"):
        r = server.http.get(f"/ui/static/{bad}")
        assert r.status_code == 404 and "error" in r.json()
    config = server.http.get("/ui/config").json()
    assert config["services"] is True and config["mlflowUi"] is None
    # The console's routes of a service that does not exist: a 404 (not a 500).
    r = server.http.get(f"{NS}/inferenceservices/x/requestmetrics")
    assert r.status_code == 404 and '"x" not found' in r.json()["error"]
    r = server.http.post(f"{NS}/inferenceservices/x/try", json={"inputs": []})
    assert r.status_code == 404


def test_router_samples_give_rates_and_quantiles() -> None:
    from serving.router import Router

    router = Router()
    before = read_router(router)
    assert before == {}
    for seconds in [0.002] * 50 + [0.02] * 45 + [0.4] * 5:
        router.metrics.observe("team", "iris", "r1", 200, seconds)
    router.metrics.observe("team", "iris", "r1", 503, 0.001)
    router.metrics.observe("default", "iris", "r1", 200, 0.001)
    samples = read_router(router)
    assert samples[("default", "iris")].requests == 1
    sample = samples[("team", "iris")]
    assert sample.requests == 101 and sample.errors == 1
    # 51 of 101 observations are <= 2.5 ms: the median is in the (1 ms, 2.5 ms] bucket.
    p50 = quantile(0.5, {}, sample.buckets)
    assert p50 is not None and 0.001 < p50 <= 0.0025
    p99 = quantile(0.99, {}, sample.buckets)
    assert p99 is not None and 0.25 < p99 <= 0.5
    assert quantile(0.5, sample.buckets, sample.buckets) is None


def test_where_mlflow_is_is_told_only_after_login(hyperflow_home: Path) -> None:
    """With tokens required, the UI's config before login leaves out the tracking URI (a
    file path on the server's host, say) and MLflow's UI; a logged-in caller gets them."""
    from hyperflow.handlers.auth import LOCAL_ADMIN
    from tests.hyperflow.conftest import serve_plane, server_settings

    with serve_plane(server_settings(hyperflow_home, track=True)) as server:
        _, token = server.plane.tokens.create(LOCAL_ADMIN, ["a"], admin=False)
        with httpx.Client(base_url=server.url, timeout=30) as browser:
            before = browser.get("/ui/config").json()
            assert before["trackingUri"] is None and before["mlflowUi"] is None
            assert "mlflow.db" not in browser.get("/").text
            after = browser.get("/ui/config", headers={"authorization": f"Bearer {token}"})
            assert after.json()["trackingUri"].endswith("mlflow.db")


def test_the_ui_config_carries_no_credentials() -> None:
    """/ui/config is readable before login: a tracking URI's user and password stay out."""
    from hyperflow.ui.routes import _without_credentials

    assert _without_credentials("http://alice:s3cret@mlflow:5000/") == "http://mlflow:5000/"
    assert (
        _without_credentials("postgresql+psycopg://u:pw@db:5432/mlflow")
        == "postgresql+psycopg://db:5432/mlflow"
    )
    assert _without_credentials("sqlite:////home/me/mlflow.db") == "sqlite:////home/me/mlflow.db"
    assert _without_credentials(None) is None
