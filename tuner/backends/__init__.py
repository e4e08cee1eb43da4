"""Trial backends: the :class:`TrialBackend` protocol, its implementations and their registry.

A backend is chosen by name (``--backend``, ``HYPERFLOW_BACKEND``, ``tune(backend=)``)
from :data:`BACKENDS`. Each entry names the module that implements it and is imported
only when chosen, so using one backend never imports another (nor ``ray``).

Adding a backend = one module with a ``create`` function (see :func:`create_backend`)
+ one line in :data:`BACKENDS` + one name in the conformance suite's parameter list
(``tests/tuner/backends``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from tuner.backends.base import TrialBackend, TrialExit, TrialRun
    from tuner.settings import TunerSettings
    from tuner.spec.models import Experiment

# name -> module with
# ``create(settings, *, function=None, workers=1, experiment=None) -> TrialBackend``.
BACKENDS: dict[str, str] = {
    "kubernetes": "tuner.backends.kubernetes",
    "local": "tuner.backends.local",
    "ray": "tuner.backends.ray",
}


class BackendError(ValueError):
    """The backend cannot run this experiment (or kind of trial) at all; ``str()`` says
    why, naming the field (e.g. function trials on ``kubernetes``)."""


class UnknownBackend(KeyError):
    """No backend of that name; ``str()`` lists the valid names."""

    def __str__(self) -> str:
        return str(self.args[0])


def check_backend_name(name: str) -> str:
    """``name`` if a backend has it; :class:`UnknownBackend` (listing them) otherwise."""
    if name not in BACKENDS:
        raise UnknownBackend(
            f"unknown backend {name!r}; valid: {', '.join(sorted(BACKENDS))}"
        ) from None
    return name


def create_backend(
    name: str,
    settings: TunerSettings,
    *,
    function: Callable[..., Any] | None = None,
    workers: int = 1,
    experiment: Experiment | None = None,
) -> TrialBackend:
    """A new backend ``name`` for one experiment.

    With ``function`` it runs the SDK's function trials (``workers`` =
    ``parallelTrialCount`` warm workers), otherwise command trials rendered from the
    trialTemplate. ``settings`` carries the backend's own options (``ray_address``,
    ``kube_namespace``...). ``experiment``: the experiment the backend runs, for backends
    that render more than a command from it (``kubernetes`` creates its trialSpec).
    :class:`BackendError` when the backend cannot run it at all.
    """
    module = importlib.import_module(BACKENDS[check_backend_name(name)])
    backend: TrialBackend = module.create(
        settings, function=function, workers=workers, experiment=experiment
    )
    return backend


def backend_problems(name: str, experiment: Experiment, settings: TunerSettings) -> list[str]:
    """Why ``experiment``'s command trials cannot run on backend ``name``, one line each,
    without creating the backend (no cluster is joined): the module's ``problems``
    function where it has one, else what :meth:`TrialBackend.problems` says by default."""
    module = importlib.import_module(BACKENDS[check_backend_name(name)])
    own = getattr(module, "problems", None)
    if own is not None:
        found: list[str] = own(experiment, settings)
        return found
    from tuner.runnable import local_problems

    return local_problems(experiment)


def stop_leftovers(
    name: str, settings: TunerSettings, experiment: Experiment, uid: str, trial_dirs: list[Path]
) -> str | None:
    """Stop what an experiment about to be deleted still runs with no controller watching
    (its controller died) on backend ``name``: ``TrialBackend.delete_leftovers``. None when
    done (or when the backend does not exist here); else why it could not be (the cluster
    unreachable), for the caller to say: the delete goes on."""
    try:
        backend = create_backend(name, settings, experiment=experiment)
    except BackendError:
        return None  # no such backend here any more: nothing it ran can be reached
    try:
        backend.delete_leftovers(uid, trial_dirs)
    except Exception as exc:
        return f"what its trials run on {name} was not stopped: {exc}"
    finally:
        backend.close()
    return None


__all__ = [
    "BACKENDS",
    "BackendError",
    "TrialBackend",
    "TrialExit",
    "TrialRun",
    "UnknownBackend",
    "backend_problems",
    "check_backend_name",
    "create_backend",
]


_LAZY = ("TrialBackend", "TrialExit", "TrialRun")


def __getattr__(name: str) -> Any:
    # Lazily: the function-trial worker imports this package and must stay light (the
    # protocol's models import pydantic).
    if name in _LAZY:
        from tuner.backends import base

        return getattr(base, name)
    raise AttributeError(f"module 'tuner.backends' has no attribute {name!r}")
