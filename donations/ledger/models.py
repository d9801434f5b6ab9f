"""The gift ledger: donors, funds, gifts, reversals, memberships.

Gifts and reversals are append-only facts: a refund is a new reversal row, never an edit of the
gift's amount. Amounts are integer cents.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, String, Text, false, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from donations.clock import utcnow
from donations.extensions import Base


class Frequency(enum.StrEnum):
    ONE_TIME = "one_time"
    MONTHLY = "monthly"
    ANNUAL = "annual"


# A recurring frequency's billing interval (Stripe's `recurring.interval`, Membership.interval)
# and back; a one-time gift has none.
FREQUENCY_INTERVAL: dict[str, str] = {Frequency.MONTHLY: "month", Frequency.ANNUAL: "year"}
INTERVAL_FREQUENCY: dict[str, Frequency] = {"month": Frequency.MONTHLY, "year": Frequency.ANNUAL}


class GiftSource(enum.StrEnum):
    STRIPE = "stripe"
    CHECK = "check"
    CASH = "cash"
    OTHER = "other"
    # Received by a fiscal sponsor for a sponsor-held fund and recorded as the sponsor reports
    # it: the only tax-deductible gifts (the sponsor is a charity; the newsroom is not).
    SPONSOR = "sponsor"


class GiftVehicle(enum.StrEnum):
    """Whose money a gift is, as grant programs ask: the first three are an individual's."""

    PERSONAL = "personal"
    DONOR_ADVISED_FUND = "donor_advised_fund"
    FAMILY_FOUNDATION = "family_foundation"
    BUSINESS = "business"
    FOUNDATION = "foundation"
    GOVERNMENT = "government"


# "Individuals only" (NewsMatch): a gift through a donor-advised fund or a family foundation
# clearly from one person counts as that person's.
INDIVIDUAL_VEHICLES = (GiftVehicle.PERSONAL, GiftVehicle.DONOR_ADVISED_FUND, GiftVehicle.FAMILY_FOUNDATION)


class GiftStatus(enum.StrEnum):
    PENDING = "pending"  # checkout started, no money yet: never counted
    PAID = "paid"
    FAILED = "failed"  # declined, or the payment failed: no money
    EXPIRED = "expired"  # the checkout was abandoned (Stripe expires sessions after 24 hours)
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"
    DISPUTED = "disputed"


# A checkout that brought no money (yet): never counted, hidden from donor pages by default.
# A failed one may still be paid (another card in the same checkout), an expired one not.
UNPAID_STATUSES = (GiftStatus.PENDING, GiftStatus.FAILED, GiftStatus.EXPIRED)

# Statuses whose money arrived (reversals are subtracted separately).
RECEIVED_STATUSES = (
    GiftStatus.PAID,
    GiftStatus.REFUNDED,
    GiftStatus.PARTIALLY_REFUNDED,
    GiftStatus.DISPUTED,
)


class ReversalKind(enum.StrEnum):
    REFUND = "refund"
    REFUND_FAILED = "refund_failed"  # restores a refund that Stripe could not complete
    DISPUTE_LOST = "dispute_lost"
    DISPUTE_WON = "dispute_won"  # restores a dispute reversal


class MembershipStatus(enum.StrEnum):
    INCOMPLETE = "incomplete"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELED = "canceled"


def _enum_values(kind: type[enum.StrEnum]) -> str:
    return ", ".join(f"'{member.value}'" for member in kind)


class Donor(Base):
    __tablename__ = "donors"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    # Identity is the case-folded email: Jane@X.org and jane@x.org are one donor.
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    organization: Mapped[str | None] = mapped_column(String(200))
    address_line1: Mapped[str | None] = mapped_column(String(200))
    address_line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(100))
    region: Mapped[str | None] = mapped_column(String(100))
    postal_code: Mapped[str | None] = mapped_column(String(20), index=True)
    country: Mapped[str | None] = mapped_column(String(2))
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), index=True)
    # Communication preferences staff record for the donor: fundraising email and postal mail
    # (appeals, newsletters). Receipts and membership notices are sent whatever these say.
    contact_by_email: Mapped[bool] = mapped_column(default=True, server_default=true())
    contact_by_mail: Mapped[bool] = mapped_column(default=True, server_default=true())
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("donors.id"), index=True)
    erased_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    gifts: Mapped[list[Gift]] = relationship(back_populates="donor", foreign_keys="Gift.donor_id")
    memberships: Mapped[list[Membership]] = relationship(back_populates="donor")

    @property
    def display_name(self) -> str:
        return self.name or self.email


