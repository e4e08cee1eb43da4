"""``validate_algorithm``: Katib's ValidateAlgorithmSettings, without a service round trip."""

from __future__ import annotations

from tuner.spec.models import AlgorithmSpec, ParameterSpec
from tuner.suggestion.algorithms import ALGORITHMS, unknown_message
from tuner.suggestion.settings import parse_settings
from tuner.suggestion.space import SearchSpace


def validate_algorithm(
    algorithm: AlgorithmSpec, parameters: list[ParameterSpec], max_trial_count: int | None
) -> list[tuple[str, str]]:
    """Problems with ``algorithm`` for this search space, as ``(path, message)`` pairs.

    Paths are relative to ``spec.`` (``algorithm.algorithmSettings[1].value``,
    ``maxTrialCount``, ``parameters``). Empty when the algorithm can run (or, for a known
    but locally unsupported algorithm such as pbt, when its settings are valid). The
    parameters' numbers must already be parsable; this never raises on user input.
    """
    cls = ALGORITHMS.get(algorithm.algorithm_name)
    if cls is None:
        return [("algorithm.algorithmName", unknown_message(algorithm.algorithm_name))]
    impl = cls()
    settings, problems = parse_settings(impl.name, impl.settings, algorithm.algorithm_settings)
    try:
        space = SearchSpace.from_specs(parameters)
    except ValueError as exc:  # min/max missing: reported by the parameter rules as well
        return [*problems, ("parameters", str(exc))]
    if not problems:
        problems.extend(impl.check_space(settings, space, max_trial_count))
    return problems
