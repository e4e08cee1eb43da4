"""V2 model metadata, derived from the model where possible.

Order of preference:
1. the model's own ``metadata()`` method, if it has one, returning any of ``platform``,
   ``versions``, ``inputs``, ``outputs`` (V2 ``$metadata_tensor`` dicts);
2. for array models, an sklearn-style estimator found among the model's attributes:
   ``n_features_in_`` gives input ``input-0`` of shape ``[-1, n]`` (FP64), ``classes_``
   gives the output datatype (shape ``[-1]``; ``[-1, classes]`` FP64 with PREDICT_PROBA,
   ``[-1, targets]`` for a model of several outputs);
3. for other array models, the input the model's file states (``input_features``: a
   booster's feature count, an ONNX graph's input shape), outputs left open;
4. otherwise empty ``inputs``/``outputs`` (allowed: the model decides at request time).
The ``platform`` defaults to the model's ``platform`` attribute, else ``""``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from serving.protocol.datatypes import datatype_of
from serving.protocol.errors import InvalidInput
from serving.runtimes.base import ArrayModel, Model


def _find_estimator(model: Model) -> Any | None:
    for value in vars(model).values():
        if hasattr(value, "n_features_in_"):
            return value
    return None


def derive_metadata(model: Model) -> dict[str, Any]:
    """Everything but ``name``: ``versions``, ``platform``, ``inputs``, ``outputs``."""
    meta: dict[str, Any] = {
        "versions": [str(version)] if (version := getattr(model, "version", None)) else [],
        "platform": str(getattr(model, "platform", "") or ""),
        "inputs": [],
        "outputs": [],
    }
    own = getattr(model, "metadata", None)
    if callable(own):
        provided = own()
        if isinstance(provided, dict):
            meta.update({k: provided[k] for k in meta if k in provided})
            return meta
    if isinstance(model, ArrayModel):
        est = _find_estimator(model)
        if est is not None:
            n = int(est.n_features_in_)
            meta["inputs"] = [{"name": "input-0", "datatype": "FP64", "shape": [-1, n]}]
            meta["outputs"] = [{"name": "output-0", **_sklearn_output(model, est)}]
            if not meta["platform"]:
                meta["platform"] = type(est).__module__.split(".")[0]
        elif (features := model.input_features()) is not None:
            n, datatype = features
            meta["inputs"] = [{"name": "input-0", "datatype": datatype, "shape": [-1, n]}]
    return meta


def _sklearn_output(model: Model, est: Any) -> dict[str, Any]:
    """What ``predict`` (or ``predict_proba``, PREDICT_PROBA=true) of ``est`` returns."""
    classes = getattr(est, "classes_", None)
    if getattr(model, "predict_proba", False) is True:
        width = len(classes) if classes is not None and np.ndim(classes) == 1 else -1
        return {"datatype": "FP64", "shape": [-1, width]}
    outputs = int(getattr(est, "n_outputs_", 1) or 1)
    coef = getattr(est, "coef_", None)
    if outputs == 1 and classes is None and coef is not None and np.ndim(coef) == 2:
        outputs = int(np.shape(coef)[0])  # a linear model fitted on several targets
    if outputs > 1:
        return {"datatype": "FP64", "shape": [-1, outputs]}
    out_type = "FP64"
    if classes is not None and hasattr(classes, "dtype"):
        with contextlib.suppress(InvalidInput):
            out_type = datatype_of(classes.dtype)
    return {"datatype": out_type, "shape": [-1]}


def expected_features(meta: dict[str, Any]) -> int | None:
    """The fixed feature count of a single 2-D input, if the metadata states one."""
    inputs = meta.get("inputs") or []
    if len(inputs) != 1:
        return None
    shape = inputs[0].get("shape") or []
    if len(shape) == 2 and isinstance(shape[1], int) and shape[1] > 0:
        return int(shape[1])
    return None
