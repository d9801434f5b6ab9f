"""Configuration classes. Values come from the class, then from the environment (see
`load_environment`), then from the overrides passed to `create_app`. Nothing here is read by the
app at import time: `create_app` copies it into `app.config`."""

from __future__ import annotations

import os
from typing import Any

DEFAULT_SECRET_KEY = "dev-only-not-secret"


class ConfigurationError(RuntimeError):
    """A setting is missing or wrong: the app refuses to start, saying which."""


class Config:
    SECRET_KEY = DEFAULT_SECRET_KEY
    SQLALCHEMY_DATABASE_URI: str | None = None  # default: SQLite under instance/
    SQLALCHEMY_ENGINE_OPTIONS: dict[str, Any] = {}
    # A pooled connection idle this long is pinged before use (dead ones replaced: the app
    # recovers from a database restart by itself); busier ones are not (extensions.py).
    DATABASE_PING_IDLE_SECONDS = 1.0
    SQLALCHEMY_TRACK_MODIFICATIONS = False

    NEWSROOM_NAME = "The Local Ledger"
    NEWSROOM_TIMEZONE = "America/Los_Angeles"
    NEWSROOM_CONTACT = "members@example.org"
    CURRENCY = "usd"

    # Payments
    PAYMENTS_GATEWAY: str | None = None  # "local" or "stripe"; default: stripe when a key is set
    STRIPE_SECRET_KEY: str | None = None
    STRIPE_WEBHOOK_SECRET: str | None = None
    STRIPE_API_BASE: str | None = None
    STRIPE_TIMEOUT_SECONDS = 10
    WEBHOOK_TOLERANCE_SECONDS = 300
    # The local gateway signs its events with this when no STRIPE_WEBHOOK_SECRET is set.
    LOCAL_WEBHOOK_SECRET = "whsec_local_development"

    # Gift page
    GIFT_MINIMUM_CENTS = 500
    GIFT_MAXIMUM_CENTS = 2_500_000
    FEE_PERCENT = "2.9"  # a string: money arithmetic is done in Decimal, never float
    FEE_FIXED_CENTS = 30
    GIFT_FREQUENCIES = ["one_time", "monthly", "annual"]

    # Memberships: levels by annualized amount, (cents per year from which it applies, name)
    MEMBERSHIP_LEVELS = [(0, "Supporter"), (12_000, "Sustainer"), (60_000, "Champion")]
    MAGIC_LINK_MAX_AGE = 24 * 3600  # seconds an emailed self-service link stays valid
    MAGIC_LINK_RATE_LIMIT = "5 per minute;30 per hour"  # link requests from one address
    # The failed-payment email's "update your card" link: it opens only the card of that
    # membership, so it may live longer than a sign-in link (Stripe retries for about 3 weeks).
    CARD_LINK_MAX_AGE = 21 * 24 * 3600
    RENEWAL_REMINDER_DAYS = 7  # an annual member is reminded this many days before the renewal

    # Mail
    SMTP_URL: str | None = None
    MAIL_FROM = "The Local Ledger <members@example.org>"
    SMTP_TIMEOUT_SECONDS = 30
    MAIL_DIR: str | None = None  # without SMTP_URL mail is written here; default instance/mail
    PUBLIC_URL: str | None = None  # base of links in emails, e.g. https://give.example.org (production: required)
    RECEIPTS_BACKOFF_SECONDS = 60  # wait before the first retry; doubles with each failure
    RECEIPTS_MAX_ATTEMPTS = 10  # then the message is parked for staff to resend
    RECEIPTS_POLL_SECONDS = 5
    # Outgoing webhooks (README "Outgoing webhooks"): each try waits this long for an answer; a
    # failure is retried after WEBHOOK_BACKOFF_SECONDS, doubling up to six hours, with jitter;
    # after WEBHOOK_MAX_ATTEMPTS tries (12: about 15 hours) the delivery is parked for an admin to resend.
    WEBHOOK_TIMEOUT_SECONDS = 10.0
    WEBHOOK_BACKOFF_SECONDS = 30
    WEBHOOK_MAX_ATTEMPTS = 12
    WORKER_IN_APP = False  # development: the web app runs the worker in a thread, no worker process needed
    # The worker (`flask --app wsgi worker`): how often it looks for events and mail when idle
    # (an event stored by its own process wakes it at once), and for due schedules.
    WORKER_POLL_SECONDS = 1.0
    WORKER_SCHEDULE_CHECK_SECONDS = 30.0
    # Each scheduled job and how often it runs (hourly, daily, or january: once, in January),
    # in NEWSROOM_TIMEZONE, once per period however many workers run; None turns one off.
    WORKER_SCHEDULES: dict[str, str | None] = {
        "payments-sync": "daily",
        "expire-checkouts": "hourly",
        "annual-statements": "january",
        "housekeeping": "daily",
        "ledger-verify": "daily",
        "renewal-reminders": "daily",
    }
    # Observability: LOG_FORMAT=json for JSON log lines; SENTRY_DSN for error tracking;
    # METRICS_TOKEN to open /metrics to `Authorization: Bearer <token>`.
    LOG_FORMAT: str | None = None
    SENTRY_DSN: str | None = None
    METRICS_TOKEN: str | None = None

    # Request bodies: a larger one is refused with 413 before it is read. Forms are a few KB (a
    # full 50-check batch about 35 KB); Stripe's events are far below 1 MB.
    MAX_CONTENT_LENGTH = 64 * 1024
    WEBHOOK_MAX_CONTENT_LENGTH = 1024 * 1024
    # A grant pledge's document (a signed PDF or a photo of a letter): its form takes this much
    # more than the file (grants/pledges.py says so in words when a file is larger).
    PLEDGE_DOCUMENT_MAX_BYTES = 5 * 1024 * 1024
    FUNDER_LINK_MAX_DAYS = 90  # the longest a funder link may stay open

    # Rate limits
    REDIS_URL: str | None = None
    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_HEADERS_ENABLED = True
    # Card-testing defences (donations/giving/protection.py)
    GIVE_RATE_LIMIT = "10 per minute"  # checkouts opened per client address, and per email
    DECLINE_COOLDOWN = "3 per 30 minutes"  # this many declines from an address/email/card pause it
    CAPTCHA_PROVIDER: str | None = None  # "turnstile" or "hcaptcha"; unset: no CAPTCHA
    CAPTCHA_SITE_KEY: str | None = None
    CAPTCHA_SECRET: str | None = None
    CAPTCHA_VERIFY_URL: str | None = None  # default: the provider's siteverify address
    CAPTCHA_TIMEOUT_SECONDS = 5

    # Headers and proxies (donations/security.py)
    HSTS_MAX_AGE = 63_072_000  # two years; production only
    # How many proxies in front of the app set each X-Forwarded-* header (0: trust none).
    PROXY_FIX_X_FOR = 0
    PROXY_FIX_X_PROTO = 0
    PROXY_FIX_X_HOST = 0
    PROXY_FIX_X_PORT = 0
    PROXY_FIX_X_PREFIX = 0
    # Host names the app answers to (others get a 400); None: any. Set it in production, from
    # the environment as "give.example.org,www.give.example.org".
    TRUSTED_HOSTS: list[str] | None = None
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"

    WTF_CSRF_TIME_LIMIT = None  # the session bounds a token's life
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    PERMANENT_SESSION_LIFETIME = 8 * 3600

    # Staff console
    STAFF_REQUIRE_2FA = False  # admins must enrol an authenticator app (TOTP) before anything else
    STAFF_SIGNIN_LIMIT = "10 per minute;100 per day"  # sign-in attempts from one address
    STAFF_MAX_FAILED_SIGNINS = 5  # failures in a row for one email from one address pause that pair ...
    STAFF_LOCKOUT_MINUTES = 15  # ... until this long after its last failure
    FISCAL_YEAR_START_MONTH = 1  # the dashboard's fiscal year starts on the 1st of this month
    FUND_PROGRESS_CACHE_SECONDS = 60  # a fund's public progress bar is recomputed at most this often
    GRANT_PROGRESS_CACHE_SECONDS = 60  # a grant program's progress (gift page, dashboard), likewise
    GIFT_PAGE_CACHE_SECONDS = 60  # a gift page's HTML is re-rendered at most this often (giving/page_cache.py)

    TESTING = False


