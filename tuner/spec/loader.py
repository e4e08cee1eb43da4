"""Load Experiments from YAML files, text or mappings; every problem named by field.

All entry points run the same steps: YAML (:mod:`serving.yamlfile`: libyaml's safe loader,
a size cap, duplicate keys refused) -> mapping check -> pydantic model -> Katib rules ->
Katib defaults. Nothing here raises anything but
:class:`SpecError` for bad input, so callers (the CLI, the API) never show a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from serving import yamlfile
from tuner.spec.errors import FieldError, SpecError, prefixed
from tuner.spec.models import API_VERSION, KIND, Experiment
from tuner.spec.pydantic_errors import field_errors
from tuner.spec.validation import validate_experiment

# Larger files are certainly not hand-written Experiments; refused before they are parsed.
MAX_FILE_BYTES = yamlfile.MAX_BYTES


def load_experiments(path: str | Path) -> list[Experiment]:
    """Every Experiment in a (``---``-separated, multi-document) YAML file.

    Empty documents are skipped; a file with none is an error. Each experiment's
    ``base_dir`` is the file's folder. With several documents, error paths are prefixed
    with the 0-based document index: ``document[1].spec.objective.type``.
    """
    path = Path(path)
    documents = _read_documents(path)
    base_dir = path.resolve().parent
    experiments: list[Experiment] = []
    errors: list[FieldError] = []
    numbered = len(documents) > 1
    for index, document in enumerate(documents):
        try:
            experiments.append(parse_experiment(document, base_dir=base_dir))
        except SpecError as exc:
            errors += prefixed(f"document[{index}]", exc.errors) if numbered else exc.errors
    seen: dict[tuple[str, str], int] = {}
    for index, experiment in enumerate(experiments):
        key = (experiment.metadata.namespace, experiment.metadata.name)
        if key in seen:
            errors.append(
                FieldError(
                    f"document[{index}].metadata.name",
                    f"{experiment.metadata.name!r} is already defined by document[{seen[key]}]",
                )
            )
        seen.setdefault(key, index)
    if errors:
        raise SpecError(errors)
    return experiments


def load_experiment(path: str | Path) -> Experiment:
    """The single Experiment in a YAML file (a file with several is an error)."""
    experiments = load_experiments(path)
    if len(experiments) != 1:
        raise SpecError(
            [FieldError("", f"expected one Experiment in {path}, found {len(experiments)}")]
        )
    return experiments[0]


def parse_experiment(data: dict[str, Any] | str, base_dir: Path | None = None) -> Experiment:
    """One validated, defaulted Experiment from a mapping or YAML text."""
    if isinstance(data, str):
        try:
            data = yamlfile.load(data, max_bytes=MAX_FILE_BYTES)
        except yamlfile.YamlError as exc:
            raise SpecError([FieldError("", str(exc))]) from None
    if not isinstance(data, dict):
        raise SpecError([FieldError("", f"an Experiment must be a mapping; got {_kind_of(data)}")])
    errors = _check_header(data)
    if errors:
        raise SpecError(errors)
    try:
        experiment = Experiment.model_validate(data)
    except ValidationError as exc:
        raise SpecError(field_errors(exc, Experiment)) from None
    except RecursionError:
        raise SpecError([FieldError("", "document nested too deeply")]) from None
    validate_experiment(experiment)
    experiment.base_dir = base_dir
    return experiment


def _read_documents(path: Path) -> list[Any]:
    try:
        text = yamlfile.read_text(path, max_bytes=MAX_FILE_BYTES)
    except FileNotFoundError:
        raise SpecError([FieldError("", f"{path}: file not found")]) from None
    except IsADirectoryError:
        raise SpecError([FieldError("", f"{path} is a directory, not a file")]) from None
    except OSError as exc:
        raise SpecError([FieldError("", f"{path}: cannot read: {exc.strerror or exc}")]) from None
    except yamlfile.YamlError as exc:
        raise SpecError([FieldError("", f"{path}: {exc}")]) from None
    try:
        documents = yamlfile.load_all(text, max_bytes=MAX_FILE_BYTES)
    except yamlfile.YamlError as exc:
        raise SpecError([FieldError("", str(exc))]) from None
    if not documents:
        raise SpecError([FieldError("", f"{path}: no Experiment in file (it is empty)")])
    return documents


def _check_header(data: dict[Any, Any]) -> list[FieldError]:
    """kind/apiVersion first: a different object must not drown in unrelated field errors."""
    errors: list[FieldError] = []
    kind = data.get("kind", KIND)
    if kind != KIND:
        errors.append(FieldError("kind", f"must be {KIND}; got {kind!r}"))
    api_version = data.get("apiVersion", API_VERSION)
    if api_version != API_VERSION:
        errors.append(FieldError("apiVersion", f"must be {API_VERSION}; got {api_version!r}"))
    return errors


def _kind_of(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__
