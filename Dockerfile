# The app's image: gunicorn serving wsgi:app; the same image runs the worker
# (`flask --app wsgi worker`) and one-off commands (`flask --app wsgi db upgrade`).
# Build: docker build -t donations .   (compose.yaml builds and runs it with its services)
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DONATIONS_CONFIG=production \
    WORKER_IN_APP=false \
    LOG_FORMAT=json

WORKDIR /app

# The locked run-time requirements only (no test tools): every version pinned, binary wheels.
COPY requirements-production.lock ./
RUN pip install --only-binary=:all: -r requirements-production.lock

# A user of its own: the app cannot write its code, only instance/ (SQLite, mail files).
RUN groupadd --system --gid 10001 donations \
    && useradd --system --uid 10001 --gid donations --home-dir /app --shell /usr/sbin/nologin donations
COPY --chown=root:root config.py wsgi.py gunicorn.conf.py ./
COPY --chown=root:root donations ./donations
COPY --chown=root:root templates ./templates
COPY --chown=root:root migrations ./migrations
RUN mkdir -p /app/instance && chown donations:donations /app/instance
USER donations

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"

# gunicorn reads gunicorn.conf.py (workers, timeouts, logs to stdout); WEB_CONCURRENCY overrides workers.
ENTRYPOINT ["gunicorn"]
CMD ["--config", "gunicorn.conf.py", "wsgi:app"]
