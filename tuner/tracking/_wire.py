"""Message kinds between the MLflow tracker and its writer (see mlflow_process)."""

from typing import Final

EVENT = "event"
FLUSH = "flush"
WRITTEN = "written"
RUNS = "runs"
LOG = "log"
FATAL = "fatal"
PARENT_PID_ENV = "_HYPERFLOW_MLFLOW_WRITER_PARENT"
# Ends the writer's input; never sent over a pipe (the writer process sees EOF instead).
CLOSED: Final = object()
