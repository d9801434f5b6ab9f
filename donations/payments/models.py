"""What Stripe told us: every event as received, and payouts learned by reconciliation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from donations.clock import utcnow
from donations.extensions import Base


class StripeEvent(Base):
    """Each event is stored by its id before it is applied; `applied_at` makes it exactly-once."""

    __tablename__ = "stripe_events"
    __table_args__ = (Index("ix_stripe_events_unapplied", "applied_at", "received_at"),)

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100), index=True)
    created_at: Mapped[datetime]  # Stripe's `created`
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    received_via: Mapped[str] = mapped_column(String(20), default="webhook")  # webhook | sync
    applied_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)


class Payout(Base):
    __tablename__ = "payouts"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # po_...
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20))
    arrival_date: Mapped[datetime | None]
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
