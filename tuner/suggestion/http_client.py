"""``HttpSuggestionClient``: the SuggestionClient interface over the HTTP service.

One persistent ``httpx.Client`` (keep-alive). The client tracks, per experiment, the
``known``/``told`` counts the service last confirmed and sends them with every call. When
the service answers 409 (it restarted and lost the experiment, or the counts disagree),
the client re-sends the history from ``history(experiment_name)`` through ``restore`` and
retries the call once. Without a ``history`` callback only an experiment with no trials
yet can be recovered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from tuner.spec.models import Experiment
from tuner.suggestion.base import (
    InvalidRequest,
    NotSupported,
    StateMismatch,
    Suggestion,
    SuggestionClient,
    SuggestionError,
    UnknownExperiment,
    UnknownTrial,
)
from tuner.suggestion.wire import PREFIX, result_to_json, suggestion_from_json
from tuner.types import TrialResult

_ERRORS: dict[int, type[SuggestionError]] = {
    400: InvalidRequest,
    404: UnknownTrial,
    409: StateMismatch,
    422: NotSupported,
}


class ServiceError(SuggestionError):
    """The service answered with an error this client does not map to a domain error."""


class HttpSuggestionClient(SuggestionClient):
    """Talks to ``hyperflow suggestion serve``; thread-safe (one call per experiment at a time)."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        history: Callable[[str], Sequence[TrialResult]] | None = None,
        timeout: float = 60.0,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)
        self._history = history
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, int]] = {}
        self._locks: dict[str, threading.Lock] = {}

    def _key(self, experiment: Experiment) -> str:
        return f"{experiment.metadata.namespace}/{experiment.metadata.name}"

    def _experiment_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(key, threading.Lock())

    def _url(self, experiment: Experiment, action: str) -> str:
        meta = experiment.metadata
        return f"{PREFIX}/experiments/{meta.namespace}/{meta.name}/{action}"

    def check(self, timeout: float = 5.0) -> None:
        """The service answers its health check; ServiceError naming the URL otherwise."""
        try:
            response = self._http.get(f"{PREFIX}/healthz", timeout=timeout)
        except httpx.HTTPError as exc:
            raise ServiceError(
                f"suggestion service unreachable at {self._http.base_url}: {exc}"
            ) from exc
        if response.status_code != 200:
            self._raise(response)

    def _post(self, url: str, body: dict[str, Any]) -> httpx.Response:
        try:
            return self._http.post(url, json=body)
        except httpx.HTTPError as exc:
            raise ServiceError(
                f"suggestion service unreachable at {self._http.base_url}: {exc}"
            ) from exc

    @staticmethod
    def _raise(response: httpx.Response) -> None:
        try:
            message = str(response.json().get("error", response.text))
        except ValueError:
            message = response.text
        raise _ERRORS.get(response.status_code, ServiceError)(
            f"suggestion service: {response.status_code} {message}"
        )

    def _restore(self, experiment: Experiment, trials: Sequence[TrialResult]) -> None:
        body = {
            "experiment": experiment.to_dict(),
            "trials": [result_to_json(t) for t in trials],
        }
        response = self._post(self._url(experiment, "restore"), body)
        if response.status_code != 200:
            self._raise(response)
        data = response.json()
        self._counts[self._key(experiment)] = (data["known"], data["told"])

    def _call(self, experiment: Experiment, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``action`` with the counts; on 409 restore from history and retry once."""
        key = self._key(experiment)
        for attempt in (1, 2):
            known, told = self._counts.get(key, (0, 0))
            response = self._post(
                self._url(experiment, action), {**body, "known": known, "told": told}
            )
            if response.status_code == 409 and attempt == 1:
                self._recover(experiment)
                continue
            if response.status_code != 200:
                self._raise(response)
            data: dict[str, Any] = response.json()
            if "known" in data:
                self._counts[key] = (data["known"], data["told"])
            return data
        raise AssertionError("unreachable")

    def _recover(self, experiment: Experiment) -> None:
        key = self._key(experiment)
        if self._history is not None:
            trials = list(self._history(experiment.metadata.name))
        elif self._counts.get(key, (0, 0)) == (0, 0):
            trials = []
        else:
            raise UnknownExperiment(
                f"the suggestion service lost experiment {key} and this client has no "
                "history callback to restore it"
            )
        self._restore(experiment, trials)

    # -- SuggestionClient ---------------------------------------------------------------

    def restore(self, experiment: Experiment, trials: Sequence[TrialResult]) -> None:
        with self._experiment_lock(self._key(experiment)):
            self._restore(experiment, trials)

    def suggest(self, experiment: Experiment, count: int) -> list[Suggestion]:
        with self._experiment_lock(self._key(experiment)):
            data = self._call(experiment, "suggest", {"count": count})
        return [suggestion_from_json(s) for s in data["suggestions"]]

    def report(self, experiment: Experiment, result: TrialResult) -> None:
        with self._experiment_lock(self._key(experiment)):
            self._call(experiment, "report", {"result": result_to_json(result)})

    def report_intermediate(
        self, experiment: Experiment, trial_name: str, step: int, value: float
    ) -> bool:
        body = {"trialName": trial_name, "step": int(step), "value": float(value)}
        with self._experiment_lock(self._key(experiment)):
            data = self._call(experiment, "intermediate", body)
        return bool(data["prune"])

    def close(self, namespace: str, name: str) -> None:
        try:
            response = self._http.delete(f"{PREFIX}/experiments/{namespace}/{name}")
        except httpx.HTTPError as exc:
            raise ServiceError(f"suggestion service unreachable: {exc}") from exc
        if response.status_code != 200:
            self._raise(response)
        with self._lock:
            self._counts.pop(f"{namespace}/{name}", None)

    def shutdown(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()
