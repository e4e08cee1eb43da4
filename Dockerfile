# The image of hyperflow's server, model router/replicas and storage initializer
# (manifests/ run it as hyperflow:<version>):
#   docker build -t hyperflow:0.1.0 .
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HYPERFLOW_HOME=/var/lib/hyperflow

WORKDIR /opt/hyperflow
COPY pyproject.toml README.md ./
COPY hyperflow ./hyperflow
COPY tuner ./tuner
COPY serving ./serving
COPY pipelines ./pipelines
# hyperflow itself, from this folder: its dependencies are ranged in pyproject.toml.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[runtimes,postgres,kubernetes]" \
    && useradd --uid 10001 --no-create-home --home-dir /var/lib/hyperflow hyperflow \
    && mkdir -p /var/lib/hyperflow \
    && chown hyperflow /var/lib/hyperflow

USER 10001
EXPOSE 8080 8081
ENTRYPOINT ["hyperflow"]
CMD ["server", "--host", "0.0.0.0"]
