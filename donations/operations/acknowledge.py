"""Stripe's webhook deliveries, acknowledged in front of Flask.

POST /stripe/webhook is answered by a small WSGI endpoint wrapped around the app's own WSGI app:
Flask's request machinery (the app's before/after hooks, context locals, session, routing)
was about half of what a delivery cost (bench/FINDINGS.md). Every other request goes on to Flask.
What the endpoint keeps, as the app does for every request: the host check (TRUSTED_HOSTS), the
NUL-byte guard, the body size limit (WEBHOOK_MAX_CONTENT_LENGTH, 413 before the body is read),
the signature check and timestamp window, the exactly-once store (`events.receive_signed`), the
answers the app's error handlers give (400, 413, 503 with Retry-After when the database is down),
the security headers, a request id, the latency histogram and deliveries counter, and the JSON
access log line when LOG_FORMAT=json. It sets no session cookie and has no CSRF or rate limit
(Stripe signs each delivery; a forged one costs one HMAC to refuse).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable
from time import perf_counter
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from flask import Flask, g
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import InternalServerError, RequestEntityTooLarge, SecurityError
from werkzeug.wsgi import get_host, get_input_stream

from donations import errors, security
from donations.operations.observability import REQUEST_ID, access_log, request_seconds, webhook_deliveries
from donations.operations.worker import START_WORKER
from donations.payments import events, signing
from donations.payments.account_setup import WEBHOOK_PATH

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)
ENDPOINT = "payments.webhook"  # the name the security headers' policy is chosen by
Answer = tuple[int, bytes, str, str | None]


class WebhookEndpoint:
    """The WSGI app in front of Flask's: POST /stripe/webhook here, everything else there."""

    def __init__(self, app: Flask, wrapped: WSGIApplication) -> None:
        self.app = app
        self.wrapped = wrapped
        self.json_logs = str(app.config.get("LOG_FORMAT") or "").lower() == "json"

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != WEBHOOK_PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.wrapped(environ, start_response)
        started = perf_counter()
        given = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        # An app context (not a request context): the store reads the app's config and engine,
        # and log records made meanwhile carry the request id.
        with self.app.app_context():
            g.request_id = request_id
            start_worker: Callable[[], None] | None = self.app.extensions.get(START_WORKER)
            if start_worker is not None:
                start_worker()
            status, body, content_type, outcome = self._answer(environ)
            duration = perf_counter() - started
            request_seconds("POST", WEBHOOK_PATH, status).observe(duration)
            webhook_deliveries(outcome or f"refused_{status}").inc()
            if self.json_logs:
                access_log.info(
                    "POST %s %s",
                    WEBHOOK_PATH,
                    status,
                    extra={
                        "route": WEBHOOK_PATH,
                        "method": "POST",
                        "status": status,
                        "duration_ms": round(duration * 1000, 2),
                    },
                )
        headers = [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Content-Security-Policy", security.content_security_policy(self.app.config, ENDPOINT)),
            *security.fixed_headers(self.app.config),
            ("X-Request-ID", request_id),
        ]
        if status == 503:
            headers.append(("Retry-After", errors.RETRY_AFTER_SECONDS))
        start_response(f"{status} {_REASONS[status]}", headers)
        return [body]

    def _answer(self, environ: WSGIEnvironment) -> Answer:
        """Status, body, its content type, and the event's outcome for the counter if stored."""
        config = self.app.config
        if config.get("TRUSTED_HOSTS"):
            try:
                get_host(environ, config["TRUSTED_HOSTS"])
            except SecurityError:
                return 400, errors.UNTRUSTED_HOST_TEXT.encode(), "text/plain; charset=utf-8", None
        if "\x00" in unquote_plus(environ.get("QUERY_STRING", "")):
            return _json(400, error=errors.NUL_IN_ADDRESS)
        try:
            body = get_input_stream(environ, max_content_length=config["WEBHOOK_MAX_CONTENT_LENGTH"]).read()
        except RequestEntityTooLarge:
            return _json(413, error=errors.BODY_TOO_LARGE)
        mimetype = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
        if mimetype in errors.FORM_MIMETYPES and "\x00" in unquote_plus(body.decode("latin-1")):
            return _json(400, error=errors.NUL_IN_FORM)
        try:
            event, stored = events.receive_signed(body, environ.get("HTTP_STRIPE_SIGNATURE"))
        except signing.InvalidEvent as exc:
            return _json(400, error=str(exc))
        except DBAPIError as exc:
            status, message = errors.database_refusal(exc)
            return _json(status, error=message)
        except Exception:
            # A bug, as Flask would answer it: logged (Sentry takes error records too), then 500.
            log.exception("the webhook delivery failed")
            return _json(500, error=InternalServerError.description)
        status, answer, content_type, _ = _json(200, id=event["id"], received=stored.value)
        return status, answer, content_type, stored.value


def _json(status: int, **fields: Any) -> Answer:
    # As Flask's jsonify writes it outside debug mode: compact, one line.
    return status, (json.dumps(fields, separators=(",", ":")) + "\n").encode(), "application/json", None


_REASONS = {
    200: "OK",
    400: "BAD REQUEST",
    413: "REQUEST ENTITY TOO LARGE",
    500: "INTERNAL SERVER ERROR",
    503: "SERVICE UNAVAILABLE",
}


def init_app(app: Flask) -> None:
    """Put the endpoint in front of the app's WSGI app (inside any ProxyFix installed later, so
    the host it checks is the one the proxies were trusted to give)."""
    # Flask's documented way to wrap its WSGI app, though its types make wsgi_app a method.
    app.wsgi_app = WebhookEndpoint(app, app.wsgi_app)  # type: ignore[method-assign]
