"""How FunctionBackend calls an objective: one dict, or keyword arguments."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from tuner.backends._func_calling import CallingConvention
from tuner.backends._func_protocol import CALL_DICT, CALL_KWARGS


def by_parameters(parameters: dict[str, Any]) -> None: ...
def by_params(params: dict[str, Any]) -> None: ...
def by_config(config: dict[str, Any], verbose: bool = False) -> None: ...
def by_one_keyword(lr: float) -> None: ...
def by_keywords(lr: float, momentum: float = 0.9) -> None: ...
def by_var_keywords(**assignments: Any) -> None: ...
def by_keyword_only(*, parameters: dict[str, Any]) -> None: ...


class Objective:
    def __call__(self, parameters: dict[str, Any]) -> None: ...


@pytest.mark.parametrize(
    ("fn", "experiment_parameters", "expected"),
    [
        (by_parameters, {"parameters"}, CALL_DICT),  # the name wins even if it clashes
        (by_params, {"lr"}, CALL_DICT),
        (lambda parameters: None, {"lr"}, CALL_DICT),
        (Objective(), {"lr"}, CALL_DICT),
        (by_config, {"lr", "momentum"}, CALL_DICT),  # one required parameter, not a name
        (by_one_keyword, {"lr"}, CALL_KWARGS),  # ... unless it names the parameter
        (by_one_keyword, {"x"}, CALL_DICT),
        (by_keywords, {"lr", "momentum"}, CALL_KWARGS),
        (functools.partial(by_keywords, momentum=0.5), {"lr"}, CALL_KWARGS),
        (by_var_keywords, {"lr"}, CALL_KWARGS),
        (by_keyword_only, {"lr"}, CALL_KWARGS),  # cannot take the dict positionally
    ],
)
def test_calling_convention(fn: Any, experiment_parameters: set[str], expected: str) -> None:
    assert CallingConvention.of(fn).call_for(experiment_parameters) == expected
