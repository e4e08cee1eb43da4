"""The web UI: one page of small ES modules (no build step) drawing experiments, trials,
comparisons and inference services from the control plane's API, charts by plotly.js
from the installed ``plotly`` package. See :mod:`hyperflow.ui.routes`."""
