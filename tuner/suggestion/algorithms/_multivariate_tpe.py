"""``multivariate-tpe``: optuna's TPESampler with ``multivariate=True`` (joint Parzen estimator)."""

from __future__ import annotations

from tuner.suggestion.algorithms._tpe import TPE, TPE_SETTINGS


class MultivariateTPE(TPE):
    name = "multivariate-tpe"
    sampler_name = "TPESampler(multivariate=True)"
    settings = TPE_SETTINGS  # Katib's optuna service: no hyperopt names
    multivariate = True
