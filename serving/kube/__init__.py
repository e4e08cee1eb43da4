"""Kubernetes: the one adapter that talks to an API server (:mod:`serving.kube.client`,
the only module that imports the official ``kubernetes`` client, an import-linter
contract), and InferenceServices rendered as Kubernetes objects (:mod:`serving.kube.render`).

Everything else speaks plain Kubernetes objects (JSON-shaped dicts) and the errors of
:mod:`serving.kube.client`. It lives in ``serving``, the lowest layer, so that the tuner's
kubernetes trial backend uses the same adapter.
"""
