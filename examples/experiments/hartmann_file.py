"""Hartmann-3 as a trial that writes its metrics to a file, one JSON object per line.

It "trains" for a few epochs, each epoch a noisy step towards the Hartmann-3 value, and
appends ``{"epoch": i, "loss": ...}`` to metrics.jsonl in its own trial folder
($HYPERFLOW_TRIAL_DIR), which the File collector reads.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

ALPHA = [1.0, 1.2, 3.0, 3.2]
A = [[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]]
P = [
    [0.3689, 0.1170, 0.2673],
    [0.4699, 0.4387, 0.7470],
    [0.1091, 0.8732, 0.5547],
    [0.0381, 0.5743, 0.8828],
]


def hartmann3(x: list[float]) -> float:
    return -sum(
        ALPHA[i] * math.exp(-sum(A[i][j] * (x[j] - P[i][j]) ** 2 for j in range(3)))
        for i in range(4)
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for name in ("x1", "x2", "x3"):
        parser.add_argument(f"--{name}", type=float, required=True)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    target = hartmann3([args.x1, args.x2, args.x3])
    out = Path(os.environ.get("HYPERFLOW_TRIAL_DIR", ".")) / "metrics.jsonl"
    with out.open("a") as f:
        for epoch in range(args.epochs):
            loss = target + 1.0 / (epoch + 1)
            f.write(json.dumps({"epoch": epoch, "loss": loss}) + "\n")
            f.flush()
