# syntax=docker/dockerfile:1
# The sleepstream worker image, also used by the ingestors (`sleepstream replay ...`).
# The `stream` extra only: onnxruntime runs the exported models, torch is never installed.
#
# Build from the repository root (deploy/compose.yaml does this):
#   docker build -f deploy/worker.Dockerfile -t sleepstream-worker:0.1.0 .
# The context is trimmed by worker.Dockerfile.dockerignore (BuildKit).

FROM python:3.11.12-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY stream/ stream/
COPY models/ models/
COPY ingestors/ ingestors/
COPY training/ training/
COPY dashboards/ dashboards/
# the last command fails the build if anything pulled torch in
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install ".[stream]" \
    && /opt/venv/bin/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is not None)"

FROM python:3.11.12-slim-bookworm
RUN groupadd --system --gid 10001 sleepstream \
    && useradd --system --uid 10001 --gid sleepstream --create-home \
       --home-dir /var/lib/sleepstream --shell /usr/sbin/nologin sleepstream
COPY --from=build /opt/venv /opt/venv
COPY --chmod=0755 deploy/worker-entrypoint.sh /usr/local/bin/sleepstream-entrypoint
# numba caches its compiled kernels where the user can write; Faust keeps its files in
# SLEEPSTREAM_DATA_DIR (tables live in memory and are rebuilt from their changelog topics)
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NUMBA_CACHE_DIR=/var/lib/sleepstream/numba-cache \
    SLEEPSTREAM_DATA_DIR=/var/lib/sleepstream/faust \
    SLEEPSTREAM_WEB_HOST=127.0.0.1
WORKDIR /var/lib/sleepstream
USER sleepstream:sleepstream
ENTRYPOINT ["sleepstream-entrypoint"]
CMD ["faust", "-A", "stream.app", "worker", "-l", "info"]
