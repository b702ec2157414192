# The Hello World service image. Built by `cdk deploy` as a CDK Docker image asset.
#checkov:skip=CKV_DOCKER_2:Kubernetes ignores a HEALTHCHECK; the pod's startup, liveness (/livez) and readiness (/readyz) probes do that (cdk_app/manifests.py)
# The base pinned by digest (the tag's multi-platform index): where it was read, and what is
# unverified, in tests/data/upstream.json ("base_image"). Dependabot proposes new digests.
FROM python:3.13.9-slim-bookworm@sha256:e05bf925725f95d288124c1fcf276078b87556bf378c9e5458589b5cc5b32245

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Every package the service runs, resolved and hashed (service/requirements.lock, `make lock`):
# pip refuses anything else.
COPY service/requirements.lock service/requirements.lock
RUN pip install --no-cache-dir --require-hashes --no-deps --requirement service/requirements.lock
COPY service/ service/
# Bytecode is compiled at build time: the root filesystem is read-only at run time.
RUN python -m compileall -q service \
    && groupadd --system --gid 10001 app \
    && useradd --system --no-log-init --uid 10001 --gid app --no-create-home app

# Non-root by number, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
# service.settings.PORT; tests/test_dockerfile.py keeps them equal.
EXPOSE 8080
STOPSIGNAL SIGTERM
# Exec form: python is PID 1 and receives SIGTERM itself (service/server.py drains on it).
ENTRYPOINT ["python", "-m", "service"]