class Fund(Base):
    __tablename__ = "funds"
    __table_args__ = (
        CheckConstraint(
            "(sponsor_held = true AND sponsor_name IS NOT NULL AND sponsor_ein IS NOT NULL) OR "
            "(sponsor_held = false AND sponsor_name IS NULL AND sponsor_ein IS NULL)",
            name="sponsor",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    goal_cents: Mapped[int | None] = mapped_column(BigInteger)
    # Suggested amounts in cents, per frequency: {"one_time": [2500, ...], "monthly": [...]}
    suggested_amounts: Mapped[dict[str, list[int]]] = mapped_column(JSON, default=dict)
    # The frequency the gift page starts on (None: the first of GIFT_FREQUENCIES).
    default_frequency: Mapped[str | None] = mapped_column(String(20))
    # An optional line per suggested amount saying what it pays for: {"2500": "A week of ..."}.
    amount_notes: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # A gentle line toward monthly shown while one-time is chosen; empty: none.
    monthly_prompt: Mapped[str] = mapped_column(Text, default="")
    # The gift page's newsletter opt-in: "" as the newsroom's setting (/staff/look), "on", "off";
    # and its wording here (empty: the newsroom's).
    newsletter_offer: Mapped[str] = mapped_column(String(3), default="", server_default="")
    newsletter_wording: Mapped[str] = mapped_column(Text, default="", server_default="")
    active: Mapped[bool] = mapped_column(default=True)
    show_progress: Mapped[bool] = mapped_column(default=False)
    is_default: Mapped[bool] = mapped_column(default=False)
    # Tax status: the newsroom's own fund (not deductible), or one held by a fiscal sponsor (a
    # community foundation, a nonprofit arm) whose gifts are deductible, received by the sponsor.
    # A trigger (migration 0021) keeps every gift's `tax_deductible` equal to this, and refuses
    # to change it once the fund has gifts.
    sponsor_held: Mapped[bool] = mapped_column(default=False, server_default=false())
    sponsor_name: Mapped[str | None] = mapped_column(String(200))
    sponsor_ein: Mapped[str | None] = mapped_column(String(10))  # 12-3456789
    # The words the sponsor requires on receipts (e.g. "No goods or services were provided").
    sponsor_receipt_wording: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (
        CheckConstraint(f"status IN ({_enum_values(MembershipStatus)})", name="status"),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    donor_id: Mapped[int] = mapped_column(ForeignKey("donors.id"), index=True)
    fund_id: Mapped[int] = mapped_column(ForeignKey("funds.id"))
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="usd")
    interval: Mapped[str] = mapped_column(String(10))  # month | year
    status: Mapped[str] = mapped_column(String(20), default=MembershipStatus.INCOMPLETE)
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    started_at: Mapped[datetime | None]
    canceled_at: Mapped[datetime | None]
    current_period_end: Mapped[datetime | None]
    # Stripe times of the events that last set the amount and the status: events arrive in
    # any order, and an older one must not undo a newer one.
    amount_as_of: Mapped[datetime | None]
    status_as_of: Mapped[datetime | None]
    # Installments skipped until then (Stripe's pause_collection.resumes_at); None: not paused.
    paused_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    donor: Mapped[Donor] = relationship(back_populates="memberships")
    fund: Mapped[Fund] = relationship()
    changes: Mapped[list[MembershipChange]] = relationship(
        back_populates="membership", order_by="MembershipChange.changed_at"
    )


class MembershipChange(Base):
    """The history of a membership's amount, frequency and fund, each before and after: grant
    rules count increases (of the amount at one frequency)."""

    __tablename__ = "membership_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"), index=True)
    changed_at: Mapped[datetime]
    old_amount_cents: Mapped[int] = mapped_column(BigInteger)
    new_amount_cents: Mapped[int] = mapped_column(BigInteger)
    # None only on rows whose event could not say (then unchanged).
    old_interval: Mapped[str | None] = mapped_column(String(10))
    new_interval: Mapped[str | None] = mapped_column(String(10))
    old_fund_id: Mapped[int | None] = mapped_column(ForeignKey("funds.id"))
    new_fund_id: Mapped[int | None] = mapped_column(ForeignKey("funds.id"))
    stripe_event_id: Mapped[str | None] = mapped_column(String(255), unique=True)

    membership: Mapped[Membership] = relationship(back_populates="changes")


