"""The REST API: thin FastAPI routes over the handler layer (:mod:`hyperflow.handlers`)."""
