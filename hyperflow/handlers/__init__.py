"""The handler layer: create/list/get/patch/delete/watch per resource, with the caller's
namespace checks; plain records in and out, no HTTP.

* :class:`~hyperflow.handlers.auth.Tokens` — ``authenticate(bearer) -> Caller`` and
  token create/list/revoke; :class:`~hyperflow.handlers.auth.Caller` — ``check(ns)``.
* :class:`~hyperflow.handlers.experiments.ExperimentHandlers` — experiments, trials,
  best, logs, pushed metrics.
* :class:`~hyperflow.handlers.inferenceservices.InferenceServiceHandlers` — inference
  services (create/list/get/replace/delete); :class:`~hyperflow.handlers.deploy.DeployBestHandlers`
  — an experiment's best model registered in MLflow and served.
* :class:`~hyperflow.handlers.events.EventHandlers` — list and watch events;
  :class:`~hyperflow.handlers.events.EventBus` — ``publish`` (from any thread).
* :mod:`~hyperflow.handlers.errors` — errors that carry their HTTP status.
* :mod:`~hyperflow.handlers.paging` — ``limit``/``continue`` pages.
"""
