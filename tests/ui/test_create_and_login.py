"""Create from YAML with field errors shown before submit; login with a token: the page
shows only the token's namespaces, and the cookie is out of the page's reach."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hyperflow.handlers.auth import LOCAL_ADMIN
from tests.hyperflow.conftest import Running, serve_plane, server_settings
from tests.ui.conftest import Console, Site, experiment, layout_problems, wait_finished

BAD = """apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata:
  name: typed-in
spec:
  objective:
    type: minimise
    objectiveMetricName: loss
  algorithm:
    algorithmName: random
  maxTrialCount: 3
  parallelTrialCount: 1
  parameters:
    - name: x
      parameterType: double
      feasibleSpace: {min: "0", max: "1"}
  trialTemplate:
    trialParameters:
      - {name: x, reference: x}
    command: [python3, -c, "import sys; print(f'loss={float(sys.argv[1]) ** 2}')", "${trialParameters.x}"]
"""


def test_create_shows_field_errors_before_submit(page: Any, site: Site, console: Console) -> None:
    console.allow("status of 422")  # the dry runs of the invalid text
    console.allow("status of 400")  # and of the text that is not YAML
    page.goto(f"{site.url}/create")
    page.fill("#create-yaml", BAD)
    page.wait_for_selector("#create-problems li")
    problem = page.locator('#create-problems li[data-path="spec.objective.type"]')
    assert "line 7" in problem.inner_text()
    assert page.is_disabled("#create-submit")
    # The gutter marks the line; the button selects it in the editor.
    assert page.inner_text(".gutter .bad") == "7"
    problem.locator("button").click()
    selected = page.evaluate(
        "() => { const t = document.querySelector('#create-yaml'); return t.value.slice(t.selectionStart, t.selectionEnd); }"
    )
    assert selected.strip() == "type: minimise"
    # Nothing was created by validating.
    assert (
        site.server.http.get("/apis/v1/namespaces/default/experiments/typed-in").status_code == 404
    )
    # A misspelt kind: said once, its line marked. A YAML syntax error: its line marked.
    page.fill("#create-yaml", BAD.replace("kind: Experiment", "kind: Experimnt"))
    page.wait_for_selector('#create-problems li[data-path="kind"]')
    kind = page.inner_text('#create-problems li[data-path="kind"]')
    assert kind.startswith("kind line ") and "Experimnt cannot be created here" in kind, kind
    assert "kind Experimnt" not in kind
    page.fill(
        "#create-yaml", BAD.replace("minimise", "minimize").replace("  objective", " objective", 1)
    )
    page.wait_for_function(
        "() => document.querySelector('#create-result').textContent.includes('invalid YAML')"
    )
    said = re.search(r"at line (\d+)", page.inner_text("#create-result"))
    assert said is not None and page.inner_text(".gutter .bad") == said.group(1)
    page.fill("#create-yaml", BAD.replace("minimise", "minimize"))
    page.wait_for_selector(".ok-line")
    assert "Valid Experiment typed-in in namespace default" in page.inner_text("#create-result")
    page.click("#create-submit")
    page.wait_for_url(f"{site.url}/experiments/default/typed-in")
    page.wait_for_selector("#trials .vt-body .vt-row")
    obj = wait_finished(site.server, "default", "typed-in")
    assert obj["status"]["trialsSucceeded"] == 3, obj["status"]
    page.wait_for_function(
        "() => document.querySelector('#shown-count')?.textContent === '3 of 3 shown'"
    )


def test_an_upload_fills_the_editor(page: Any, site: Site, tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text(BAD.replace("minimise", "minimize").replace("typed-in", "uploaded"))
    page.goto(f"{site.url}/create")
    page.set_input_files("#create-file", str(path))
    page.wait_for_selector(".ok-line")
    assert "uploaded" in page.input_value("#create-yaml")


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, dict[str, str]]]:
    home = tmp_path_factory.mktemp("ui-secured")
    folder = tmp_path_factory.mktemp("ui-secured-trials")
    with serve_plane(server_settings(home)) as server:
        tokens = {}
        for ns in ("a", "b"):
            _, tokens[ns] = server.plane.tokens.create(LOCAL_ADMIN, [ns])
            body = experiment(f"exp-{ns}", folder, trials=2, namespace=ns)
            r = server.http.post(
                f"/apis/v1/namespaces/{ns}/experiments",
                json=body,
                headers={"authorization": f"Bearer {tokens[ns]}"},
            )
            assert r.status_code == 201, r.text
        server.http.headers["authorization"] = f"Bearer {tokens['a']}"
        wait_finished(server, "a", "exp-a")
        server.http.headers["authorization"] = f"Bearer {tokens['b']}"
        wait_finished(server, "b", "exp-b")
        # And an inference service in b (an iris model saved here).
        import joblib
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression

        model = folder / "iris-model"
        model.mkdir()
        joblib.dump(
            LogisticRegression(max_iter=300).fit(*load_iris(return_X_y=True)),
            model / "model.joblib",
        )
        isvc = {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": "svc-b"},
            "spec": {
                "predictor": {
                    "model": {"modelFormat": {"name": "sklearn"}, "storageUri": str(model)}
                }
            },
        }
        r = server.http.post("/apis/v1/namespaces/b/inferenceservices", json=isvc)
        assert r.status_code == 201, r.text
        del server.http.headers["authorization"]
        yield server, tokens


def test_a_token_of_namespace_a_sees_only_namespace_a(
    page: Any, secured: tuple[Running, dict[str, str]], console: Console
) -> None:
    server, tokens = secured
    page.goto(f"{server.url}/experiments/a/exp-a")
    # Not logged in: the login form, then back where the user was going.
    page.wait_for_url(f"{server.url}/login?next=%2Fexperiments%2Fa%2Fexp-a")
    page.wait_for_selector("#login-token")
    assert layout_problems(page) == []
    assert page.evaluate("() => document.activeElement.id") == "login-token"
    console.allow("status of 401")  # the wrong token
    page.fill("#login-token", "hf_000000000000_notavalidtokennotavalidtoken")
    page.click("form button[type=submit]")
    page.wait_for_selector("#login-error:text('invalid or revoked')")
    page.fill("#login-token", tokens["a"])
    page.click("form button[type=submit]")
    page.wait_for_url(f"{server.url}/experiments/a/exp-a")
    page.wait_for_selector("#trials .vt-body .vt-row")
    assert "token" in page.inner_text("#who") and "· a" in page.inner_text("#who")
    # The token itself is out of the page's reach (HttpOnly).
    assert "hyperflow_token" not in page.evaluate("() => document.cookie")
    page.goto(server.url)
    page.wait_for_selector("#experiments tbody tr[data-key]")
    keys = page.locator("#experiments tbody tr[data-key]").evaluate_all(
        "rs => rs.map(r => r.dataset.key)"
    )
    assert keys == ["a/exp-a"]
    # b's experiment: refused by the API, nothing of it on the page.
    console.allow("status of 403")
    page.goto(f"{server.url}/experiments/b/exp-b")
    page.wait_for_selector("#toast div.err")
    assert "may not use namespace 'b'" in page.inner_text("#toast")
    assert page.locator("#trials .vt-row").count() == 0
    # An error page, not an empty experiment page.
    assert "may not use namespace 'b'" in page.inner_text("#exp-error")
    assert page.locator("#plot-parcoords").count() == 0
    status = page.evaluate(
        "async () => (await fetch('/apis/v1/namespaces/b/experiments/exp-b/trialtable')).status"
    )
    assert status == 403
    # Nor b's inference service: not in the list, its page refused.
    page.goto(f"{server.url}/services")
    page.wait_for_selector("#services tbody tr")
    assert "No inference services" in page.inner_text("#services tbody")
    assert page.locator("#services tbody tr[data-key]").count() == 0
    page.goto(f"{server.url}/services/b/svc-b")
    page.wait_for_selector("#toast div.err")
    assert "may not use namespace 'b'" in page.inner_text("#toast")
    assert "svc-b" not in page.inner_text("main")
    assert "may not use namespace 'b'" in page.inner_text("#svc-error")
    # Log out: the cookie is gone, the API answers 401 again.
    page.goto(server.url)
    page.click("#who button")
    page.wait_for_url(f"{server.url}/login")
    assert page.evaluate("async () => (await fetch('/apis/v1/experimentsummaries')).status") == 401
