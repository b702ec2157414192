# The Hello World service image. Built by `cdk deploy` as a CDK Docker image asset.
FROM python:3.13.9-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY service/requirements.txt service/requirements.txt
RUN pip install --no-cache-dir --requirement service/requirements.txt
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
