"""Katib's rules for ``spec.parameters`` (plus the bounds local runs need).

Katib's webhook checks only that double/int have a bound and categorical/discrete have no
bounds; its suggestion services then fail at run time on anything else. Here every problem
is reported up front, by field.
"""

from __future__ import annotations

from tuner.spec.errors import FieldError
from tuner.spec.models import Distribution, FeasibleSpace, ParameterSpec, ParameterType
from tuner.spec.numbers import NumberError, parse_number

_NUMERIC = (ParameterType.DOUBLE, ParameterType.INT)
_LOG = (Distribution.LOG_UNIFORM, Distribution.LOG_NORMAL)


def check_parameters(
    parameters: list[ParameterSpec], resource_parameter: str | None = None
) -> list[FieldError]:
    """Every problem in ``spec.parameters``.

    ``resource_parameter`` is hyperband's ``resource_name``: the algorithm overwrites that
    parameter's value with each bracket's budget, so Katib's own example gives it
    ``min == max``; only that parameter may have an empty range.
    """
    errors: list[FieldError] = []
    if not parameters:
        return [FieldError("spec.parameters", "at least one parameter is required")]
    first_index: dict[str, int] = {}
    for i, parameter in enumerate(parameters):
        path = f"spec.parameters[{i}]"
        if not parameter.name.strip():
            errors.append(FieldError(f"{path}.name", "required"))
        elif parameter.name in first_index:
            errors.append(
                FieldError(
                    f"{path}.name",
                    f"duplicate parameter name {parameter.name!r} "
                    f"(also spec.parameters[{first_index[parameter.name]}])",
                )
            )
        else:
            first_index[parameter.name] = i
        space_path = f"{path}.feasibleSpace"
        if parameter.parameter_type in _NUMERIC:
            errors += _check_range(
                parameter.parameter_type,
                parameter.feasible_space,
                space_path,
                allow_empty=parameter.name == resource_parameter,
            )
        else:
            errors += _check_list(parameter.parameter_type, parameter.feasible_space, space_path)
    return errors


def _check_range(
    kind: ParameterType, space: FeasibleSpace, path: str, *, allow_empty: bool
) -> list[FieldError]:
    errors: list[FieldError] = []
    integer = kind is ParameterType.INT
    if space.values is not None:
        errors.append(
            FieldError(f"{path}.list", f"not allowed for parameterType {kind}; use min and max")
        )
    bounds: dict[str, float | int] = {}
    for name, text in (("min", space.min), ("max", space.max)):
        if text is None or not text.strip():
            errors.append(
                FieldError(
                    f"{path}.{name}",
                    f"required for parameterType {kind} "
                    "(Katib accepts one bound; local runs need both min and max)",
                )
            )
            continue
        try:
            bounds[name] = parse_number(text, integer=integer)
        except NumberError as exc:
            errors.append(FieldError(f"{path}.{name}", str(exc)))
    low, high = bounds.get("min"), bounds.get("max")
    if low is not None and high is not None and (low > high or (low == high and not allow_empty)):
        errors.append(
            FieldError(f"{path}.min", f"must be < max (got min {space.min}, max {space.max})")
        )
    if space.step is not None:
        try:
            step = parse_number(space.step, integer=integer)
        except NumberError as exc:
            errors.append(FieldError(f"{path}.step", str(exc)))
        else:
            if step <= 0:
                errors.append(FieldError(f"{path}.step", f"must be > 0; got {space.step!r}"))
            elif low is not None and high is not None and low < high and step > high - low:
                errors.append(
                    FieldError(
                        f"{path}.step",
                        f"must be <= max - min ({high - low:g}); got {space.step!r}",
                    )
                )
    distribution = space.distribution
    if distribution in _LOG and low is not None and low <= 0:
        errors.append(
            FieldError(
                f"{path}.min", f"must be > 0 for distribution {distribution}; got {space.min!r}"
            )
        )
    return errors


def _check_list(kind: ParameterType, space: FeasibleSpace, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for name, value in (("min", space.min), ("max", space.max), ("step", space.step)):
        if value is not None:
            errors.append(
                FieldError(f"{path}.{name}", f"not allowed for parameterType {kind}; use list")
            )
    if space.distribution not in (None, Distribution.UNIFORM):
        errors.append(
            FieldError(
                f"{path}.distribution",
                f"{space.distribution} is not supported for parameterType {kind} "
                "(only double and int parameters take a distribution)",
            )
        )
    if space.values is None:
        errors.append(FieldError(f"{path}.list", f"required for parameterType {kind}"))
        return errors
    if not space.values:
        errors.append(FieldError(f"{path}.list", "must not be empty"))
        return errors
    seen: dict[object, int] = {}
    for j, item in enumerate(space.values):
        key: object = item
        if kind is ParameterType.DISCRETE:
            try:
                key = parse_number(item)
            except NumberError as exc:
                errors.append(
                    FieldError(f"{path}.list[{j}]", f"{exc} (parameterType discrete takes numbers)")
                )
                continue
        if key in seen:
            errors.append(
                FieldError(
                    f"{path}.list[{j}]", f"duplicate value {item!r} (also list[{seen[key]}])"
                )
            )
        else:
            seen[key] = j
    return errors
