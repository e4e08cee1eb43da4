"""Whose a registered model is: ``<namespace>.<name>`` outside default, undotted in it."""

from __future__ import annotations

import pytest

from hyperflow.handlers.names import model_name_problem


@pytest.mark.parametrize(
    ("namespace", "model", "allowed"),
    [
        ("default", "sklearn-digits", True),
        ("default", "team-b.sklearn-digits", False),
        ("team-a", "team-a.sklearn-digits", True),
        ("team-a", "team-b.sklearn-digits", False),
        ("team-a", "team-a.", False),
        ("team-a", "sklearn-digits", False),  # default's
        ("team-a", "team-ab.x", False),
    ],
)
def test_a_namespace_uses_only_its_own_models(namespace: str, model: str, allowed: bool) -> None:
    assert (model_name_problem(namespace, model) is None) is allowed
