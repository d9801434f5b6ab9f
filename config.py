"""Configuration classes. Values come from the class, then from the environment (see
`load_environment`), then from the overrides passed to `create_app`. Nothing here is read by the
app at import time: `create_app` copies it into `app.config`."""

from __future__ import annotations

import os
from typing import Any

DEFAULT_SECRET_KEY = "dev-only-not-secret"


class Config:
    SECRET_KEY = DEFAULT_SECRET_KEY
    SQLALCHEMY_DATABASE_URI: str | None = None  # default: SQLite under instance/
    SQLALCHEMY_ENGINE_OPTIONS: dict[str, Any] = {"pool_pre_ping": True}
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

    # Mail
    SMTP_URL: str | None = None
    MAIL_FROM = "The Local Ledger <members@example.org>"

    # Rate limits
    REDIS_URL: str | None = None
    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_HEADERS_ENABLED = True

    WTF_CSRF_TIME_LIMIT = None  # the session bounds a token's life
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    PERMANENT_SESSION_LIFETIME = 8 * 3600

    DEMO_DATA = False
    TESTING = False


class DevelopmentConfig(Config):
    DEMO_DATA = True


class TestingConfig(Config):
    TESTING = True
    SECRET_KEY = "testing-secret"
    STRIPE_WEBHOOK_SECRET = "whsec_testing"
    PAYMENTS_GATEWAY = "local"
    RATELIMIT_ENABLED = True


class ProductionConfig(Config):
    SESSION_COOKIE_SECURE = True
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
    "REDIS_URL": "REDIS_URL",
    "NEWSROOM_NAME": "NEWSROOM_NAME",
    "NEWSROOM_TIMEZONE": "NEWSROOM_TIMEZONE",
    "NEWSROOM_CONTACT": "NEWSROOM_CONTACT",
}


def load_environment(config: dict[str, Any], environ: os._Environ[str] | dict[str, str]) -> None:
    for variable, key in ENVIRONMENT.items():
        value = environ.get(variable)
        if value:
            config[key] = value
