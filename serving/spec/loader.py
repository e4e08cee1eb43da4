"""Load InferenceServices from YAML/JSON files or dicts, with every error named by field."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from serving import yamlfile
from serving.spec.errors import FieldError, SpecError, join_path, shown, unknown_field
from serving.spec.models import API_VERSION, KIND, MODEL_CLASS_ANNOTATION, InferenceService
from serving.spec.validation import unknown_component_fields, validate


def load_inference_services(path: str | Path) -> list[InferenceService]:
    """Every InferenceService in a (multi-document) YAML or JSON file.

    Each service's ``base_dir`` is the file's folder (relative ``storageUri`` and custom
    model modules resolve from there). Raises :class:`SpecError` listing all problems.
    """
    path = Path(path)
    source = str(path)
    try:
        text = yamlfile.read_text(path)
        documents = yamlfile.load_all(text)
    except FileNotFoundError:
        raise SpecError([FieldError("", "file not found")], source=source) from None
    except OSError as exc:
        raise SpecError([FieldError("", f"cannot read file: {exc}")], source=source) from None
    except yamlfile.YamlError as exc:
        raise SpecError([FieldError("", str(exc))], source=source) from None
    if not documents:
        raise SpecError([FieldError("", "no InferenceService in file")], source=source)
    base_dir = path.resolve().parent
    parsed: list[tuple[int, InferenceService]] = []
    errors: list[FieldError] = []
    numbered = len(documents) > 1
    for number, document in enumerate(documents, start=1):
        try:
            parsed.append((number, parse_inference_service(document, base_dir=base_dir)))
        except SpecError as exc:
            errors += [
                FieldError(e.path, e.message, number if numbered else None) for e in exc.errors
            ]
    seen: dict[tuple[str, str], int] = {}
    for number, isvc in parsed:
        key = (isvc.metadata.namespace, isvc.metadata.name)
        if key in seen:
            errors.append(
                FieldError(
                    "metadata.name",
                    f"{isvc.metadata.name!r} is already defined by document {seen[key]}",
                    number,
                )
            )
        seen.setdefault(key, number)
    if errors:
        raise SpecError(errors, source=source)
    return [isvc for _, isvc in parsed]


def parse_inference_service(
    data: dict[str, Any] | str, base_dir: Path | None = None
) -> InferenceService:
    """One InferenceService from a dict or a YAML/JSON string; raises :class:`SpecError`."""
    if isinstance(data, str):
        try:
            data = yamlfile.load(data)
        except yamlfile.YamlError as exc:
            raise SpecError([FieldError("", str(exc))]) from None
    if not isinstance(data, dict):
        raise SpecError(
            [FieldError("", f"an InferenceService must be a mapping, got {type(data).__name__}")]
        )
    kind = data.get("kind", KIND)
    if kind != KIND:
        raise SpecError([FieldError("kind", f"must be {KIND!r}, got {shown(kind)}")])
    api_version = data.get("apiVersion", data.get("api_version", API_VERSION))
    if api_version != API_VERSION:
        # Said first and alone: another version's fields would only add confusing errors.
        raise SpecError([FieldError("apiVersion", _api_version_problem(api_version))])
    try:
        isvc = InferenceService.model_validate(data)
    except ValidationError as exc:
        # Unknown predictor fields are checked after parsing; report them now as well, so
        # a file with several typos needs one round of fixes, not one per kind of field.
        errors = [_field_error(e) for e in exc.errors()]
        seen = {e.path for e in errors}
        errors += [e for e in unknown_component_fields(data) if e.path not in seen]
        raise SpecError(errors) from None
    isvc.spec.predictor._isvc_model_class = isvc.metadata.annotations.get(MODEL_CLASS_ANNOTATION)
    errors = validate(isvc)
    if errors:
        raise SpecError(errors)
    return isvc.with_base_dir(base_dir)


def _api_version_problem(api_version: object) -> str:
    problem = f"must be {API_VERSION!r}, got {shown(api_version)}"
    if not isinstance(api_version, str):
        return problem
    group, _, version = api_version.rpartition("/")
    if version == "v1alpha2":
        return (
            f"{problem}: v1alpha2 InferenceServices (KFServing) are not read; in v1beta1 "
            "spec.default.predictor is spec.predictor and spec.canary is a second "
            "revision with canaryTrafficPercent"
        )
    if group == "serving.kubeflow.org" and version == "v1beta1":
        return f"{problem}: KFServing's v1beta1 has the same fields; change the apiVersion"
    return problem


def _field_error(error: Any) -> FieldError:
    path = join_path(error["loc"])
    kind = error["type"]
    given = error.get("input")
    if kind == "missing":
        message = "required"
    elif kind == "extra_forbidden":
        loc = error["loc"]
        message = unknown_field(str(loc[-1]), _field_names(loc[:-1]))
    elif kind == "enum":
        message = f"must be one of {error['ctx']['expected']}, got {shown(given)}"
    elif kind in ("int_parsing", "int_type", "int_from_float"):
        message = f"must be an integer, got {shown(given)}"
    elif kind == "less_than_equal":  # the int32 bound of every integer field
        message = f"must be <= {error['ctx']['le']}, got {shown(given)}"
    elif kind in ("bool_parsing", "bool_type"):
        message = f"must be true or false, got {shown(given)}"
    elif kind in ("string_type",):
        message = f"must be a string, got {shown(given)}"
    elif kind in ("list_type",):
        message = f"must be a list, got {type(given).__name__}"
    elif kind in ("dict_type", "model_type", "model_attributes_type"):
        message = f"must be a mapping, got {type(given).__name__}"
    else:
        text = error["msg"]
        message = text[:1].lower() + text[1:]
    return FieldError(path, message)


def _field_names(loc: tuple[str | int, ...]) -> list[str]:
    """The YAML names of the fields of the object at ``loc`` (empty if not a model)."""
    model: type[BaseModel] | None = InferenceService
    for part in loc:
        if isinstance(part, int) or model is None:
            continue  # a list index: the item has the list's model
        field = next((f for n, f in model.model_fields.items() if part in (n, f.alias)), None)
        model = _model_in(field.annotation) if field is not None else None
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model inside ``X``, ``X | None`` or ``list[X] | None``."""
    pending = [annotation]
    while pending:
        current = pending.pop()
        if isinstance(current, type) and issubclass(current, BaseModel):
            return current
        pending += get_args(current)
    return None
