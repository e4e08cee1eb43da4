"""Canary revisions: the two-file convention and the traffic split through the stack."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import pytest

from serving.local import revision_specs
from serving.spec import SpecError, load_inference_services
from tests.serving.test_local import deployed

ISVC = """apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: {name}
  annotations:
    autoscaling.knative.dev/window: "10s"
spec:
  predictor:
{extra}    model:
      modelFormat:
        name: sklearn
      storageUri: ./model
"""


def write(tmp: Path, file: str, name: str, extra: str = "") -> Path:
    p = tmp / file
    p.write_text(ISVC.format(name=name, extra=extra))
    return p


def test_second_file_with_same_name_is_the_canary(tmp_path: Path) -> None:
    a = write(tmp_path, "v1.yaml", "iris")
    b = write(tmp_path, "canary.yaml", "iris", "    canaryTrafficPercent: 20\n")
    c = write(tmp_path, "other.yaml", "other", "    minReplicas: 0\n")
    isvcs = [*load_inference_services(a), *load_inference_services(b), *load_inference_services(c)]
    specs = revision_specs(isvcs, tick_interval=0.5)
    assert [(s.service, s.revision, s.canary_percent) for s in specs] == [
        ("iris", "default", 0),
        ("iris", "canary", 20),
        ("other", "default", 0),
    ]
    assert specs[0].autoscaling.stable_window == 10.0
    assert specs[0].autoscaling.tick_interval == 0.5
    assert specs[2].autoscaling.min_replicas == 0
    assert specs[0].base_dir == tmp_path
    assert '"canaryTrafficPercent":20' in specs[1].isvc_json


def test_pairing_errors(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "iris")
    isvcs = load_inference_services(a)
    with pytest.raises(SpecError, match="canaryTrafficPercent"):
        revision_specs(isvcs * 2)
    b = write(tmp_path, "b.yaml", "iris", "    canaryTrafficPercent: 20\n")
    with pytest.raises(SpecError, match="more than twice"):
        revision_specs([*isvcs, *load_inference_services(b), *load_inference_services(b)])


def test_split_through_router_and_replicas(tmp_path: Path) -> None:
    a = write(tmp_path, "v1.yaml", "iris")
    b = write(tmp_path, "canary.yaml", "iris", "    canaryTrafficPercent: 25\n")
    specs = revision_specs([*load_inference_services(a), *load_inference_services(b)], 0.5)
    served: Counter[str] = Counter()

    async def main() -> None:
        async with deployed(specs) as (dep, url):
            await dep.wait_ready(30)
            async with httpx.AsyncClient(base_url=url) as c:
                sem = asyncio.Semaphore(8)

                async def one() -> None:
                    async with sem:
                        r = await c.post("/v2/models/iris/infer", content=b"{}")
                    assert r.status_code == 200
                    assert r.headers["x-hyperflow-revision"] == r.json()["revision"]
                    served[r.json()["revision"]] += 1

                await asyncio.gather(*(one() for _ in range(400)))
            status = {s.revision: s.traffic for s in dep.status()}
            assert status == {"default": 75, "canary": 25}

    asyncio.run(main())
    assert served == {"default": 300, "canary": 100}
