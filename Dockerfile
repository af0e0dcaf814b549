# The filefleet worker image: what the Packer AMI preloads and what `docker compose` runs.
#
#   DOCKER_BUILDKIT=1 docker build -t filefleet .
#   docker run --network host --init --read-only --tmpfs /tmp -e SQS_QUEUE_URL=... filefleet
#
# BASE_IMAGE is Debian 12 slim from ECR Public, Python from the distribution (3.11). Tests build the very
# same recipe on a base made locally with debootstrap (no registry is reachable there).
ARG BASE_IMAGE=public.ecr.aws/docker/library/debian:bookworm-slim

FROM ${BASE_IMAGE} AS build
ARG DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008 # Debian stable moves only with security fixes: take them, do not pin them away
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY provisioning ./provisioning
# Wheels first (every dependency ships manylinux wheels: no compiler here either), then a venv from them.
# A TLS-intercepting proxy's CA can be lent as a build secret, which never lands in a layer:
#   --secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt
RUN --mount=type=secret,id=pip-ca,required=false \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
    && python3 -m venv /opt/filefleet \
    && /opt/filefleet/bin/pip wheel --no-cache-dir --wheel-dir /wheels . \
    && /opt/filefleet/bin/pip install --no-cache-dir --no-index --find-links /wheels filefleet \
    && /opt/filefleet/bin/pip uninstall -y pip setuptools \
    && /opt/filefleet/bin/python -m compileall -q /opt/filefleet

FROM ${BASE_IMAGE} AS runtime
ARG BASE_IMAGE
ARG DEBIAN_FRONTEND=noninteractive
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="filefleet" \
      org.opencontainers.image.description="SQS worker: files landing in S3 become searchable OpenSearch documents" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/filefleet/filefleet" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
# hadolint ignore=DL3008 # as above: Debian stable's security fixes are wanted
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 ca-certificates \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin filefleet
COPY --from=build /opt/filefleet /opt/filefleet
# PYTHONDONTWRITEBYTECODE: the bytecode is compiled at build time and the root filesystem may be read-only;
# everything the worker writes (spooled downloads, metrics, its state) goes to TMPDIR, a tmpfs.
ENV PATH=/opt/filefleet/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TMPDIR=/tmp \
    HEALTH_PORT=8080 \
    LOCAL_INDEX_PATH=/tmp/filefleet-index.sqlite3
USER 10001:10001
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('HEALTH_PORT', '8080') + '/healthz', timeout=4)"]
# Run it behind an init (`docker run --init`, compose `init: true`, the systemd unit): `filefleet run` passes
# signals on and reaps its children itself, but an init also reaps whatever else ends up orphaned.
CMD ["filefleet", "run"]