class Gift(Base):
    __tablename__ = "gifts"
    __table_args__ = (
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        CheckConstraint("fee_covered_cents >= 0 AND fee_covered_cents < amount_cents", name="fee_covered"),
        # Only a sponsor's gifts are deductible (and their fund's tax status must say so: a
        # trigger checks the fund, which a CHECK cannot see).
        CheckConstraint(
            "(source = 'sponsor' AND tax_deductible = true) OR (source != 'sponsor' AND tax_deductible = false)",
            name="deductible_from_sponsor",
        ),
        CheckConstraint(f"status IN ({_enum_values(GiftStatus)})", name="status"),
        CheckConstraint(f"source IN ({_enum_values(GiftSource)})", name="source"),
        CheckConstraint(f"frequency IN ({_enum_values(Frequency)})", name="frequency"),
        CheckConstraint(f"vehicle IN ({_enum_values(GiftVehicle)})", name="vehicle"),
        CheckConstraint(
            "fair_market_value_cents IS NULL OR "
            "(fair_market_value_cents >= 0 AND fair_market_value_cents <= amount_cents)",
            name="fair_market_value",
        ),
        Index("ix_gifts_received_at_id", "received_at", "id"),
        Index("ix_gifts_donor_received_at", "donor_id", "received_at"),
        Index("ix_gifts_fund_received_at", "fund_id", "received_at"),
        # Staff's lists of unpaid checkouts (?status=pending), by when they started.
        Index("ix_gifts_status_created_at", "status", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    donor_id: Mapped[int] = mapped_column(ForeignKey("donors.id"))
    fund_id: Mapped[int] = mapped_column(ForeignKey("funds.id"))
    membership_id: Mapped[int | None] = mapped_column(ForeignKey("memberships.id"), index=True)
    # What the donor paid, fee cover included.
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    fee_covered_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="usd")
    frequency: Mapped[str] = mapped_column(String(10), default=Frequency.ONE_TIME)
    source: Mapped[str] = mapped_column(String(10), default=GiftSource.STRIPE)
    status: Mapped[str] = mapped_column(String(20), default=GiftStatus.PENDING)
    # True exactly when the fund is held by a fiscal sponsor (the database guarantees it): the
    # newsroom is a for-profit business. Stored so every export can say so.
    tax_deductible: Mapped[bool] = mapped_column(default=False)
    received_at: Mapped[datetime | None]  # when the money moved; null while pending
    organization: Mapped[str | None] = mapped_column(String(200))
    anonymous: Mapped[bool] = mapped_column(default=False)
    tribute_kind: Mapped[str | None] = mapped_column(String(20))  # honor | memory
    tribute_name: Mapped[str | None] = mapped_column(String(200))
    attribution: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    card_last4: Mapped[str | None] = mapped_column(String(4))
    # Grant programs: whose money it is, and what the donor got back for it (a ticket, a
    # subscription, merchandise), deducted from what a program counts.
    vehicle: Mapped[str] = mapped_column(String(20), default=GiftVehicle.PERSONAL)
    fair_market_value_cents: Mapped[int | None] = mapped_column(BigInteger)

    stripe_checkout_session_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(255), index=True)
    stripe_charge_id: Mapped[str | None] = mapped_column(String(255), index=True)
    stripe_invoice_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255))
    stripe_balance_transaction_id: Mapped[str | None] = mapped_column(String(255))
    stripe_fee_cents: Mapped[int | None] = mapped_column(BigInteger)
    net_cents: Mapped[int | None] = mapped_column(BigInteger)
    stripe_payout_id: Mapped[str | None] = mapped_column(String(255), index=True)

    check_number: Mapped[str | None] = mapped_column(String(50))
    postmarked_on: Mapped[date | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    donor: Mapped[Donor] = relationship(back_populates="gifts", foreign_keys=[donor_id])
    fund: Mapped[Fund] = relationship()
    membership: Mapped[Membership | None] = relationship()
    reversals: Mapped[list[Reversal]] = relationship(back_populates="gift", order_by="Reversal.reversed_at")


class Reversal(Base):
    """Money going back out of a gift, or coming back in (a failed refund, a dispute won).

    amount_cents is signed: positive takes money from the gift, negative restores it, so that
    sum(amount_cents) is always the gift's net reversal.
    """

    __tablename__ = "reversals"
    __table_args__ = (CheckConstraint(f"kind IN ({_enum_values(ReversalKind)})", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    gift_id: Mapped[int] = mapped_column(ForeignKey("gifts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    reversed_at: Mapped[datetime]
    # One reversal per Stripe refund / dispute outcome: the unique key makes replays no-ops.
    stripe_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    reason: Mapped[str | None] = mapped_column(Text)
    stripe_payout_id: Mapped[str | None] = mapped_column(String(255), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    gift: Mapped[Gift] = relationship(back_populates="reversals")


class Dispute(Base):
    __tablename__ = "disputes"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # Stripe's du_...
    gift_id: Mapped[int | None] = mapped_column(ForeignKey("gifts.id"), index=True)
    stripe_charge_id: Mapped[str | None] = mapped_column(String(255))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(40))
    evidence_due_by: Mapped[datetime | None]
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]

    gift: Mapped[Gift | None] = relationship()


class InvoicePaymentLink(Base):
    """invoice_payment.paid tells which payment intent paid an invoice; it may arrive first."""

    __tablename__ = "invoice_payment_links"

    stripe_invoice_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    stripe_payment_intent_id: Mapped[str] = mapped_column(String(255), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class NewsletterOptIn(Base):
    """A reader ticked the gift page's newsletter box: when, and the exact words they agreed to.
    Recorded with the gift they were starting; exported only once that gift is received."""

    __tablename__ = "newsletter_opt_ins"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The donor is the gift's (so a merge of donors carries it along).
    gift_id: Mapped[int] = mapped_column(ForeignKey("gifts.id"), unique=True)
    wording: Mapped[str] = mapped_column(Text)
    opted_in_at: Mapped[datetime] = mapped_column(default=utcnow)
