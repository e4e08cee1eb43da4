"""Custom Python models: ``module:Class`` with kserve.Model's shape.

The class is named by ``model.runtime: "module:Class"`` or the ``hyperflow.io/model-class``
annotation (see :attr:`serving.spec.PredictorSpec.model_class`). Its module is imported with
the InferenceService file's folder first on ``sys.path``, so ``my_model.py`` next to the
YAML file just works. The class is constructed as ``Class(name)`` (plus
``model_dir=<resolved storageUri>`` when a storageUri is given and the constructor takes
``model_dir``); ``load()`` is left to the replica.

A subclass of :class:`serving.runtimes.base.Model` is used as is; any other class with a
``predict`` method (e.g. a ``kserve.Model`` subclass, or a plain class) is wrapped so its
``load``/``preprocess``/``predict``/``postprocess`` (sync or async, with or without
``headers``) follow the base contract. A class may set ``thread_safe = False``.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from serving.runtimes.base import Model
from serving.runtimes.errors import ModelLoadError

if TYPE_CHECKING:
    from serving.spec.models import PredictorSpec

_STAGES = ("preprocess", "predict", "postprocess")


def import_model_class(ref: str, base_dir: Path | None, model: str = "") -> type:
    """The class ``module:Class`` names, importing ``module`` from ``base_dir`` first."""
    module_name, _, qualname = ref.partition(":")
    if base_dir is not None and str(base_dir) not in sys.path:
        sys.path.insert(0, str(base_dir))
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        where = f" (looked in {base_dir} and the installed packages)" if base_dir else ""
        raise ModelLoadError(model, ref, f"cannot import {module_name!r}{where}: {exc}") from exc
    except Exception as exc:  # the module's own top-level code failed
        raise ModelLoadError(
            model, ref, f"importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    for part in qualname.split("."):
        if not hasattr(target, part):
            raise ModelLoadError(model, ref, f"module {module_name!r} has no {qualname!r}")
        target = getattr(target, part)
    if not isinstance(target, type):
        raise ModelLoadError(model, ref, f"{qualname!r} is not a class")
    return target


class CustomModel(Model):
    """Adapts a kserve.Model-shaped object that does not subclass our :class:`Model`."""

    def __init__(self, name: str, inner: Any, ref: str) -> None:
        super().__init__(name)
        self.inner = inner
        self.ref = ref
        self.thread_safe = bool(getattr(inner, "thread_safe", True))
        # Bound per instance so sync stays sync and async stays async for the data plane.
        for stage in _STAGES:
            method = getattr(inner, stage, None)
            if callable(method):
                setattr(self, stage, _with_headers(method))

    def load(self) -> bool:
        method = getattr(self.inner, "load", None)
        try:
            result = method() if callable(method) else True
            if inspect.isawaitable(result):
                result = asyncio.run(_awaited(result))
        except ModelLoadError:
            raise
        except Exception as exc:
            raise ModelLoadError(self.name, self.ref, f"{type(exc).__name__}: {exc}") from exc
        if isinstance(result, bool):
            self.ready = result
        else:
            self.ready = bool(getattr(self.inner, "ready", True))
        return self.ready


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _with_headers(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` callable as ``(payload, headers=None)`` even if it takes only a payload."""
    try:
        params = list(inspect.signature(method).parameters.values())
    except (TypeError, ValueError):
        return method
    takes_headers = (
        any(p.kind is inspect.Parameter.VAR_KEYWORD or p.name == "headers" for p in params)
        or sum(
            p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
            for p in params
        )
        >= 2
        or any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    )
    if takes_headers:
        return method
    if inspect.iscoroutinefunction(method):

        async def async_shim(payload: Any, headers: dict[str, str] | None = None) -> Any:
            return await method(payload)

        return async_shim

    def shim(payload: Any, headers: dict[str, str] | None = None) -> Any:
        return method(payload)

    return shim


def _accepts(cls: type, keyword: str) -> bool:
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == keyword or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def build(
    name: str, predictor: PredictorSpec, model_path: Path | None, base_dir: Path | None
) -> Model:
    ref = predictor.model_class
    if ref is None:
        raise ModelLoadError(name, "custom model", "no model class (set model.runtime)")
    cls = import_model_class(ref, base_dir, model=name)
    kwargs: dict[str, Any] = {}
    if model_path is not None and _accepts(cls, "model_dir"):
        kwargs["model_dir"] = str(model_path)
    try:
        instance = cls(name, **kwargs)
    except Exception as exc:
        raise ModelLoadError(
            name, ref, f"constructing {cls.__name__}({name!r}) failed: {type(exc).__name__}: {exc}"
        ) from exc
    if isinstance(instance, Model):
        return instance
    if not callable(getattr(instance, "predict", None)):
        raise ModelLoadError(name, ref, f"{cls.__name__} has no predict() method")
    return CustomModel(name, instance, ref)
