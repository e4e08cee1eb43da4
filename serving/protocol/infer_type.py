"""Lightweight V2 request/response objects for custom model authors (kserve-like).

A custom :class:`serving.runtimes.base.Model` receives an :class:`InferRequest` for V2 and
may return an :class:`InferResponse`, a numpy array or a list. ``as_numpy()`` gives each
tensor as an array of its declared shape. These are plain ``__slots__`` classes, built
once per request with the tensors already decoded: no validation trees, no copies.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from serving.protocol.datatypes import check_shape, datatype_of, tensor_from_json


class InferInput:
    """One input tensor; ``as_numpy()`` is its data with ``shape`` and ``datatype``."""

    __slots__ = ("_array", "data", "datatype", "name", "parameters", "shape")

    def __init__(
        self,
        name: str,
        shape: list[int],
        datatype: str,
        data: Any = None,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.shape = shape
        self.datatype = datatype
        self.data = data
        self.parameters = parameters
        self._array: np.ndarray | None = None

    def as_numpy(self) -> np.ndarray:
        if self._array is None:
            self._array = tensor_from_json(
                self.data, self.datatype, check_shape(self.shape), self.name
            )
        return self._array

    def set_data_from_numpy(self, arr: np.ndarray) -> None:
        self._array = arr
        self.shape = list(arr.shape)
        self.datatype = datatype_of(arr.dtype)
        self.data = None

    def __repr__(self) -> str:
        return f"InferInput(name={self.name!r}, shape={self.shape}, datatype={self.datatype!r})"


class InferOutput(InferInput):
    """One output tensor. Build with ``InferOutput.from_numpy(name, arr)``."""

    __slots__ = ()

    @classmethod
    def from_numpy(
        cls, name: str, arr: np.ndarray, parameters: dict[str, Any] | None = None
    ) -> InferOutput:
        arr = np.asarray(arr)
        out = cls(name, list(arr.shape), datatype_of(arr.dtype), parameters=parameters)
        out._array = arr
        return out


class RequestedOutput:
    """An entry of the request's ``outputs``: a name and its parameters (``binary_data``)."""

    __slots__ = ("name", "parameters")

    def __init__(self, name: str, parameters: dict[str, Any] | None = None) -> None:
        self.name = name
        self.parameters = parameters

    @property
    def binary_data(self) -> bool | None:
        if self.parameters is None:
            return None
        v = self.parameters.get("binary_data")
        return None if v is None else bool(v)


class InferRequest:
    """A V2 inference request: ``inputs``, optional ``id``, ``parameters``, requested outputs."""

    __slots__ = ("id", "inputs", "model_name", "model_version", "parameters", "request_outputs")

    def __init__(
        self,
        model_name: str,
        inputs: list[InferInput],
        id: str | None = None,
        parameters: dict[str, Any] | None = None,
        request_outputs: list[RequestedOutput] | None = None,
        model_version: str | None = None,
    ) -> None:
        self.model_name = model_name
        self.inputs = inputs
        self.id = id
        self.parameters = parameters
        self.request_outputs = request_outputs
        self.model_version = model_version

    @property
    def use_binary_outputs(self) -> bool:
        return bool(self.parameters and self.parameters.get("binary_data_output"))

    def get_input_by_name(self, name: str) -> InferInput | None:
        for i in self.inputs:
            if i.name == name:
                return i
        return None

    def __repr__(self) -> str:
        return f"InferRequest(model_name={self.model_name!r}, id={self.id!r}, inputs={self.inputs})"


class InferResponse:
    """A V2 inference response; the data plane fills in ``id`` and ``model_name`` if unset."""

    __slots__ = ("id", "model_name", "model_version", "outputs", "parameters")

    def __init__(
        self,
        outputs: list[InferOutput],
        model_name: str = "",
        id: str | None = None,
        parameters: dict[str, Any] | None = None,
        model_version: str | None = None,
    ) -> None:
        self.outputs = outputs
        self.model_name = model_name
        self.id = id
        self.parameters = parameters
        self.model_version = model_version

    def get_output_by_name(self, name: str) -> InferOutput | None:
        for o in self.outputs:
            if o.name == name:
                return o
        return None
