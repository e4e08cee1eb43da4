"""Message kinds between the MLflow tracker and its writer process (see mlflow_process)."""

EVENT = "event"
FLUSH = "flush"
WRITTEN = "written"
RUNS = "runs"
LOG = "log"
FATAL = "fatal"
PARENT_PID_ENV = "_HYPERFLOW_MLFLOW_WRITER_PARENT"
