"""Train the tiny iris classifiers the serving examples serve.

Writes, next to this script (``examples/serving/model/`` is git-ignored):

- ``model/model.joblib``     served by ``sklearn-iris.yaml``
- ``model/v1/model.joblib``  served by ``sklearn-v1.yaml`` (the default revision)
- ``model/v2/model.joblib``  served by ``sklearn-canary.yaml`` (the canary, other hyperparameters)

Run: ``python examples/serving/train_sklearn.py [--out DIR]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


def train(out: Path) -> list[Path]:
    """Fit two logistic regressions (C=1.0 and C=0.05) and save them under ``out``."""
    features, labels = load_iris(return_X_y=True)
    written = []
    for folder, c in ((out, 1.0), (out / "v1", 1.0), (out / "v2", 0.05)):
        folder.mkdir(parents=True, exist_ok=True)
        model = LogisticRegression(C=c, max_iter=500).fit(features, labels)
        path = folder / "model.joblib"
        joblib.dump(model, path)
        accuracy = model.score(features, labels)
        print(f"{path}: C={c} training accuracy {accuracy:.3f}")
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "model")
    train(parser.parse_args().out)


if __name__ == "__main__":
    main()
