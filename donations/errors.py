"""Error pages: a clear message and the right status, never a stack trace."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable

from flask import Flask, abort, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, SecurityError

from donations.clock import wait_in_words
from donations.extensions import db, limiter

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "30"
FORM_MIMETYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# Shared with the webhook's endpoint in front of Flask (operations.acknowledge).
UNTRUSTED_HOST_TEXT = "Bad request: this site is not served at that host name.\n"
NUL_IN_ADDRESS = "The address contains a character that is not allowed."
NUL_IN_FORM = "The form contains a character that is not allowed. Remove it and send the form again."
BODY_TOO_LARGE = "request body too large"
VALUE_REFUSED = "The request contains a value that can't be used. Check what you entered and try again."
DATABASE_UNAVAILABLE = "database unavailable, retry later"


def _wants_json() -> bool:
    return request.path.startswith("/stripe/") or request.path == "/healthz" or request.is_json


def _close_session(exc: BaseException | None) -> None:
    # Registered after Flask-SQLAlchemy's own teardown, so it runs first. A connection that died
    # after the answer was built would make the usual rollback fail and turn a finished request
    # into an error: drop that connection instead; the pool opens a fresh one next time.
    if not db.session.registry.has():
        return  # this request never used the database (a cached gift page)
    try:
        db.session.close()
    except DBAPIError as lost:
        log.warning("database connection lost while closing the session: %s", type(lost.orig).__name__)
        db.session().invalidate()  # the scoped proxy does not forward invalidate()


def _has_nul(values: Iterable[tuple[str, str]]) -> bool:
    return any("\x00" in key or "\x00" in value for key, value in values)


def _refuse_nul_bytes() -> None:
    """No address, query or form value we serve has a NUL byte; PostgreSQL cannot even compare
    one with text (it raises DataError). Refused here, before any view reads the value."""
    if "\x00" in request.path:
        abort(404)
    if _has_nul(request.args.items(multi=True)):
        abort(400, NUL_IN_ADDRESS)
    # Forms only: reading a JSON body (the webhook) here would fix its size limit too early.
    if request.mimetype in FORM_MIMETYPES and _has_nul(request.form.items(multi=True)):
        abort(400, NUL_IN_FORM)


def _is_outage(exc: DBAPIError) -> bool:
    return isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated


def database_refusal(exc: DBAPIError) -> tuple[int, str]:
    """Logs a database error and gives the status and message for it: 400 when the database
    refused a value, else 503 (nothing was written; the caller should retry)."""
    name = type(exc.orig).__name__ if exc.orig else type(exc).__name__
    if isinstance(exc, DataError):
        # The request's fault, not an outage, and a retry would fail the same way.
        log.warning("value refused by the database: %s", name)
        return 400, VALUE_REFUSED
    # The pool reconnects by itself (pre-ping); Stripe retries webhooks on any 5xx.
    if _is_outage(exc):
        log.error("database unavailable: %s", name)
    else:  # a conflict between concurrent requests, say: retrying is still right
        log.error("database error: %s", name)
    return 503, DATABASE_UNAVAILABLE


def register(app: Flask) -> None:
    app.teardown_appcontext(_close_session)
    app.before_request(_refuse_nul_bytes)

    @app.errorhandler(DBAPIError)
    def database_error(exc: DBAPIError) -> ResponseReturnValue:
        with contextlib.suppress(DBAPIError):
            db.session.rollback()
        status, message = database_refusal(exc)
        if status == 400:
            if _wants_json():
                return jsonify(error=message), 400
            return render_template("errors/error.html", code=400, message=message), 400
        headers = {"Retry-After": RETRY_AFTER_SECONDS}
        if _wants_json():
            return jsonify(error=message), 503, headers
        return render_template("errors/unavailable.html"), 503, headers

    @app.errorhandler(CSRFError)
    def csrf_failed(exc: CSRFError) -> ResponseReturnValue:
        message = "This form expired or was sent from elsewhere. Go back, reload the page and try again."
        return render_template("errors/error.html", code=400, message=message), 400

    @app.errorhandler(SecurityError)
    def untrusted_host(exc: SecurityError) -> ResponseReturnValue:
        # A Host outside TRUSTED_HOSTS: no URL can be built for it, so no page template either.
        return UNTRUSTED_HOST_TEXT, 400, {"Content-Type": "text/plain"}

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge) -> ResponseReturnValue:
        # Raised before the body is read (Content-Length above the limit) or while reading it.
        if _wants_json():
            return jsonify(error=BODY_TOO_LARGE), 413
        message = (
            "That was more than this form accepts, and nothing was saved. "
            "Go back, shorten what you typed and send it again."
        )
        return render_template("errors/error.html", code=413, message=message), 413

    @app.errorhandler(RateLimitExceeded)
    def rate_limited(exc: RateLimitExceeded) -> ResponseReturnValue:
        # Flask-Limiter's own text is the limit ("10 per 1 minute"); say how long to wait instead.
        current = limiter.current_limit
        wait = max(int(current.reset_at - time.time()), 1) if current else 60
        message = f"Too many attempts from here in a short time. Please wait {wait_in_words(wait)} and try again."
        if _wants_json():
            return jsonify(error=message), 429
        return render_template("errors/error.html", code=429, message=message), 429

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        if _wants_json():
            return jsonify(error=exc.description), exc.code or 500
        return render_template("errors/error.html", code=exc.code, message=exc.description), exc.code or 500
