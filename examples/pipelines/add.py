"""A small pipeline (two additions, the second after the first) for the control plane's
examples. ``add.yaml`` next to it is this file compiled:

    kfp dsl compile --py examples/pipelines/add.py --output examples/pipelines/add.yaml
"""

# No `from __future__ import annotations`: kfp reads the components' annotations.
from kfp import dsl


@dsl.component(base_image="python:3.11")
def add(a: float, b: float) -> float:
    print(f"adding {a} and {b}")
    return a + b


@dsl.pipeline(name="add", description="a + b, then + b again")
def add_pipeline(a: float, b: float = 2.0) -> float:
    first = add(a=a, b=b)
    return add(a=first.output, b=b).output
