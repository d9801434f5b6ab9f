"""Response headers, the proxy set-up, and personal data kept out of the logs.

Every response carries a strict Content-Security-Policy (no inline scripts or styles anywhere:
templates load /static files only; the one exception is the newsroom's accent colour, a
one-line <style> allowed by its SHA-256 hash), frame-ancestors 'none', nosniff, a same-origin referrer
policy and a Permissions-Policy that turns off the browser features we never use. Production
adds HSTS. A form whose POST redirects to Stripe Checkout needs Stripe's host in form-action
(browsers apply form-action to the redirect too), so only the gift pages allow it, and only when
the Stripe gateway is on; likewise the Billing Portal's host on the member's page. The CAPTCHA
provider's hosts are allowed only when a CAPTCHA is on.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface
from flask.wrappers import Response
from itsdangerous import URLSafeTimedSerializer
from werkzeug.middleware.proxy_fix import ProxyFix

from donations.newsroom import current_look

STRIPE_CHECKOUT_ORIGIN = "https://checkout.stripe.com"
BILLING_PORTAL_ORIGIN = "https://billing.stripe.com"
# The member's page, whose buttons post to a view that redirects to Stripe's Billing Portal.
BILLING_PORTAL_FORM_ENDPOINTS = ("membership.account",)
# Endpoints (blueprint prefixes) whose forms post to a view that redirects to Stripe Checkout.
STRIPE_FORM_ENDPOINT_PREFIXES = ("giving.",)
CAPTCHA_ENDPOINT_PREFIXES = ("giving.",)
# The one page other sites may frame: only from EMBED_ORIGINS (and our own staff preview).
EMBED_ENDPOINT = "embed.box"
# The staff page that previews the embed in a frame of our own.
FRAMES_SELF_ENDPOINTS = ("embed_staff.snippets",)

PERMISSIONS_POLICY = (
    "accelerometer=(), autoplay=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), "
    "magnetometer=(), microphone=(), midi=(), payment=(), usb=(), interest-cohort=()"
)
PROXY_FIX_KEYS = ("for", "proto", "host", "port", "prefix")


def init_app(app: Flask) -> None:
    app.session_interface = SigningSessionInterface()
    _install_proxy_fix(app)
    install_log_redaction()
    app.after_request(_secure_headers)


class SigningSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the signer built once per set of keys: Flask builds
    it twice a request, and itsdangerous test-serializes a value each time (bench/, part 1).

    Stripe's webhook deliveries get no session: a machine posting signed JSON sends no cookie
    and must be given none, and reading and saving one is a good part of what a delivery
    costs (bench/FINDINGS.md): they are answered in front of Flask (operations.acknowledge)."""

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            return None
        keys = (*(app.config["SECRET_KEY_FALLBACKS"] or ()), app.secret_key)  # the current key last
        return _signing_serializer(self, keys)


@functools.lru_cache(maxsize=8)
def _signing_serializer(interface: SigningSessionInterface, keys: tuple[str | bytes, ...]) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(
        [key.encode() if isinstance(key, str) else key for key in keys],  # as itsdangerous would
        salt=interface.salt,
        serializer=interface.serializer,
        signer_kwargs={"key_derivation": interface.key_derivation, "digest_method": interface.digest_method},
    )


def _install_proxy_fix(app: Flask) -> None:
    """Trust X-Forwarded-* only as many hops deep as configured (0: not at all). Behind one
    load balancer, PROXY_FIX_X_FOR=1 and PROXY_FIX_X_PROTO=1; never set them on an app that
    clients reach directly, or any client could choose its own address (and rate-limit key)."""
    counts = {key: int(app.config.get(f"PROXY_FIX_X_{key.upper()}") or 0) for key in PROXY_FIX_KEYS}
    if any(counts.values()):
        # Flask's documented way to wrap its WSGI app, though its types make wsgi_app a method.
        app.wsgi_app = ProxyFix(app.wsgi_app, **{f"x_{key}": n for key, n in counts.items()})  # type: ignore[method-assign]


def content_security_policy(config: Mapping[str, Any], endpoint: str | None) -> str:
    endpoint = endpoint or ""
    captcha = (config.get("CAPTCHA_PROVIDER") or "").strip().lower()
    stripe = config.get("PAYMENTS_GATEWAY") == "stripe"
    embed = endpoint == EMBED_ENDPOINT
    return _policy(
        stripe_form=stripe and endpoint.startswith(STRIPE_FORM_ENDPOINT_PREFIXES),
        portal_form=stripe and endpoint in BILLING_PORTAL_FORM_ENDPOINTS,
        captcha=captcha if captcha and endpoint.startswith(CAPTCHA_ENDPOINT_PREFIXES) else "",
        frame_ancestors=("'self'", *config.get("EMBED_ORIGINS", ())) if embed else ("'none'",),
        frames_self=endpoint in FRAMES_SELF_ENDPOINTS,
    )


@functools.cache
def _policy(
    *,
    stripe_form: bool,
    portal_form: bool = False,
    captcha: str,
    frame_ancestors: tuple[str, ...] = ("'none'",),
    frames_self: bool = False,
) -> str:
    # A handful of distinct policies per process: built once each, not on every response.
    from donations.protection.card_testing import CAPTCHA_PROVIDERS

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
    if portal_form:
        form_action.append(BILLING_PORTAL_ORIGIN)
    if frames_self:
        frame_src = ["'self'"]
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
        "frame-ancestors": list(frame_ancestors),
        "form-action": form_action,
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def fixed_headers(config: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The headers every response carries as they are (HSTS in production)."""
    production = config.get("CONFIG_NAME") == "production"
    return _fixed_headers(int(config["HSTS_MAX_AGE"]) if production else None)


@functools.cache
def _fixed_headers(hsts_max_age: int | None) -> tuple[tuple[str, str], ...]:
    # The same on every response (no view sets them): added as they are, not checked one by one.
    fixed = [
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "same-origin"),  # our URLs carry session ids and resume tokens
        ("Permissions-Policy", PERMISSIONS_POLICY),
        ("Cross-Origin-Opener-Policy", "same-origin"),
    ]
    if hsts_max_age is not None:
        fixed.append(("Strict-Transport-Security", f"max-age={hsts_max_age}; includeSubDomains"))
    return tuple(fixed)


def _secure_headers(response: Response) -> Response:
    from flask import current_app

    config = current_app.config
    headers = response.headers
    # A view may set its own policy (the membership page's form posts elsewhere).
    policy = content_security_policy(config, request.endpoint)
    if response.mimetype == "text/html" and (look := current_look()).accent:
        # The newsroom's accent colour, the one inline style a page may carry, allowed by its hash
        # (a gift page served from its cache was not rendered now: the look is asked here).
        policy = policy.replace("style-src 'self'", f"style-src 'self' {look.accent_css_hash}", 1)
    headers.setdefault("Content-Security-Policy", policy)
    headers.extend(fixed_headers(config))
    if request.endpoint == EMBED_ENDPOINT:
        # Framed by the allowed articles: CSP frame-ancestors says by whom, not X-Frame-Options.
        del headers["X-Frame-Options"]
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
    if not isinstance(previous, _RedactingFactory):
        logging.setLogRecordFactory(_RedactingFactory(previous))


class _RedactingFactory:
    """A log record factory that redacts what the one before it makes."""

    def __init__(self, previous: Callable[..., logging.LogRecord]) -> None:
        self.previous = previous

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.previous(*args, **kwargs)
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
