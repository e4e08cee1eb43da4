"""The Branin-Hoo function as a trial: prints ``loss=<value>`` (minimum 0.397887)."""

from __future__ import annotations

import argparse
import math


def branin(x1: float, x2: float) -> float:
    a, b, c = 1.0, 5.1 / (4 * math.pi**2), 5 / math.pi
    r, s, t = 6.0, 10.0, 1 / (8 * math.pi)
    return a * (x2 - b * x1**2 + c * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--x1", type=float, required=True)
    parser.add_argument("--x2", type=float, required=True)
    args = parser.parse_args()
    print(f"loss={branin(args.x1, args.x2):.6f}")
