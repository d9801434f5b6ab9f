"""gunicorn settings for the image, the Procfile and the systemd unit (`gunicorn -c gunicorn.conf.py wsgi:app`)."""

import multiprocessing
import os

bind = os.environ.get("BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"  # PORT: Heroku-style platforms
workers = int(os.environ.get("WEB_CONCURRENCY", min(2 * multiprocessing.cpu_count() + 1, 8)))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = 30
graceful_timeout = 30  # SIGTERM: requests in hand finish within this
keepalive = 5
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = None  # the app logs each request itself (LOG_FORMAT=json: one JSON line with its id)
errorlog = "-"
# Counters of several workers added up on /metrics (prometheus-client's multiprocess mode).
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):

    def child_exit(server, worker):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
