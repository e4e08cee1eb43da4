"""Whose a registered model is: ``<namespace>.<name>`` outside default, undotted in it;
names that are DNS labels."""

from __future__ import annotations

import pytest

from hyperflow.handlers.names import check_dns_label, model_name_problem


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


def test_a_name_too_long_to_print_is_named_not_raised() -> None:
    """YAML's ``0xfff...`` gives an integer with no decimal Python may write (a ValueError
    out of the message, a 500)."""
    [problem] = check_dns_label(16**5000 - 1, "metadata.name")
    assert problem.path == "metadata.name"
    assert problem.message.endswith("got an integer of 20000 bits"), problem.message
