"""JSON forms of the suggestion types, shared by the HTTP service and its client.

Kept free of FastAPI and httpx so either side imports only what it needs. Field names are
camelCase like the rest of the Katib-shaped API.
"""

from __future__ import annotations

from typing import Any

from tuner.suggestion.base import InvalidRequest, Suggestion
from tuner.types import TrialPhase, TrialResult

PREFIX = "/api/v1/suggestion"


def result_to_json(result: TrialResult) -> dict[str, Any]:
    return {
        "trialName": result.trial_name,
        "assignments": result.assignments,
        "phase": str(result.phase),
        "objectiveValue": result.objective_value,
        "intermediate": [[int(s), float(v)] for s, v in result.intermediate],
    }


def result_from_json(data: Any) -> TrialResult:
    """A :class:`TrialResult` from its JSON form; :class:`InvalidRequest` when malformed."""
    if not isinstance(data, dict):
        raise InvalidRequest("a trial must be an object")
    try:
        name = data["trialName"]
        assignments = data.get("assignments") or {}
        phase = TrialPhase(data["phase"])
        value = data.get("objectiveValue")
        intermediate = [(int(s), float(v)) for s, v in data.get("intermediate") or []]
    except KeyError as exc:
        raise InvalidRequest(f"a trial needs {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"malformed trial: {exc}") from None
    if not isinstance(name, str) or not name:
        raise InvalidRequest("trialName must be a non-empty string")
    if not isinstance(assignments, dict) or not all(
        isinstance(v, int | float | str) and not isinstance(v, bool) for v in assignments.values()
    ):
        raise InvalidRequest("assignments must map names to numbers or strings")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise InvalidRequest("objectiveValue must be a number or null")
    if any(step < 0 for step, _ in intermediate):
        # optuna refuses negative steps: a client mistake, not a server error
        raise InvalidRequest("intermediate steps must be integers >= 0")
    return TrialResult(
        trial_name=name,
        assignments=dict(assignments),
        phase=phase,
        objective_value=float(value) if value is not None else None,
        intermediate=intermediate,
    )


def suggestion_to_json(suggestion: Suggestion) -> dict[str, Any]:
    return {"trialName": suggestion.trial_name, "assignments": suggestion.assignments}


def suggestion_from_json(data: dict[str, Any]) -> Suggestion:
    return Suggestion(trial_name=data["trialName"], assignments=dict(data["assignments"]))
