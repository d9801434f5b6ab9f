"""donations: gifts and memberships for a local newsroom, and the grant reports they prove."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask

from config import CONFIGS, DEFAULT_SECRET_KEY, ConfigurationError, load_environment

ROOT = Path(__file__).resolve().parent.parent

__all__ = ["ConfigurationError", "create_app"]


class App(Flask):
    """Flask, keeping ensure_sync's answer per function: Flask asks `inspect` whether each of the
    app's fifteen request hooks (and the view) is a coroutine function on every request, about a
    twentieth of a webhook delivery's CPU (bench/FINDINGS.md). The answer never changes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        synced = self._sync.get(func)
        if synced is None:
            self._sync[func] = synced = super().ensure_sync(func)
        return synced


def create_app(config_name: str | None = None, overrides: dict[str, Any] | None = None) -> Flask:
    config_name = config_name or os.environ.get("DONATIONS_CONFIG", "development")
    if config_name not in CONFIGS:
        raise ConfigurationError(f"DONATIONS_CONFIG must be one of {sorted(CONFIGS)}")
    app = App(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
    )
    app.config.from_object(CONFIGS[config_name])
    app.config["CONFIG_NAME"] = config_name
    load_environment(app.config, os.environ)
    app.config.update(overrides or {})
    _finish_config(app)

    from donations import extensions

    app.url_map.converters["row_id"] = extensions.RowIdConverter  # before any blueprint's rules
    extensions.db.init_app(app)
    with app.app_context():
        extensions.ping_idle_connections(extensions.db.engine, app.config["DATABASE_PING_IDLE_SECONDS"])
    extensions.migrate.init_app(app, extensions.db, directory=str(ROOT / "migrations"))
    extensions.csrf.init_app(app)
    extensions.login_manager.init_app(app)
    extensions.limiter.init_app(app)

    _import_models()

    from donations import health
    from donations.giving.campaign_views import bp as campaigns_staff_bp
    from donations.giving.embed import bp as embed_bp
    from donations.giving.embed_staff import bp as embed_staff_bp
    from donations.giving.membership_views import bp as membership_bp
    from donations.giving.views import bp as giving_bp
    from donations.grants.funder_views import bp as funder_bp
    from donations.grants.packet_views import bp as grant_packets_bp
    from donations.grants.views import bp as grants_bp
    from donations.mail.staff_views import bp as receipts_staff_bp
    from donations.mail.views import bp as statements_bp
    from donations.operations import metrics, observability
    from donations.operations import worker as operations_worker
    from donations.operations.views import bp as operations_bp
    from donations.payments.staff_views import bp as payments_staff_bp
    from donations.payments.views import bp as payments_bp
    from donations.privacy.views import bp as privacy_bp
    from donations.staff.views import bp as staff_bp
    from donations.webhooks.views import bp as webhooks_bp

    app.register_blueprint(health.bp)
    app.register_blueprint(giving_bp)
    app.register_blueprint(embed_bp)
    app.register_blueprint(embed_staff_bp)
    app.register_blueprint(campaigns_staff_bp)
    app.register_blueprint(membership_bp)
    app.register_blueprint(payments_bp)
    app.register_blueprint(payments_staff_bp)
    app.register_blueprint(staff_bp)
    app.register_blueprint(grants_bp)
    app.register_blueprint(grant_packets_bp)
    app.register_blueprint(funder_bp)
    app.register_blueprint(receipts_staff_bp)
    app.register_blueprint(statements_bp)
    app.register_blueprint(privacy_bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(operations_bp)
    app.register_blueprint(webhooks_bp)
    observability.init_app(app)
    operations_worker.init_app(app)

    from donations import cli, errors

    cli.register(app)
    errors.register(app)
    from donations import security
    from donations.operations import acknowledge
    from donations.protection import card_testing as protection

    acknowledge.init_app(app)  # before security's ProxyFix, which then wraps it
    security.init_app(app)
    protection.init_app(app)  # after the blueprints: it wraps the checkout views in rate limits
    _register_template_helpers(app)
    return app


def _finish_config(app: Flask) -> None:
    config = app.config
    if not config.get("SQLALCHEMY_DATABASE_URI"):
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{Path(app.instance_path) / 'donations.sqlite'}"
    url: str = config["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("postgres://"):  # Heroku-style URLs
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    config["SQLALCHEMY_DATABASE_URI"] = url
    if url.startswith("sqlite"):
        # SQLite serialises writers; wait for the lock instead of failing at once.
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {**config["SQLALCHEMY_ENGINE_OPTIONS"], "connect_args": {"timeout": 30}}

    if not config.get("PAYMENTS_GATEWAY"):
        config["PAYMENTS_GATEWAY"] = "stripe" if config.get("STRIPE_SECRET_KEY") else "local"
    if config["PAYMENTS_GATEWAY"] not in ("local", "stripe"):
        raise ConfigurationError("PAYMENTS_GATEWAY must be 'local' or 'stripe'")
    if config["PAYMENTS_GATEWAY"] == "stripe" and not (
        config.get("STRIPE_SECRET_KEY") and config.get("STRIPE_WEBHOOK_SECRET")
    ):
        raise ConfigurationError("the stripe gateway needs STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET")
    if config["PAYMENTS_GATEWAY"] == "local" and not config.get("STRIPE_WEBHOOK_SECRET"):
        config["STRIPE_WEBHOOK_SECRET"] = config["LOCAL_WEBHOOK_SECRET"]
    if config.get("REDIS_URL"):
        config["RATELIMIT_STORAGE_URI"] = config["REDIS_URL"]
    if isinstance(config.get("WORKER_IN_APP"), str):  # from the environment: "true" / "false"
        config["WORKER_IN_APP"] = config["WORKER_IN_APP"].strip().lower() in ("1", "true", "yes", "on")
    if isinstance(config.get("TRUSTED_HOSTS"), str):  # from the environment: "a.example,b.example"
        config["TRUSTED_HOSTS"] = [host.strip() for host in config["TRUSTED_HOSTS"].split(",") if host.strip()]

    from donations.giving.embed import parse_origins

    config["EMBED_ORIGINS"] = parse_origins(config.get("EMBED_ORIGINS"))

    if config["CONFIG_NAME"] == "production":
        if config["SECRET_KEY"] in (None, "", DEFAULT_SECRET_KEY):
            raise ConfigurationError("production needs SECRET_KEY set in the environment")
        if config["PAYMENTS_GATEWAY"] == "local":
            raise ConfigurationError("the local payment gateway is not allowed in production")
        # Links in donor mail are built on it, never on a request's Host header.
        if not str(config.get("PUBLIC_URL") or "").startswith(("https://", "http://")):
            raise ConfigurationError("production needs PUBLIC_URL (e.g. https://give.example.org) in the environment")
        # Without it any Host header is answered, and whatever a page builds from it is the sender's.
        if not config.get("TRUSTED_HOSTS"):
            raise ConfigurationError("production needs TRUSTED_HOSTS (e.g. give.example.org) in the environment")


def _import_models() -> None:
    """Import every area's models so the metadata (and Alembic) sees all tables."""
    from donations import newsroom as _newsroom  # noqa: F401
    from donations.accounts import models as _staff  # noqa: F401
    from donations.giving import models as _giving  # noqa: F401
    from donations.grants import models as _grants  # noqa: F401
    from donations.ledger import imports as _imports  # noqa: F401
    from donations.ledger import models as _ledger  # noqa: F401
    from donations.mail import models as _receipts  # noqa: F401
    from donations.operations import models as _operations  # noqa: F401
    from donations.payments import models as _payments  # noqa: F401
    from donations.payments.local import models as _local_gateway  # noqa: F401
    from donations.protection import card_testing as _protection  # noqa: F401
    from donations.webhooks import models as _webhooks  # noqa: F401


def _register_template_helpers(app: Flask) -> None:
    from donations.clock import local_date, local_time_text
    from donations.forms import frequency_words, source_words, vehicle_words
    from donations.ledger.funds import fund_progress
    from donations.money import format_dollars, format_money

    app.jinja_env.filters["money"] = format_money
    app.jinja_env.filters["dollars"] = format_dollars  # whole dollars without cents (gift pages)
    app.jinja_env.filters["local_date"] = local_date
    app.jinja_env.filters["staff_time"] = local_time_text
    # Codes in words on every page (reports keep the code only in a CSV column of its own).
    app.jinja_env.filters["source_words"] = source_words
    app.jinja_env.filters["frequency_words"] = frequency_words
    app.jinja_env.filters["vehicle_words"] = vehicle_words
    app.jinja_env.globals["fund_progress"] = fund_progress  # giving/_progress.html

    @app.context_processor
    def newsroom() -> dict[str, Any]:
        from donations.newsroom import current_look

        look = current_look()  # admins' /staff/look; read once a period, not on every page
        return {"newsroom_name": look.name, "newsroom_contact": app.config["NEWSROOM_CONTACT"], "look": look}
