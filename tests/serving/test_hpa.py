"""cpu/memory scaling: KServe's HPA fields read as KServe reads them, the HPA's algorithm
on an emulated clock, ``validate`` and ``run`` agreeing, and real replicas scaled on
their real CPU and memory (psutil)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import httpx
import pytest

from serving.autoscaler import HorizontalAutoscaler, HorizontalConfig, ResourceUsage
from serving.local import LocalDeployment, revision_specs
from serving.local.usage import ProcessUsage
from serving.spec import SpecError, load_inference_services, parse_inference_service
from tests.serving.test_faults import deployed
from tests.serving.test_local import until
from tests.util import SHARED, run_hyperflow

MIB = 2**20


def isvc(annotations: dict[str, str] | None = None, **predictor: Any) -> dict[str, Any]:
    model = predictor.pop("model", {"modelFormat": {"name": "sklearn"}, "storageUri": "./m"})
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "iris", "annotations": annotations or {}},
        "spec": {"predictor": {**predictor, "model": model}},
    }


def horizontal(data: dict[str, Any]) -> HorizontalConfig | None:
    (spec,) = revision_specs([parse_inference_service(data)])
    return spec.horizontal


# --- the spec: which autoscaler, which target -----------------------------------------------


def test_kserve_metric_annotation_scales_on_cpu_not_concurrency() -> None:
    # KServe's HPA sample (test/benchmark/sklearn_hpa.yaml): annotations only.
    data = isvc(
        {
            "serving.kserve.io/autoscalerClass": "hpa",
            "serving.kserve.io/metric": "cpu",
            "serving.kserve.io/targetUtilizationPercentage": "60",
        },
        maxReplicas=4,
    )
    h = horizontal(data)
    assert h is not None
    assert (h.metric, h.target, h.target_type) == ("cpu", 60.0, "Utilization")
    assert (h.resource_request, h.min_replicas, h.max_replicas) == (1.0, 1, 4)
    knobs = parse_inference_service(data).autoscaling()
    assert (knobs.autoscaler_class, knobs.metric) == ("hpa", "cpu")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # scaleTarget is a utilization percent of the container's request (KServe's HPA).
        (
            {"scaleMetric": "memory", "scaleTarget": 70, "model": {"modelFormat": {"name": "sklearn"},
             "storageUri": "./m", "resources": {"requests": {"memory": "256Mi"}}}},
            ("memory", 70.0, "Utilization", 256 * MIB, "memory 70% of 256Mi"),
        ),
        # No request: a limit is the request (Kubernetes), else KServe's default, 1 core.
        (
            {"scaleMetric": "cpu", "model": {"modelFormat": {"name": "sklearn"},
             "storageUri": "./m", "resources": {"limits": {"cpu": "500m"}}}},
            ("cpu", 80.0, "Utilization", 0.5, "cpu 80% of 0.5 core"),
        ),
        # memory without a target: KServe adds no metric; the HPA's default is 80% cpu.
        ({"scaleMetric": "memory"}, ("cpu", 80.0, "Utilization", 1.0, "cpu 80% of 1 core")),
        # The hpa class alone scales on cpu (its default metric).
        (
            {"annotations": {"serving.kserve.io/autoscalerClass": "hpa"}},
            ("cpu", 80.0, "Utilization", 1.0, "cpu 80% of 1 core"),
        ),
    ],
)  # fmt: skip
def test_hpa_targets(fields: dict[str, Any], expected: tuple[object, ...]) -> None:
    notes = fields.pop("annotations", None)
    h = horizontal(isvc(notes, **fields))
    assert h is not None
    assert (h.metric, h.target, h.target_type, h.resource_request, h.describe()) == expected


def test_knative_hpa_class_memory_target_is_mib() -> None:
    notes = {
        "autoscaling.knative.dev/class": "hpa.autoscaling.knative.dev",
        "autoscaling.knative.dev/metric": "memory",
        "autoscaling.knative.dev/target": "512",
    }
    h = horizontal(isvc(notes))
    assert h is not None and (h.metric, h.target, h.target_type) == (
        "memory",
        512.0,
        "AverageValue",
    )
    assert h.value(ResourceUsage(cpu=0.0, memory=256 * MIB)) == 256.0


def test_hpa_bounds_as_kserve_sets_them() -> None:
    # minReplicas is at least 1; maxReplicas unset (or below min) is minReplicas, not unbounded.
    h = horizontal(isvc(scaleMetric="cpu", minReplicas=0))
    assert h is not None and (h.min_replicas, h.max_replicas, h.initial_replicas) == (1, 1, 1)
    h = horizontal(isvc(scaleMetric="cpu", minReplicas=2, maxReplicas=5))
    assert h is not None and (h.min_replicas, h.max_replicas, h.initial_replicas) == (2, 5, 2)
    assert horizontal(isvc(scaleMetric="rps")) is None


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        (isvc({"autoscaling.knative.dev/class": "kpa.autoscaling.knative.dev"}, scaleMetric="cpu"),
         "spec.predictor.scaleMetric", "'cpu' is an HPA metric"),
        (isvc({"serving.kserve.io/autoscalerClass": "hpa"}, scaleMetric="concurrency"),
         "spec.predictor.scaleMetric", "'concurrency' is a KPA metric"),
        (isvc(scaleMetric="cpu", scaleTarget=150), "spec.predictor.scaleTarget", "[1, 100]"),
        (isvc(scaleMetric="cpu", model={"modelFormat": {"name": "sklearn"}, "storageUri": "m",
              "resources": {"requests": {"cpu": "lots"}}}),
         "spec.predictor.model.resources.requests.cpu", "Kubernetes quantity"),
    ],
)  # fmt: skip
def test_hpa_field_errors(data: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_inference_service(data)
    assert any(e.path == path and message in e.message for e in info.value.errors), info.value


@pytest.mark.skipif(
    not (SHARED / "kserve-examples").is_dir(),
    reason="KServe's sample InferenceServices (../shared/kserve-examples) are not here",
)
def test_kserve_hpa_sample_validates_as_hpa() -> None:
    r = run_hyperflow(
        "serve", "validate", "-f", str(SHARED / "kserve-examples/03-hpa-standard-mode.yaml")
    )
    assert r.returncode == 0, r.stderr
    assert "replicas 1..1, HPA on cpu 80% of 0.1 core" in r.stdout
    assert "scaleMetric" not in r.stdout  # no "not supported locally" note any more


# --- the HPA's algorithm, on an emulated clock ----------------------------------------------


def usage(*percents: float, request: float = 1.0) -> list[ResourceUsage]:
    return [ResourceUsage(cpu=p / 100 * request, memory=0.0) for p in percents]


def test_hpa_formula_tolerance_and_limits() -> None:
    hpa = HorizontalAutoscaler(HorizontalConfig(target=50, max_replicas=10), clock=lambda: 0.0)
    # ceil(2 * 90 / 50) = 4
    assert hpa.scale(2, usage(90, 90)).desired == 4
    # within 10% of the target: no change
    assert hpa.scale(4, usage(54, 47, 52, 50)).desired == 4
    # up at most max(2x, +4) at a time, and never past maxReplicas
    assert hpa.scale(1, usage(500)).desired == 5
    assert hpa.scale(8, usage(*[100] * 8)).desired == 10
    # no usage reported yet: hold
    assert hpa.scale(3, []).desired == 3


def test_hpa_replicas_without_usage_do_not_drive_decisions() -> None:
    cfg = HorizontalConfig(target=50, max_replicas=10, scale_down_stabilization=0)
    hpa = HorizontalAutoscaler(cfg, clock=lambda: 0.0)
    # 2 of 4 report 75%: the other 2 (starting) count as idle when scaling up ->
    # ratio 150 / 200 = 0.75 < 1: the data does not back a scale-up, hold at 4.
    assert hpa.scale(4, usage(75, 75)).desired == 4
    # ... and as at the target when scaling down: (20 + 20 + 100) / 200 = 0.7 -> 3.
    assert hpa.scale(4, usage(20, 20)).desired == 3


def test_hpa_scale_down_is_stabilized() -> None:
    now = [0.0]
    cfg = HorizontalConfig(target=50, max_replicas=10, scale_down_stabilization=300)
    hpa = HorizontalAutoscaler(cfg, clock=lambda: now[0])
    assert hpa.scale(2, usage(100, 100)).desired == 4
    now[0] = 60.0
    decision = hpa.scale(4, usage(10, 10, 10, 10))  # wants 1, held at 4 for 300 s
    assert decision.desired == 4 and "stabilized" in decision.reason
    now[0] = 301.0
    assert hpa.scale(4, usage(10, 10, 10, 10)).desired == 1


# --- real replicas, real usage --------------------------------------------------------------

MODELS = '''
import time


class MemoryHog:
    """Holds about 160 MB once loaded."""

    def __init__(self, name):
        self.name = name
        self.ready = False

    def load(self):
        self.ballast = b"x" * (160 * 2**20)  # written, so resident
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        return {"predictions": [1]}


class Burner(MemoryHog):
    """Keeps a core busy for 50 ms per request."""

    thread_safe = False

    def load(self):
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        end = time.process_time() + 0.05
        while time.process_time() < end:
            pass
        return {"predictions": [2]}
'''


def hpa_specs(tmp_path: Path, model: str, resources: str, target: int) -> list[Any]:
    (tmp_path / "hpa_models.py").write_text(MODELS)
    (tmp_path / "isvc.yaml").write_text(
        "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n"
        f"metadata:\n  name: {model.lower()}\n"
        f"spec:\n  predictor:\n    scaleMetric: {'memory' if model == 'MemoryHog' else 'cpu'}\n"
        f"    scaleTarget: {target}\n    minReplicas: 1\n    maxReplicas: 2\n"
        "    model:\n      modelFormat: {name: custom}\n"
        f"      runtime: hpa_models:{model}\n      resources: {resources}\n"
    )
    specs = revision_specs(load_inference_services(tmp_path / "isvc.yaml"), tick_interval=0.3)
    # A short scale-down stabilization window for the test (the HPA's default is 300 s).
    return [
        dataclasses.replace(
            s,
            horizontal=dataclasses.replace(s.horizontal, scale_down_stabilization=2.0),
        )
        for s in specs
    ]


def test_replicas_scale_on_their_real_memory(tmp_path: Path) -> None:
    # ~190 MB resident against a 64Mi request at a 100% target: 2 replicas (the maximum).
    specs = hpa_specs(tmp_path, "MemoryHog", "{requests: {memory: 64Mi}}", 100)
    events: list[str] = []

    async def main() -> None:
        async with deployed(specs, events) as (dep, _url):
            rev = dep.revisions[0]
            await until(lambda: len(rev.pool.endpoints) == 2, timeout=60)
            assert dep.status()[0].scaling == "memory 100% of 64Mi"
            decision = rev.hpa.last_decision if rev.hpa else None
            assert decision is not None and decision.stable_value > 200  # percent
            assert any("memoryhog/default: scale 1 -> 2" in e for e in events)

    asyncio.run(main())


def test_replicas_scale_on_their_real_cpu_and_back(tmp_path: Path) -> None:
    # 50 ms of CPU per request against a 100m request at a 50% target (0.05 cores): a
    # closed loop of requests keeps the replica far above it; idle, it is far below.
    specs = hpa_specs(tmp_path, "Burner", "{requests: {cpu: 100m}}", 50)

    async def main() -> None:
        async with deployed(specs) as (dep, url):
            rev = dep.revisions[0]
            await until(lambda: len(rev.pool.endpoints) == 1, timeout=60)
            stop = asyncio.Event()

            async def load(c: httpx.AsyncClient) -> None:
                while not stop.is_set():
                    r = await c.post("/v1/models/burner:predict", json={"instances": [[1]]})
                    assert r.status_code == 200

            async with httpx.AsyncClient(base_url=url, timeout=30) as c:
                workers = [asyncio.create_task(load(c)) for _ in range(2)]
                try:
                    await until(lambda: rev.deployer.desired == 2, timeout=60)
                finally:
                    stop.set()
                    await asyncio.gather(*workers)
            # Idle: back to minReplicas once the stabilization window has passed.
            await until(lambda: rev.deployer.desired == 1, timeout=60)

    asyncio.run(main())


def test_process_usage_reads_cpu_and_memory_of_a_process_tree() -> None:
    import os
    import subprocess
    import sys

    now = [0.0]
    sampler = ProcessUsage(clock=lambda: now[0])
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'x = b\\'x\\' * (80 * 2**20); "
        "import time; time.sleep(30)'])\n"
        "end = time.process_time() + 1.0\n"
        "while time.process_time() < end: pass\n"
        "print('done', flush=True); time.sleep(30)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert sampler.sample([proc.pid]) == {}  # a first sample only sets the baseline
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"done"
        now[0] = 0.5  # emulated: 1 s of CPU in 0.5 s of clock is 2 cores
        (u,) = sampler.sample([proc.pid]).values()
        assert u.cpu >= 1.8
        assert u.memory > 80 * MIB  # the child's ballast counts
        assert sampler.sample([os.getpid() + 10**7]) == {}  # no such process
    finally:
        for p in __import__("psutil").Process(proc.pid).children(recursive=True):
            p.kill()
        proc.kill()
        proc.wait(10)


def test_local_deployment_uses_the_hpa_for_cpu_revisions(tmp_path: Path) -> None:
    specs = hpa_specs(tmp_path, "Burner", "{requests: {cpu: 100m}}", 50)
    dep = LocalDeployment(specs)
    (rev,) = dep.revisions
    assert rev.hpa is not None and rev.hpa.config.describe() == "cpu 50% of 0.1 core"
