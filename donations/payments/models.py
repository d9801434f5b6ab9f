"""What Stripe told us: every event as received, and payouts learned by reconciliation."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from donations.clock import utcnow
from donations.extensions import Base


class StripeEvent(Base):
    """Each event is stored by its id when it is received; the worker applies it later, and
    `applied_at` makes that exactly-once. An unapplied event is due at `next_attempt_at`
    (NULL: left to `payments sync` and the staff page)."""

    __tablename__ = "stripe_events"
    __table_args__ = (
        Index("ix_stripe_events_unapplied", "applied_at", "received_at"),
        # The worker's claim: unapplied events, oldest created first (then filtered on being due).
        Index(
            "ix_stripe_events_due",
            "created_at",
            "id",
            postgresql_where=text("applied_at IS NULL"),
            sqlite_where=text("applied_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100), index=True)
    created_at: Mapped[datetime]  # Stripe's `created`
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    received_via: Mapped[str] = mapped_column(String(20), default="webhook")  # webhook | sync
    applied_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None]


class Payout(Base):
    __tablename__ = "payouts"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # po_...
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20))
    # Stripe sends the bank's arrival day as midnight UTC: a calendar date, not an instant.
    arrival_date: Mapped[date | None]
    created_at: Mapped[datetime]
    reconciled_at: Mapped[datetime | None]


class SyncRun(Base):
    """One run of `payments sync`: /healthz and the console show the last successful one."""

    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    since: Mapped[datetime]
    events_seen: Mapped[int] = mapped_column(default=0)
    events_applied: Mapped[int] = mapped_column(default=0)
    succeeded: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(Text)


class RefundRequest(Base):
    """A staff member asked Stripe for a refund. The reversal itself comes only from Stripe's
    events; this row holds the idempotency key, so that a retried request is never a second refund."""

    __tablename__ = "refund_requests"
    __table_args__ = (CheckConstraint("amount_cents > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    gift_id: Mapped[int] = mapped_column(ForeignKey("gifts.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(320))
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    stripe_refund_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    refused_at: Mapped[datetime | None]  # Stripe said no: the key is spent, nothing was refunded
    error: Mapped[str | None] = mapped_column(Text)


class PayoutTransaction(Base):
    """One balance transaction settled by a payout (Stripe's own numbers), linked to the ledger."""

    __tablename__ = "payout_transactions"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # txn_...
    payout_id: Mapped[str] = mapped_column(ForeignKey("payouts.id"), index=True)
    type: Mapped[str] = mapped_column(String(50))  # charge, payment, refund, adjustment, ...
    reporting_category: Mapped[str] = mapped_column(String(50))
    source_id: Mapped[str | None] = mapped_column(String(255))  # ch_..., re_..., du_...
    payment_intent_id: Mapped[str | None] = mapped_column(String(255))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    fee_cents: Mapped[int] = mapped_column(BigInteger)
    net_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime]
    gift_id: Mapped[int | None] = mapped_column(ForeignKey("gifts.id"), index=True)
    reversal_id: Mapped[int | None] = mapped_column(ForeignKey("reversals.id"))
    dispute_id: Mapped[str | None] = mapped_column(ForeignKey("disputes.id"))


class Installation(Base):
    """This database's installation id, made once (`payments.installation`): it tags every
    Stripe object the app creates and every idempotency key, so that several installations
    (staging, production, a restored backup) can share one Stripe account."""

    __tablename__ = "installation"

    key: Mapped[str] = mapped_column(String(20), primary_key=True)  # always "this"
    installation_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GiftSourceRule(Base):
    """A Payment Link, Product, Price or metadata KEY=VALUE that makes a payment the app did not
    create a gift (to `fund_id`, or the default fund)."""

    __tablename__ = "gift_sources"
    __table_args__ = (CheckConstraint("kind IN ('payment_link', 'product', 'price', 'metadata')", name="kind_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(String(255), unique=True)  # plink_..., prod_..., price_..., KEY=VALUE
    fund_id: Mapped[int | None] = mapped_column(ForeignKey("funds.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(320))


class NotGift(Base):
    """A Stripe event about the account's other business (not a gift), or about a refund or
    dispute of such a payment ("not ours"): stored, acknowledged, counted apart, and re-applied
    if staff later mark its source as a gift source."""

    __tablename__ = "not_gifts"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    object_id: Mapped[str] = mapped_column(String(255), index=True)  # cs_, in_, sub_, re_, du_, ch_
    kind: Mapped[str] = mapped_column(String(30), index=True)  # see gift_sources.KINDS
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), index=True)
    charge_id: Mapped[str | None] = mapped_column(String(255), index=True)
    subscription_id: Mapped[str | None] = mapped_column(String(255), index=True)
    invoice_id: Mapped[str | None] = mapped_column(String(255), index=True)
    amount_cents: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    # What could make it a gift: {"payment_link": ..., "products": [...], "prices": [...], "metadata": {...}}
    sources: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class ClaimedSubscription(Base):
    """A subscription a gift source made a membership at its checkout (a Payment Link's, whose
    invoices and subscription events do not name the link): they count as gifts too."""

    __tablename__ = "claimed_subscriptions"

    subscription_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    fund_slug: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ImportCursor(Base):
    """Where `history stripe` stands in one of Stripe's lists: resumed after a crash or Ctrl-C."""

    __tablename__ = "import_cursors"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)  # stripe:checkout_sessions, ...
    since: Mapped[datetime | None]  # the run's --since (a cursor of another window starts again)
    last_id: Mapped[str | None] = mapped_column(String(255))  # the last object done: starting_after
    listed: Mapped[int] = mapped_column(default=0)
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class StripePrice(Base):
    """A Price `payments setup-stripe` made for a fund's suggested amount: a checkout for that
    fund, frequency and amount names it (so the Billing Portal can switch among them)."""

    __tablename__ = "stripe_prices"
    __table_args__ = (UniqueConstraint("fund_id", "frequency", "amount_cents", "currency"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    fund_id: Mapped[int] = mapped_column(ForeignKey("funds.id"))
    frequency: Mapped[str] = mapped_column(String(20))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    price_id: Mapped[str] = mapped_column(String(255))
    product_id: Mapped[str] = mapped_column(String(255))


class StripeSetupObject(Base):
    """An account-wide object `setup-stripe` made: the Billing Portal configuration (portal
    sessions name it) and the webhook endpoint."""

    __tablename__ = "stripe_setup_objects"

    kind: Mapped[str] = mapped_column(String(40), primary_key=True)  # portal_configuration | webhook_endpoint
    stripe_id: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class StripeCheck(Base):
    """One run of `payments check-stripe`: /healthz shows the last."""

    __tablename__ = "stripe_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    checked_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    problems: Mapped[int]
    summary: Mapped[str] = mapped_column(Text, default="")  # each difference, one a line
