"""Katib's rules for ``spec.metricsCollectorSpec``.

Katib requires absolute paths (they are inside the trial's container); locally a relative
``fileSystemPath.path`` is allowed and resolves from the trial's working directory.
"""

from __future__ import annotations

import re

from tuner.spec.errors import FieldError
from tuner.spec.models import (
    FileFormat,
    FileSystemKind,
    MetricsCollectorKind,
    MetricsCollectorSpec,
)

PATH = "spec.metricsCollectorSpec"


def check_metrics_collector(spec: MetricsCollectorSpec) -> list[FieldError]:
    errors: list[FieldError] = []
    kind = spec.collector.kind
    source = spec.source
    fs = source.file_system_path if source is not None else None
    fs_path = f"{PATH}.source.fileSystemPath"
    if kind is MetricsCollectorKind.FILE:
        if fs is None or not fs.path:
            errors.append(FieldError(f"{fs_path}.path", "required for collector kind File"))
        elif fs.kind is not FileSystemKind.FILE:
            errors.append(FieldError(f"{fs_path}.kind", "must be File for collector kind File"))
        if (
            fs is not None
            and fs.format is FileFormat.JSON
            and source is not None
            and source.filter is not None
        ):
            errors.append(
                FieldError(f"{PATH}.source.filter", "must not be set when the file format is JSON")
            )
    elif kind is MetricsCollectorKind.TENSORFLOW_EVENT:
        if fs is None or not fs.path:
            errors.append(
                FieldError(f"{fs_path}.path", "required for collector kind TensorFlowEvent")
            )
        else:
            if "kind" in fs.model_fields_set and fs.kind is not FileSystemKind.DIRECTORY:
                errors.append(
                    FieldError(
                        f"{fs_path}.kind", "must be Directory for collector kind TensorFlowEvent"
                    )
                )
            if "format" in fs.model_fields_set:
                errors.append(
                    FieldError(
                        f"{fs_path}.format", "must be empty for collector kind TensorFlowEvent"
                    )
                )
    elif kind is MetricsCollectorKind.PROMETHEUS_METRIC:
        http = source.http_get if source is not None else None
        if http is not None:
            port = http.port
            if port is not None and (
                isinstance(port, bool)
                or not (str(port).isascii() and str(port).isdigit())
                or int(str(port)) <= 0
                or int(str(port)) > 65535
            ):
                errors.append(
                    FieldError(
                        f"{PATH}.source.httpGet.port",
                        f"must be a port number 1-65535; got {port!r}",
                    )
                )
            if http.path is not None and not http.path.startswith("/"):
                errors.append(
                    FieldError(
                        f"{PATH}.source.httpGet.path", f"must start with '/'; got {http.path!r}"
                    )
                )
    elif kind is MetricsCollectorKind.CUSTOM and spec.collector.custom_collector is None:
        errors.append(
            FieldError(f"{PATH}.collector.customCollector", "required for collector kind Custom")
        )
    if source is not None and source.filter is not None:
        for i, pattern in enumerate(source.filter.metrics_format):
            path = f"{PATH}.source.filter.metricsFormat[{i}]"
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                errors.append(FieldError(path, f"invalid regular expression: {exc}"))
                continue
            # Katib: the first group is the metric name, the second its value.
            if compiled.groups < 2:
                errors.append(
                    FieldError(
                        path,
                        "must have two groups: the first matches the metric name, the second its value",
                    )
                )
    return errors