class DevelopmentConfig(Config):
    WORKER_IN_APP = True


class TestingConfig(Config):
    TESTING = True
    SECRET_KEY = "testing-secret"
    STRIPE_WEBHOOK_SECRET = "whsec_testing"
    PAYMENTS_GATEWAY = "local"
    RATELIMIT_ENABLED = True
    FUND_PROGRESS_CACHE_SECONDS = 0
    GRANT_PROGRESS_CACHE_SECONDS = 0
    GIFT_PAGE_CACHE_SECONDS = 0


class ProductionConfig(Config):
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    PREFERRED_URL_SCHEME = "https"


CONFIGS: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}

# Environment variable -> config key. Secrets live only here, never in the classes above.
ENVIRONMENT = {
    "DATABASE_URL": "SQLALCHEMY_DATABASE_URI",
    "SECRET_KEY": "SECRET_KEY",
    "STRIPE_SECRET_KEY": "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET": "STRIPE_WEBHOOK_SECRET",
    "STRIPE_API_BASE": "STRIPE_API_BASE",
    "PAYMENTS_GATEWAY": "PAYMENTS_GATEWAY",
    "SMTP_URL": "SMTP_URL",
    "MAIL_FROM": "MAIL_FROM",
    "PUBLIC_URL": "PUBLIC_URL",
    "TRUSTED_HOSTS": "TRUSTED_HOSTS",
    "REDIS_URL": "REDIS_URL",
    "GIVE_RATE_LIMIT": "GIVE_RATE_LIMIT",
    "DECLINE_COOLDOWN": "DECLINE_COOLDOWN",
    "CAPTCHA_PROVIDER": "CAPTCHA_PROVIDER",
    "CAPTCHA_SITE_KEY": "CAPTCHA_SITE_KEY",
    "CAPTCHA_SECRET": "CAPTCHA_SECRET",
    "PROXY_FIX_X_FOR": "PROXY_FIX_X_FOR",
    "PROXY_FIX_X_PROTO": "PROXY_FIX_X_PROTO",
    "PROXY_FIX_X_HOST": "PROXY_FIX_X_HOST",
    "PROXY_FIX_X_PORT": "PROXY_FIX_X_PORT",
    "PROXY_FIX_X_PREFIX": "PROXY_FIX_X_PREFIX",
    "NEWSROOM_NAME": "NEWSROOM_NAME",
    "NEWSROOM_TIMEZONE": "NEWSROOM_TIMEZONE",
    "STAFF_REQUIRE_2FA": "STAFF_REQUIRE_2FA",
    "FISCAL_YEAR_START_MONTH": "FISCAL_YEAR_START_MONTH",
    "NEWSROOM_CONTACT": "NEWSROOM_CONTACT",
    "GIFT_PAGE_CACHE_SECONDS": "GIFT_PAGE_CACHE_SECONDS",
    "WORKER_IN_APP": "WORKER_IN_APP",
    "LOG_FORMAT": "LOG_FORMAT",
    "SENTRY_DSN": "SENTRY_DSN",
    "METRICS_TOKEN": "METRICS_TOKEN",
    "EMBED_ORIGINS": "EMBED_ORIGINS",
}


def load_environment(config: dict[str, Any], environ: os._Environ[str] | dict[str, str]) -> None:
    for variable, key in ENVIRONMENT.items():
        value = environ.get(variable)
        if value:
            config[key] = value
