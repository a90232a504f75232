# cleaner: the batch cleanup daemon.
#
#   podman build -t cleaner .                                    # normal network
#   pip wheel . -w build/wheels && podman build --build-arg WHEELHOUSE=build/wheels \
#       --build-arg BASE_IMAGE=localhost/cleaner-py-base:bookworm -t cleaner .   # offline
#
# deploy/smoke/image-smoke.sh builds and runs it here, against the emulator.
# The base must be a Debian-like image with python3 (3.11+) and its venv module; the same
# base serves both stages, so the venv's interpreter path matches.

ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
# Optional: a directory in the build context holding wheels for cleaner and every
# dependency (pip wheel . -w DIR). When set, nothing is downloaded.
ARG WHEELHOUSE=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY . .
RUN python3 -m venv /opt/cleaner \
    && if [ -n "${WHEELHOUSE}" ]; then \
        /opt/cleaner/bin/pip install --no-index --find-links "/src/${WHEELHOUSE}" cleaner; \
    else \
        /opt/cleaner/bin/pip install /src; \
    fi \
    && /opt/cleaner/bin/pip uninstall --yes pip \
    && /opt/cleaner/bin/cleaner --version

FROM ${BASE_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="cleaner" \
      org.opencontainers.image.description="Deletes expired batches from the Anthropic Message Batches API" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="https://github.com/example/cleaner"
COPY --from=build /opt/cleaner /opt/cleaner
# No bytecode writes (the root filesystem is read-only; pip compiled it at build time).
ENV PATH=/opt/cleaner/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Any numeric UID works; no home, no shell needed. Kubernetes checks runAsNonRoot on it.
USER 10001:10001
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "cleaner.healthcheck"]
ENTRYPOINT ["cleaner"]
CMD ["run"]
