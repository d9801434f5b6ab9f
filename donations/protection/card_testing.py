"""Card-testing defences for the public forms.

Card testers use a donation form to find out which stolen card numbers work: many small
checkouts from one address, or for one email, most of them declined. Against that:

- rate limits on opening checkouts (POST /give), per client address and per email
  (GIVE_RATE_LIMIT; in the limiter's storage, Redis when REDIS_URL is set so that every app
  instance shares them). Only checkouts the view is about to open count: a form refused for a
  typo costs nothing. GET is never limited, the webhook is exempt;
- the honeypot field bots fill in (the view answers as if all were well and records nothing);
- the minimum amount (GIFT_MINIMUM_CENTS, checked by the gift service);
- a cool-down after repeated declines from one address, email or card (DECLINE_COOLDOWN,
  e.g. "3 per 30 minutes": after a third decline within 30 minutes, new checkouts from that
  address or email, and payments with that card, wait until the oldest decline ages out);
- an optional CAPTCHA (Cloudflare Turnstile or hCaptcha), verified on the server.

Every blocked attempt is logged (its reason and endpoint only: no address, email or card) and
counted per minute in `blocked_attempts`, which the staff dashboard reads through
`blocked_attempt_counts`. Rate-limit keys are keyed hashes (HMAC with SECRET_KEY) of the
address, email or card, so neither Redis nor the limiter's own log lines hold them in clear.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import logging
import math
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask, current_app, render_template, request
from flask.wrappers import Response
from limits import RateLimitItem, parse, parse_many
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import String, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column

from config import ConfigurationError
from donations.clock import utcnow, wait_in_words
from donations.extensions import Base, db, limiter

log = logging.getLogger(__name__)

# Views that open a checkout at the gateway: guarded (cool-down, CAPTCHA).
CHECKOUT_ENDPOINTS = ("giving.give",)
LOCAL_CHECKOUT_ENDPOINT = "payments.local_checkout"
HONEYPOT_FIELD = "website"


class BlockReason(enum.StrEnum):
    RATE_LIMIT_ADDRESS = "rate_limit_address"
    RATE_LIMIT_EMAIL = "rate_limit_email"
    HONEYPOT = "honeypot"
    DECLINE_COOLDOWN = "decline_cooldown"
    CAPTCHA = "captcha"

    @property
    def label(self) -> str:
        """What staff read on the dashboard."""
        return BLOCK_REASON_LABELS[self]


BLOCK_REASON_LABELS = {
    BlockReason.RATE_LIMIT_ADDRESS: "Too many checkouts from one address",
    BlockReason.RATE_LIMIT_EMAIL: "Too many checkouts for one email",
    BlockReason.DECLINE_COOLDOWN: "Paused after repeated declines",
    BlockReason.HONEYPOT: "Bot filled in the hidden field",
    BlockReason.CAPTCHA: "CAPTCHA not solved",
}


class BlockedAttempt(Base):
    """How many attempts were blocked, per reason and minute (no personal data)."""

    __tablename__ = "blocked_attempts"

    reason: Mapped[str] = mapped_column(String(40), primary_key=True)
    minute: Mapped[datetime] = mapped_column(primary_key=True, index=True)  # UTC, truncated
    count: Mapped[int] = mapped_column(default=0)


# -- counting blocked attempts -----------------------------------------------------------------


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def record_blocked(reason: BlockReason) -> None:
    """Log and count one blocked attempt. Best effort: a database outage must not turn a
    refusal into an error page, so a failed count is only logged."""
    log.warning("blocked attempt: %s at %s", reason.value, request.endpoint)
    insert = postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert
    table = BlockedAttempt.__table__
    statement = insert(table).values(reason=reason.value, minute=_minute(utcnow()), count=1)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.reason, table.c.minute], set_={"count": table.c.count + 1}
    )
    try:
        # Its own connection and transaction: nothing of the request's is committed with it.
        with db.engine.begin() as connection:
            connection.execute(statement)
    except SQLAlchemyError as exc:
        log.error("could not count a blocked attempt: %s", type(exc).__name__)


def blocked_attempt_counts(since: datetime) -> dict[BlockReason, int]:
    """Blocked attempts per reason from the minute containing `since` on (the database sums)."""
    rows = db.session.execute(
        select(BlockedAttempt.reason, func.sum(BlockedAttempt.count))
        .where(BlockedAttempt.minute >= _minute(since))
        .group_by(BlockedAttempt.reason)
    ).all()
    return {BlockReason(reason): int(total) for reason, total in rows}


# -- keys ------------------------------------------------------------------------------------


def pseudonym(kind: str, value: str) -> str:
    """A stable keyed hash of an address, email or card: usable as a key, useless to a reader."""
    secret = str(current_app.config["SECRET_KEY"]).encode()
    digest = hmac.new(secret, f"{kind}:{value.strip().casefold()}".encode(), hashlib.sha256).hexdigest()
    return f"{kind}:{digest[:32]}"


def local_card_fingerprint(card_number: str) -> str:
    """The local gateway's stand-in for Stripe's card fingerprint."""
    return pseudonym("card-number", card_number)


def _address_key() -> str:
    return pseudonym("address", request.remote_addr or "unknown")


def _email_key() -> str:
    # A blank email shares one key: such a post is refused by the form anyway.
    return pseudonym("email", request.form.get("email", "")[:320])


# -- rate limits on opening checkouts and sending links ---------------------------------------
#
# Counted by the view at the moment it is about to act (open a checkout at the gateway, queue a
# link), after the form was accepted: a reader's typos cost nothing. Test and hit are one atomic
# step per key in the limiter's storage, so concurrent posts cannot all slip under the limit.


def _limit_ids(scope: str, key: str) -> tuple[str, ...]:
    prefix = current_app.config.get("RATELIMIT_KEY_PREFIX") or ""
    return (prefix, scope, key) if prefix else (scope, key)


def spend(limit: str, keys: Mapping[str, BlockReason | None]) -> int:
    """Count one use against `limit` ("10 per minute;50 per hour") for each key, or, when a key
    has none left, count nothing, record the refusal and return the seconds until it has (> 0)."""
    strategy = MovingWindowRateLimiter(limiter.storage)
    checks = [(item, key, reason) for key, reason in keys.items() for item in parse_many(limit)]
    spent = [(item, key, reason) for item, key, reason in checks if not strategy.test(item, *_limit_ids("limit", key))]
    if not spent:
        # hit() refuses (atomically) what a concurrent request used up since the test.
        spent = [
            (item, key, reason) for item, key, reason in checks if not strategy.hit(item, *_limit_ids("limit", key))
        ]
    wait = 0
    for item, key, _reason in spent:
        reset_at, _remaining = strategy.get_window_stats(item, *_limit_ids("limit", key))
        wait = max(wait, math.ceil(reset_at - time.time()), 1)
    for reason in dict.fromkeys(reason for _item, _key, reason in spent if reason):
        record_blocked(reason)
    return wait


def spend_checkout() -> int:
    """Count a checkout about to be opened against the address and the email (GIVE_RATE_LIMIT);
    0, or the seconds to wait."""
    return spend(
        current_app.config["GIVE_RATE_LIMIT"],
        {_address_key(): BlockReason.RATE_LIMIT_ADDRESS, _email_key(): BlockReason.RATE_LIMIT_EMAIL},
    )


def spend_link_request() -> int:
    """Count a membership link request about to be sent against the address (MAGIC_LINK_RATE_LIMIT)."""
    return spend(
        current_app.config["MAGIC_LINK_RATE_LIMIT"], {pseudonym("link-address", request.remote_addr or ""): None}
    )


def too_many_message(wait: int, nothing_done: str) -> str:
    return (
        f"Too many attempts from here in a short time. {nothing_done} Please wait {wait_in_words(wait)}, "
        "then send the form again: what you typed is still here."
    )


# -- decline cool-down ---------------------------------------------------------------------------


def _decline_item() -> RateLimitItem:
    return parse(current_app.config["DECLINE_COOLDOWN"])


def _decline_keys(address: str | None, email: str | None, card: str | None) -> list[str]:
    keys = []
    if address:
        keys.append(pseudonym("address", address))
    if email:
        keys.append(pseudonym("email", email))
    if card:
        keys.append(pseudonym("card", card))
    return keys


def _decline_ids(key: str) -> tuple[str, ...]:
    prefix = current_app.config.get("RATELIMIT_KEY_PREFIX") or ""
    return (prefix, "declines", key) if prefix else ("declines", key)


def record_decline(*, address: str | None = None, email: str | None = None, card: str | None = None) -> None:
    """Count one declined payment against the address, email and card (fingerprint) it came from."""
    strategy = MovingWindowRateLimiter(limiter.storage)
    item = _decline_item()
    for key in _decline_keys(address, email, card):
        strategy.hit(item, *_decline_ids(key))
    log.info("card declined: counted towards the cool-down")


def cooldown_seconds(*, address: str | None = None, email: str | None = None, card: str | None = None) -> int:
    """0 when none of these has had too many declines lately; else seconds until one may retry."""
    strategy = MovingWindowRateLimiter(limiter.storage)
    item = _decline_item()
    wait = 0
    for key in _decline_keys(address, email, card):
        ids = _decline_ids(key)
        if not strategy.test(item, *ids):
            reset_at, _remaining = strategy.get_window_stats(item, *ids)
            wait = max(wait, math.ceil(reset_at - time.time()), 1)
    return wait


def _cooldown_response(wait: int) -> Response:
    message = (
        "Several card payments from here were declined in a short time. To protect cardholders "
        f"from fraud, new payments are paused for {wait_in_words(wait)}. Please try again then, or write to "
        f"{current_app.config['NEWSROOM_CONTACT']}."
    )
    response = current_app.make_response((render_template("errors/error.html", code=429, message=message), 429))
    response.headers["Retry-After"] = str(wait)
    return response


# -- CAPTCHA ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaptchaProvider:
    name: str
    script_url: str
    widget_class: str
    response_field: str  # the form field the widget fills with its token
    verify_url: str
    script_sources: tuple[str, ...]
    style_sources: tuple[str, ...]
    frame_sources: tuple[str, ...]
    connect_sources: tuple[str, ...]


CAPTCHA_PROVIDERS = {
    # developers.cloudflare.com/turnstile (client-side rendering; server-side validation)
    "turnstile": CaptchaProvider(
        name="turnstile",
        script_url="https://challenges.cloudflare.com/turnstile/v0/api.js",
        widget_class="cf-turnstile",
        response_field="cf-turnstile-response",
        verify_url="https://challenges.cloudflare.com/turnstile/v0/siteverify",
        script_sources=("https://challenges.cloudflare.com",),
        style_sources=(),
        frame_sources=("https://challenges.cloudflare.com",),
        connect_sources=(),
    ),
    # docs.hcaptcha.com (configuration; content security policy settings)
    "hcaptcha": CaptchaProvider(
        name="hcaptcha",
        script_url="https://js.hcaptcha.com/1/api.js",
        widget_class="h-captcha",
        response_field="h-captcha-response",
        verify_url="https://api.hcaptcha.com/siteverify",
        script_sources=("https://hcaptcha.com", "https://*.hcaptcha.com"),
        style_sources=("https://hcaptcha.com", "https://*.hcaptcha.com"),
        frame_sources=("https://hcaptcha.com", "https://*.hcaptcha.com"),
        connect_sources=("https://hcaptcha.com", "https://*.hcaptcha.com"),
    ),
}


def captcha_provider(config: Mapping[str, Any]) -> CaptchaProvider | None:
    name = (config.get("CAPTCHA_PROVIDER") or "").strip().lower()
    return CAPTCHA_PROVIDERS[name] if name else None


class CaptchaUnavailable(RuntimeError):
    pass


def verify_captcha(token: str, remote_addr: str | None) -> bool:
    """Ask the provider whether `token` is a solved challenge. Raises CaptchaUnavailable when
    the provider cannot be asked; the caller then refuses (it fails closed)."""
    config = current_app.config
    provider = captcha_provider(config)
    assert provider is not None
    if not token or len(token) > 4096:
        return False
    url = config.get("CAPTCHA_VERIFY_URL") or provider.verify_url
    fields = {"secret": config["CAPTCHA_SECRET"], "response": token, "sitekey": config["CAPTCHA_SITE_KEY"]}
    if remote_addr:
        fields["remoteip"] = remote_addr
    if urllib.parse.urlsplit(url).scheme not in ("https", "http"):
        raise CaptchaUnavailable("CAPTCHA_VERIFY_URL is not an http(s) address")
    body = urllib.parse.urlencode(fields).encode()
    # Safe to open: the scheme is checked just above (never file: or a custom one).
    verify = urllib.request.Request(url, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"})  # noqa: S310
    try:
        with urllib.request.urlopen(verify, timeout=config["CAPTCHA_TIMEOUT_SECONDS"]) as answer:  # noqa: S310  # nosec B310
            result = json.loads(answer.read(65536))
    except (OSError, ValueError) as exc:  # URLError and time-outs are OSErrors; bad JSON a ValueError
        raise CaptchaUnavailable(type(exc).__name__) from exc
    return isinstance(result, dict) and result.get("success") is True


def _captcha_refusal(status: int, message: str) -> Response:
    return current_app.make_response((render_template("errors/error.html", code=status, message=message), status))


def _check_captcha() -> Response | None:
    provider = captcha_provider(current_app.config)
    if provider is None:
        return None
    try:
        solved = verify_captcha(request.form.get(provider.response_field, ""), request.remote_addr)
    except CaptchaUnavailable as exc:
        log.error("CAPTCHA verification unavailable: %s", exc)
        return _captcha_refusal(
            503, "We couldn't check that you are a person just now. Nothing was charged; please try again in a minute."
        )
    if solved:
        return None
    record_blocked(BlockReason.CAPTCHA)
    return _captcha_refusal(
        400,
        "Please complete the check that you are a person (just above the button), then send the form again. "
        "Your browser's Back button returns to the form as you left it.",
    )


# -- the guard on public posts -------------------------------------------------------------------


def _guard_public_posts() -> Response | None:
    """Runs before the view (after the CSRF check) on every POST to a public form."""
    if request.method != "POST" or not request.endpoint:
        return None
    endpoint = request.endpoint
    if endpoint.startswith("staff.") or request.path.startswith("/staff"):
        return None
    if request.form.get(HONEYPOT_FIELD):
        record_blocked(BlockReason.HONEYPOT)  # the view itself answers as if all were well
        return None
    if endpoint in CHECKOUT_ENDPOINTS:
        wait = cooldown_seconds(address=request.remote_addr, email=request.form.get("email") or None)
        if wait:
            record_blocked(BlockReason.DECLINE_COOLDOWN)
            return _cooldown_response(wait)
        return _check_captcha()
    if endpoint == LOCAL_CHECKOUT_ENDPOINT:
        digits = "".join(ch for ch in request.form.get("card_number", "")[:64] if ch.isdigit())
        wait = cooldown_seconds(address=request.remote_addr, card=local_card_fingerprint(digits) if digits else None)
        if wait:
            record_blocked(BlockReason.DECLINE_COOLDOWN)
            return _cooldown_response(wait)
    return None


def _captcha_context() -> dict[str, Any]:
    provider = captcha_provider(current_app.config)
    return {"captcha": provider, "captcha_site_key": current_app.config.get("CAPTCHA_SITE_KEY")}


def _check_config(config: Mapping[str, Any]) -> None:

    parse_many(config["GIVE_RATE_LIMIT"])
    parse_many(config["MAGIC_LINK_RATE_LIMIT"])
    parse(config["DECLINE_COOLDOWN"])
    name = (config.get("CAPTCHA_PROVIDER") or "").strip().lower()
    if not name:
        return
    if name not in CAPTCHA_PROVIDERS:
        raise ConfigurationError(f"CAPTCHA_PROVIDER must be one of {', '.join(sorted(CAPTCHA_PROVIDERS))}")
    if not (config.get("CAPTCHA_SITE_KEY") and config.get("CAPTCHA_SECRET")):
        raise ConfigurationError("a CAPTCHA needs CAPTCHA_SITE_KEY and CAPTCHA_SECRET")
    url = config.get("CAPTCHA_VERIFY_URL") or CAPTCHA_PROVIDERS[name].verify_url
    if urllib.parse.urlsplit(url).scheme not in ("https", "http"):
        raise ConfigurationError("CAPTCHA_VERIFY_URL must be an http(s) address")


def init_app(app: Flask) -> None:
    """Call after the blueprints are registered (the limits wrap their views)."""
    _check_config(app.config)
    app.before_request(_guard_public_posts)
    app.context_processor(_captcha_context)
