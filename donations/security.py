"""Response headers, the proxy set-up, and personal data kept out of the logs.

Every response carries a strict Content-Security-Policy (no inline scripts or styles anywhere:
templates load /static files only), frame-ancestors 'none', nosniff, a same-origin referrer
policy and a Permissions-Policy that turns off the browser features we never use. Production
adds HSTS. A form whose POST redirects to Stripe Checkout needs Stripe's host in form-action
(browsers apply form-action to the redirect too), so only the gift pages allow it, and only when
the Stripe gateway is on; the CAPTCHA provider's hosts are allowed only when a CAPTCHA is on.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from typing import Any

from flask import Flask, request
from flask.wrappers import Response
from werkzeug.middleware.proxy_fix import ProxyFix

STRIPE_CHECKOUT_ORIGIN = "https://checkout.stripe.com"
# Endpoints (blueprint prefixes) whose forms post to a view that redirects to Stripe Checkout.
STRIPE_FORM_ENDPOINT_PREFIXES = ("giving.",)
CAPTCHA_ENDPOINT_PREFIXES = ("giving.",)

PERMISSIONS_POLICY = (
    "accelerometer=(), autoplay=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), "
    "magnetometer=(), microphone=(), midi=(), payment=(), usb=(), interest-cohort=()"
)
PROXY_FIX_KEYS = ("for", "proto", "host", "port", "prefix")


def init_app(app: Flask) -> None:
    _install_proxy_fix(app)
    install_log_redaction()
    app.after_request(_secure_headers)


def _install_proxy_fix(app: Flask) -> None:
    """Trust X-Forwarded-* only as many hops deep as configured (0: not at all). Behind one
    load balancer, PROXY_FIX_X_FOR=1 and PROXY_FIX_X_PROTO=1; never set them on an app that
    clients reach directly, or any client could choose its own address (and rate-limit key)."""
    counts = {key: int(app.config.get(f"PROXY_FIX_X_{key.upper()}") or 0) for key in PROXY_FIX_KEYS}
    if any(counts.values()):
        app.wsgi_app = ProxyFix(app.wsgi_app, **{f"x_{key}": n for key, n in counts.items()})  # type: ignore[method-assign]


def content_security_policy(config: Mapping[str, Any], endpoint: str | None) -> str:
    endpoint = endpoint or ""
    captcha = (config.get("CAPTCHA_PROVIDER") or "").strip().lower()
    return _policy(
        stripe_form=config.get("PAYMENTS_GATEWAY") == "stripe" and endpoint.startswith(STRIPE_FORM_ENDPOINT_PREFIXES),
        captcha=captcha if captcha and endpoint.startswith(CAPTCHA_ENDPOINT_PREFIXES) else "",
    )


@functools.cache
def _policy(*, stripe_form: bool, captcha: str) -> str:
    # A handful of distinct policies per process: built once each, not on every response.
    from donations.giving.protection import CAPTCHA_PROVIDERS

    script_src = ["'self'"]
    style_src = ["'self'"]
    frame_src = ["'none'"]
    connect_src = ["'self'"]
    form_action = ["'self'"]
    if captcha:
        provider = CAPTCHA_PROVIDERS[captcha]
        script_src += provider.script_sources
        style_src += provider.style_sources
        frame_src = list(provider.frame_sources)
        connect_src += provider.connect_sources
    if stripe_form:
        form_action.append(STRIPE_CHECKOUT_ORIGIN)
    directives = {
        "default-src": ["'self'"],
        "script-src": script_src,
        "style-src": style_src,
        "img-src": ["'self'"],
        "font-src": ["'self'"],
        "connect-src": connect_src,
        "frame-src": frame_src,
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": form_action,
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def _secure_headers(response: Response) -> Response:
    from flask import current_app

    config = current_app.config
    headers = response.headers
    headers.setdefault("Content-Security-Policy", content_security_policy(config, request.endpoint))
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")  # our URLs carry session ids and resume tokens
    headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if config.get("CONFIG_NAME") == "production":
        headers.setdefault("Strict-Transport-Security", f"max-age={int(config['HSTS_MAX_AGE'])}; includeSubDomains")
    if request.path.startswith("/staff"):
        # Donors' personal data: never kept in a shared or browser cache.
        headers.setdefault("Cache-Control", "no-store")
    return response


# -- personal data out of the logs -------------------------------------------------------------

EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# 13-19 digits, optionally grouped: a card number should never reach us, but if one does, not the logs.
CARD_NUMBER = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")


def redact(text: str) -> str:
    return CARD_NUMBER.sub("[card redacted]", EMAIL.sub("[email redacted]", text))


_exception_formatter = logging.Formatter()


def install_log_redaction() -> None:
    """Redact email addresses and card-like numbers from every log record this process makes.

    Done in the record factory, not a handler filter, so that it covers every logger and every
    handler (gunicorn's, a test's, one added later), and the exception text too: database
    errors quote the parameters of the failing statement.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacts_personal_data", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed call: leave it to logging's own error path
            return record
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact(_exception_formatter.formatException(record.exc_info))
        return record

    factory.redacts_personal_data = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
