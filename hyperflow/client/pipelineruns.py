"""Pipeline run methods of :class:`hyperflow.client.Client` (KFP's ``kfp.Client`` names
where they fit: ``create_run_from_pipeline_package``, ``get_run``, ``list_runs``,
``wait_for_run_completion``, ``delete_run``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

API = "/apis/v1/namespaces"
FINISHED = ("SUCCEEDED", "FAILED", "CANCELED")


def pipeline_run_body(
    pipeline: dict[str, Any],
    arguments: dict[str, Any] | None = None,
    *,
    name: str | None = None,
    parallelism: int | None = None,
    cache: bool | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """A PipelineRun for a compiled pipeline (the kfp IR as a dict) and its arguments."""
    metadata: dict[str, Any] = {}
    if name:
        metadata["name"] = name
    else:
        prefix = str(pipeline.get("pipelineInfo", {}).get("name", "pipeline"))
        metadata["generateName"] = f"{prefix[:50]}-"
    if source:
        metadata["annotations"] = {"hyperflow.io/pipeline-file": source}
    spec: dict[str, Any] = {
        "pipelineSpec": pipeline,
        "runtimeConfig": {"parameters": dict(arguments or {})},
    }
    if parallelism is not None:
        spec["parallelism"] = parallelism
    if cache is not None:
        spec["cache"] = cache
    return {
        "apiVersion": "hyperflow.io/v1",
        "kind": "PipelineRun",
        "metadata": metadata,
        "spec": spec,
    }


class PipelineRunMethods:
    """Mixed into ``Client`` (which provides ``request``, ``list_all`` and ``_ns``)."""

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        raise NotImplementedError

    def list_all(self, path: str, params: dict[str, Any] | None = None) -> tuple[list[Any], str]:
        raise NotImplementedError

    def _ns(self, namespace: str | None) -> str:
        raise NotImplementedError

    def create_run(self, run: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        """POST a PipelineRun object; the created run (its ``metadata.name``)."""
        body: dict[str, Any] = self.request(
            "POST", f"{API}/{self._ns(namespace)}/pipelineruns", json=run
        ).json()
        return body

    def create_run_from_pipeline_package(
        self,
        pipeline_file: str | Path,
        arguments: dict[str, Any] | None = None,
        run_name: str | None = None,
        namespace: str | None = None,
        enable_caching: bool | None = None,
    ) -> dict[str, Any]:
        """Run a compiled pipeline file (kfp IR YAML) with ``arguments``, as kfp's."""
        from serving import yamlfile  # the spec files' loader: bounded, strict keys

        path = Path(pipeline_file)
        documents = yamlfile.load_all(yamlfile.read_text(path))
        if not documents or not isinstance(documents[0], dict):
            raise ValueError(f"{path} holds no compiled pipeline")
        run = pipeline_run_body(
            documents[0], arguments, name=run_name, cache=enable_caching, source=path.name
        )
        return self.create_run(run, namespace)

    def get_run(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = self.request(
            "GET", f"{API}/{self._ns(namespace)}/pipelineruns/{name}"
        ).json()
        return body

    def list_runs(self, namespace: str | None = None) -> list[dict[str, Any]]:
        items, _ = self.list_all(f"{API}/{self._ns(namespace)}/pipelineruns")
        return items

    def delete_run(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = self.request(
            "DELETE", f"{API}/{self._ns(namespace)}/pipelineruns/{name}"
        ).json()
        return body

    def run_logs(self, name: str, task: str | None = None, namespace: str | None = None) -> bytes:
        params = {"task": task} if task else None
        return self.request(
            "GET", f"{API}/{self._ns(namespace)}/pipelineruns/{name}/log", params=params
        ).content

    def wait_for_run_completion(
        self, name: str, timeout: float = 600, namespace: str | None = None, poll: float = 0.2
    ) -> dict[str, Any]:
        """The run once it SUCCEEDED, FAILED or was CANCELED; ``TimeoutError`` before."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.get_run(name, namespace)
            if run["status"]["state"] in FINISHED:
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"pipeline run {name} is {run['status']['state']} after {timeout} s"
                )
            time.sleep(poll)
