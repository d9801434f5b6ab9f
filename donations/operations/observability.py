"""Logs, request timing and error tracking.

- Every request gets an id (a valid incoming `X-Request-ID`, else a new one), returned in the
  response's `X-Request-ID` and put on every log record made while it is handled.
- `LOG_FORMAT=json`: one JSON object per log line (time, level, logger, message, request id,
  and for each request its route, method, status and duration); the app logs each request.
  Donor data stays out: email addresses and card-like numbers are redacted from every record
  (`security.install_log_redaction`), and the access line names the route, never the path.
- `SENTRY_DSN`: errors go to Sentry through `sentry-sdk`'s Flask integration, without personal
  data (no IP addresses, cookies, headers, bodies or query strings; messages redacted).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import uuid
from datetime import UTC, datetime
from time import perf_counter
from typing import Any

from flask import Flask, Response, g, has_app_context, request
from prometheus_client import Counter, Histogram

from donations.operations import metrics
from donations.security import redact

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
access_log = logging.getLogger("donations.requests")


class RequestContextFilter(logging.Filter):
    """Puts the current request's id on each record (none outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            # An app context, not only a request's: the webhook is answered in one (acknowledge.py).
            record.request_id = g.get("request_id") if has_app_context() else None
        return True


class JsonFormatter(logging.Formatter):
    FIELDS = ("request_id", "route", "method", "status", "duration_ms", "event_id", "job")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in self.FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(log_format: str | None) -> None:
    """Root logging for the app's processes: JSON lines when asked, else plain text."""
    root = logging.getLogger()
    if any(getattr(handler, "_donations", False) for handler in root.handlers):
        return
    handler = logging.StreamHandler()
    handler._donations = True  # type: ignore[attr-defined]
    handler.addFilter(RequestContextFilter())
    if (log_format or "").lower() == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def init_app(app: Flask) -> None:
    json_logs = str(app.config.get("LOG_FORMAT") or "").lower() == "json"
    if json_logs:
        configure_logging("json")

    @app.before_request
    def start_timer() -> None:
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        g.request_started = perf_counter()

    @app.after_request
    def time_request(response: Response) -> Response:
        started = g.get("request_started")
        if started is None:
            return response
        duration = perf_counter() - started
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        request_seconds(request.method, route, response.status_code).observe(duration)
        response.headers["X-Request-ID"] = g.request_id
        if json_logs:
            access_log.info(
                "%s %s %s",
                request.method,
                route,
                response.status_code,
                extra={
                    "route": route,
                    "method": request.method,
                    "status": response.status_code,
                    "duration_ms": round(duration * 1000, 2),
                },
            )
        return response

    if app.config.get("SENTRY_DSN"):
        init_sentry(app)


# Each series' child looked up once, not on every request: prometheus-client's labels() checks
# and converts the values and takes a lock each time. Bounded (routes, methods, statuses).
@functools.lru_cache(maxsize=2048)
def request_seconds(method: str, route: str, status: int) -> Histogram:
    return metrics.REQUEST_SECONDS.labels(method, route, str(status))


@functools.lru_cache(maxsize=64)
def webhook_deliveries(outcome: str) -> Counter:
    return metrics.WEBHOOK_DELIVERIES.labels(outcome)


def init_sentry(app: Flask) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration

    sentry_sdk.init(
        dsn=app.config["SENTRY_DSN"],
        integrations=[FlaskIntegration()],
        send_default_pii=False,
        environment=app.config["CONFIG_NAME"],
        before_send=scrub_event,  # type: ignore[arg-type]
        traces_sample_rate=0.0,
    )


SENSITIVE_HEADERS = {"authorization", "cookie", "stripe-signature", "x-forwarded-for", "x-real-ip"}


def scrub_event(event: dict[str, Any], _hint: dict[str, Any]) -> dict[str, Any]:
    """No personal data leaves for Sentry: no user, no body, cookies, query string or
    identifying headers; email addresses and card numbers redacted from every string."""
    event.pop("user", None)
    req = event.get("request")
    if isinstance(req, dict):
        for key in ("data", "cookies", "query_string", "env"):
            req.pop(key, None)
        headers = req.get("headers")
        if isinstance(headers, dict):
            req["headers"] = {k: v for k, v in headers.items() if k.lower() not in SENSITIVE_HEADERS}
    return _redact_strings(event)


def _redact_strings(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redact_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redact_strings(item) for item in value]
    return value
