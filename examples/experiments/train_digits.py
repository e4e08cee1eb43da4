"""Train an SVM on scikit-learn's bundled digits data set; print accuracy per fold.

Katib's StdOut collector reads the ``accuracy=<value>`` lines. The fitted model is saved
as ``model/model.joblib`` under $HYPERFLOW_ARTIFACTS_DIR (when set), so it ends up in the
trial's MLflow run, servable as ``storageUri: runs:/<run id>/model`` (format sklearn).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import joblib
from sklearn.datasets import load_digits
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import SVC


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--C", type=float, required=True)
    parser.add_argument("--gamma", type=float, required=True)
    parser.add_argument("--kernel", default="rbf")
    parser.add_argument("--folds", type=int, default=3)
    args = parser.parse_args()

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    scores = []
    folds = StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=0)
    for fold, (train, test) in enumerate(folds.split(X, y)):
        model = SVC(C=args.C, gamma=args.gamma, kernel=args.kernel)
        model.fit(X[train], y[train])
        accuracy = float(model.score(X[test], y[test]))
        scores.append(accuracy)
        print(f"fold={fold} accuracy={sum(scores) / len(scores):.6f}", flush=True)

    final = SVC(C=args.C, gamma=args.gamma, kernel=args.kernel).fit(X, y)
    artifacts = os.environ.get("HYPERFLOW_ARTIFACTS_DIR")
    if artifacts:
        model_dir = Path(artifacts) / "model"
        model_dir.mkdir(parents=True, exist_ok=True)
        joblib.dump(final, model_dir / "model.joblib")


if __name__ == "__main__":
    main()
