"""A stand-in for a cluster's job controller and kubelet, for tests: each batch/v1 Job
stored in the Kubernetes API stand-in gets a pod whose container runs as a **local
process** (its ``command`` + ``args`` and ``env``; the image is not pulled: a container
without ``command`` runs the entrypoint given for its image in ``entrypoints``, as a
container runtime runs the image's ENTRYPOINT with the container's ``args``), the process's
output becomes the pod's log, its exit status the container's ``terminated.exitCode``
and the Job's ``Complete``/``Failed`` condition, as the real ones record them. A command
that cannot start ends as containerd reports it (exit code 128, reason ``StartError``).
Deleting the Job kills its process. Only through the stand-in's test API
(``simulate_*``), so everything the backend reads still comes over HTTP.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from tests.kube.standin import KubeApiStandIn


class LocalKubelet:
    def __init__(
        self,
        api: KubeApiStandIn,
        cwd: Path,
        namespace: str = "default",
        entrypoints: dict[str, list[str]] | None = None,
    ) -> None:
        self.api, self.cwd, self.namespace = api, cwd, namespace
        # image -> its ENTRYPOINT (what the image would run without a container command)
        self.entrypoints = dict(entrypoints or {})
        # Every Job's containers as the kubelet got them (the Job is deleted afterwards).
        self.containers: dict[str, dict[str, Any]] = {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="local-kubelet", daemon=True)

    def __enter__(self) -> LocalKubelet:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        for proc in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            live = set()
            for job in self.api.objects("batch/v1", "Job", self.namespace):
                uid = job["metadata"]["uid"]
                live.add(uid)
                if uid not in self._seen:
                    self._seen.add(uid)
                    threading.Thread(target=self._start, args=(job,), daemon=True).start()
            for uid, proc in list(self.processes.items()):
                if uid not in live and proc.poll() is None:  # the Job was deleted
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)

    def _start(self, job: dict[str, Any]) -> None:
        name, uid = job["metadata"]["name"], job["metadata"]["uid"]
        container = job["spec"]["template"]["spec"]["containers"][0]
        self.containers[name] = container
        command = container.get("command") or self.entrypoints.get(container.get("image", ""), [])
        argv = [str(a) for a in command + (container.get("args") or [])]
        if argv and argv[0] in ("python", "python3"):
            argv[0] = sys.executable
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "PYTHONUNBUFFERED": "1",
            **{e["name"]: e.get("value", "") for e in container.get("env") or []},
        }
        try:
            pod = self.api.simulate_job_pod(name, self.namespace, phase="Pending")
        except Exception:  # deleted before it started
            return
        if not argv or shutil.which(argv[0], path=env["PATH"]) is None:
            message = f'exec: "{argv[0] if argv else ""}": executable file not found in $PATH'
            with contextlib.suppress(Exception):
                self.api.simulate_pod_phase(
                    pod,
                    "Failed",
                    namespace=self.namespace,
                    exit_code=128,
                    reason="StartError",
                    message=message,
                )
                self.api.simulate_job_finished(name, 128, namespace=self.namespace)
            return
        proc = subprocess.Popen(
            argv,
            cwd=self.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[uid] = proc
        try:
            self.api.simulate_pod_phase(pod, "Running", namespace=self.namespace)
            assert proc.stdout is not None
            for line in iter(proc.stdout.readline, b""):
                self.api.simulate_log(pod, line, namespace=self.namespace)
            code = proc.wait()
            self.api.simulate_job_finished(
                name, code if code >= 0 else 128 - code, namespace=self.namespace
            )
        except Exception:  # the Job (and its pod) were deleted meanwhile
            proc.kill()
            proc.wait()
