# syntax=docker/dockerfile:1
# An example image: qrun (with its Rust codec) and the app in examples/plain, run as a non-root
# user. docker-compose.yml builds it for a worker and a producer; see "Containers" in
# docs/operations.md. For your own app, replace the COPY of examples/plain and the CMD.
#
#   docker build -t qrun-example .
#   docker run --rm -e QRUN_URL=redis://valkey:6379/0 qrun-example       # qrun as PID 1

ARG PYTHON_VERSION=3.12

# -- build: the qrun wheel (maturin compiles the codec) and wheels of its dependencies ---------
FROM python:${PYTHON_VERSION}-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
# rustup, not Debian's cargo: pyo3 needs a newer rustc than a stable distribution ships.
ENV RUSTUP_HOME=/opt/rustup CARGO_HOME=/opt/cargo PATH=/opt/cargo/bin:$PATH
RUN curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
    | sh -s -- -y --no-modify-path --profile minimal --default-toolchain stable
WORKDIR /src
COPY pyproject.toml Cargo.toml Cargo.lock README.md ./
COPY rust/ rust/
COPY python/ python/
# pip runs maturin in an isolated build environment; the dependencies (redis, hiredis, click,
# psutil) come as binary wheels, so the runtime image needs no compiler.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# -- runtime: a slim image with the wheels installed, the app, and a user that is not root -----
FROM python:${PYTHON_VERSION}-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels qrun
RUN useradd --create-home --uid 10001 --user-group --shell /usr/sbin/nologin qrun
WORKDIR /app
# Owned by root, so the worker cannot rewrite its own code.
COPY examples/plain/ /app/
USER qrun

# qrun is PID 1 (no init needed): it reaps the orphans jobs leave and drains on SIGTERM,
# giving running jobs --grace-period seconds; keep that below the orchestrator's grace period
# (compose stop_grace_period, Kubernetes terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
# Exit 0 when the server answers, the queue's group exists and a supervisor serves it.
HEALTHCHECK --interval=15s --timeout=10s --start-period=30s --retries=3 \
    CMD ["qrun", "health", "--queue", "emails"]
ENTRYPOINT ["qrun"]
CMD ["run", "--workers", "2", "--grace-period", "25", "--log-format", "json", "tasks:queue"]
