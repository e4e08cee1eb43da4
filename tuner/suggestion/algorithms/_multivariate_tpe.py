"""``multivariate-tpe``: optuna's TPESampler with ``multivariate=True`` (joint Parzen estimator)."""

from __future__ import annotations

from tuner.suggestion.algorithms._tpe import TPE


class MultivariateTPE(TPE):
    name = "multivariate-tpe"
    sampler_name = "TPESampler(multivariate=True)"
    multivariate = True
