"""The one writer of donors and gifts. Callers own the transaction: nothing here commits, so a
gift, its receipt in the outbox and the Stripe event that caused them commit together."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select

from donations.clock import utcnow
from donations.extensions import db, insert_ignoring
from donations.ledger.currency import newsroom_currency, refuse_foreign
from donations.ledger.donors import resolve_merged
from donations.ledger.models import (
    Donor,
    Frequency,
    Fund,
    Gift,
    GiftSource,
    GiftStatus,
    GiftVehicle,
    NewsletterOptIn,
)


class LedgerError(ValueError):
    """A request the ledger refuses (unknown fund, bad amount): a 4xx, never a 500."""


def email_key(email: str) -> str:
    return email.strip().casefold()


def find_donor(email: str) -> Donor | None:
    return db.session.scalar(select(Donor).where(Donor.email_key == email_key(email)))


def find_or_create_donor(
    email: str,
    *,
    name: str | None = None,
    postal_code: str | None = None,
    stripe_customer_id: str | None = None,
) -> Donor:
    """The donor with this email (case-folded), created if new; blank details are filled in.

    An organization is never taken here: a gift given on behalf of one names it on the gift
    (Gift.organization), and the person stays a person on their own statements.

    Safe against two requests creating the same donor at once (INSERT ... ON CONFLICT). The
    donor row is then locked FOR KEY SHARE until the caller commits (PostgreSQL; SQLite
    serialises writers): a merge locks both donors FOR UPDATE, so it waits for the gift being
    recorded here and then moves it, and a merge under way is waited for and then seen, so the
    gift goes to the donor kept. KEY SHARE, not SHARE: two transactions filling in the same
    donor's blank details would deadlock upgrading a shared lock; KEY SHARE lets their UPDATEs
    through and conflicts only with FOR UPDATE.
    """
    key = email_key(email)
    # A new donor is written whole by its INSERT (no UPDATE after it to fill in the details).
    db.session.execute(
        insert_ignoring(Donor.__table__, "email_key"),  # Core: no ORM bulk-insert machinery
        {
            "email": email.strip(),
            "email_key": key,
            "name": name or None,
            "postal_code": postal_code or None,
            "stripe_customer_id": stripe_customer_id or None,
            "created_at": utcnow(),
        },
    )
    donor = db.session.execute(
        select(Donor)
        .where(Donor.email_key == key)
        .with_for_update(read=True, key_share=True)
        .execution_options(populate_existing=True)
    ).scalar_one()
    # A merged duplicate's email still arrives from Stripe: its gifts belong to the survivor.
    donor = resolve_merged(donor)
    # Fill in what we did not know; never overwrite what the donor (or staff) already gave.
    if name and not donor.name:
        donor.name = name
    if postal_code and not donor.postal_code:
        donor.postal_code = postal_code
    if stripe_customer_id and not donor.stripe_customer_id:
        donor.stripe_customer_id = stripe_customer_id
    return donor


def default_fund() -> Fund:
    # Never a sponsor-held fund: online gifts are the newsroom's own money.
    online = (Fund.active.is_(True), Fund.sponsor_held.is_(False))
    fund = db.session.scalar(select(Fund).where(Fund.is_default.is_(True), *online))
    if fund is None:
        fund = db.session.scalar(select(Fund).where(*online).order_by(Fund.id))
    if fund is None:
        raise LedgerError("no active fund: create one with `flask --app wsgi funds add`")
    return fund


def default_fund_id() -> int:
    """`default_fund().id` in one query that loads no row object (the webhook's hot path)."""
    fund_id = db.session.scalar(
        select(Fund.id)
        .where(Fund.active.is_(True), Fund.sponsor_held.is_(False))
        .order_by(Fund.is_default.desc(), Fund.id)
        .limit(1)
    )
    if fund_id is None:
        raise LedgerError("no active fund: create one with `flask --app wsgi funds add`")
    return fund_id


def fund_by_slug(slug: str | None) -> Fund | None:
    if not slug:
        return None
    return db.session.scalar(select(Fund).where(Fund.slug == slug))


@dataclass(frozen=True)
class GiftDetails:
    """What a reader tells us on the gift page."""

    amount_cents: int
    fee_covered_cents: int
    frequency: str
    organization: str | None
    anonymous: bool
    tribute_kind: str | None
    tribute_name: str | None
    attribution: dict[str, str]
    newsletter_wording: str | None = None  # the opt-in's words, when the reader ticked it


def start_gift(donor: Donor, fund: Fund, details: GiftDetails) -> Gift:
    """A pending gift: the checkout has begun, no money has moved, nothing counts it yet."""
    if details.amount_cents <= 0 or not 0 <= details.fee_covered_cents < details.amount_cents:
        raise LedgerError("amount out of range")
    gift = Gift(
        donor=donor,
        fund=fund,
        amount_cents=details.amount_cents,
        fee_covered_cents=details.fee_covered_cents,
        currency=newsroom_currency(),
        frequency=details.frequency,
        source=GiftSource.STRIPE,
        status=GiftStatus.PENDING,
        tax_deductible=False,
        organization=details.organization,
        # Checkout's business name: a business's gift (staff may say otherwise).
        vehicle=GiftVehicle.BUSINESS if details.organization else GiftVehicle.PERSONAL,
        anonymous=details.anonymous,
        tribute_kind=details.tribute_kind,
        tribute_name=details.tribute_name,
        attribution=details.attribution,
    )
    db.session.add(gift)
    db.session.flush()
    if details.newsletter_wording:
        db.session.add(NewsletterOptIn(gift_id=gift.id, wording=details.newsletter_wording))
    return gift


def attach_checkout_session(gift: Gift, session_id: str) -> None:
    """The gateway opened a checkout for the pending gift: its events name the session."""
    gift.stripe_checkout_session_id = session_id


def fail_gift(gift: Gift) -> None:
    """No checkout could be opened for the pending gift: failed, never counted."""
    if gift.status == GiftStatus.PENDING:
        gift.status = GiftStatus.FAILED


def gift_for_session(session_id: str, *, lock: bool = False) -> Gift | None:
    """The gift a checkout session was opened for (locked FOR UPDATE with `lock`)."""
    query = select(Gift).where(Gift.stripe_checkout_session_id == session_id)
    return db.session.scalar(query.with_for_update() if lock else query)


@dataclass(frozen=True)
class CheckoutPayment:
    """A paid one-time Checkout Session, as the ledger needs it."""

    session_id: str
    amount_cents: int
    currency: str
    paid_at: datetime
    email: str
    name: str | None
    postal_code: str | None
    business_name: str | None
    payment_intent_id: str | None
    customer_id: str | None
    gift_id: int | None  # from our metadata; None for sessions we did not create
    fund_slug: str | None


@dataclass(frozen=True)
class PaidGift:
    """What the receipt of a checkout payment needs: the gift, and whom to send it to."""

    gift_id: int
    donor_id: int
    donor_email: str


def record_checkout_payment(payment: CheckoutPayment) -> PaidGift | None:
    """Mark the session's pending gift paid, or record a new gift for a session we did not
    create (a Payment Link). A replay changes nothing and returns None. Raises ForeignCurrency
    for a payment in another currency than the newsroom's: never a gift in its totals."""
    refuse_foreign(payment.currency)
    gift = gift_for_session(payment.session_id, lock=True)
    if gift is None and payment.gift_id is not None:
        gift = db.session.scalar(
            select(Gift).where(Gift.id == payment.gift_id, Gift.stripe_checkout_session_id.is_(None)).with_for_update()
        )
    if gift is not None and gift.status not in (GiftStatus.PENDING, GiftStatus.FAILED):
        return None

    donor = find_or_create_donor(
        payment.email,
        name=payment.name,
        postal_code=payment.postal_code,
        stripe_customer_id=payment.customer_id,
    )
    if gift is None:
        # A gift nobody began (a Payment Link): one INSERT, with no ORM object to track.
        fund = fund_by_slug(payment.fund_slug)
        gift_id = db.session.execute(
            insert(Gift.__table__)
            .values(
                donor_id=donor.id,
                fund_id=fund.id if fund is not None else default_fund_id(),
                amount_cents=payment.amount_cents,
                fee_covered_cents=0,
                currency=payment.currency,
                frequency=Frequency.ONE_TIME,
                source=GiftSource.STRIPE,
                status=GiftStatus.PAID,
                tax_deductible=False,
                received_at=payment.paid_at,
                organization=payment.business_name,
                vehicle=GiftVehicle.BUSINESS if payment.business_name else GiftVehicle.PERSONAL,
                attribution={"channel": "payment_link"},
                stripe_checkout_session_id=payment.session_id,
                stripe_payment_intent_id=payment.payment_intent_id,
            )
            .returning(Gift.__table__.c.id)
        ).scalar_one()
        return PaidGift(gift_id, donor.id, donor.email)
    if gift.donor_id != donor.id:
        # Checkout let the reader change the email: the money is that person's.
        gift.donor = donor
    # Stripe's amount is the truth; keep the fee cover only while it still fits inside it.
    if gift.fee_covered_cents and gift.fee_covered_cents >= payment.amount_cents:
        gift.fee_covered_cents = 0
    gift.amount_cents = payment.amount_cents
    gift.currency = payment.currency
    gift.status = GiftStatus.PAID
    gift.received_at = payment.paid_at
    gift.stripe_checkout_session_id = payment.session_id
    gift.stripe_payment_intent_id = payment.payment_intent_id
    if payment.business_name:
        gift.organization = payment.business_name
        gift.vehicle = GiftVehicle.BUSINESS
    db.session.flush()
    return PaidGift(gift.id, donor.id, donor.email)


def fail_checkout(session_id: str, status: GiftStatus = GiftStatus.FAILED) -> Gift | None:
    """The session's gift brought no money: FAILED (its payment failed) or EXPIRED (abandoned).
    A paid gift is never changed; an expiry is final."""
    gift = gift_for_session(session_id, lock=True)
    if gift is not None and gift.status in (GiftStatus.PENDING, GiftStatus.FAILED):
        gift.status = status
    return gift


def decline_gift(gift_id: int) -> None:
    """A card was declined in the gift's checkout: the gift is failed until another card pays it."""
    gift = db.session.get(Gift, gift_id, with_for_update=True)
    if gift is not None and gift.source == GiftSource.STRIPE and gift.status == GiftStatus.PENDING:
        gift.status = GiftStatus.FAILED


def record_card(
    *, charge_id: str | None, payment_intent_id: str | None, gift_id: int | None, last4: str
) -> Gift | None:
    """Note the card a gift was paid with (from Stripe's charge), whichever comes first: the
    charge or the gift's checkout. None: no gift is known for this charge yet."""
    gift = None
    if payment_intent_id:
        gift = db.session.scalar(
            select(Gift).where(Gift.stripe_payment_intent_id == payment_intent_id).order_by(Gift.id).limit(1)
        )
    if gift is None and gift_id is not None:
        # Our own checkout's gift, still pending: its payment intent is learned at completion.
        gift = db.session.scalar(
            select(Gift).where(
                Gift.id == gift_id,
                Gift.source == GiftSource.STRIPE,
                Gift.stripe_payment_intent_id.is_(None) | (Gift.stripe_payment_intent_id == payment_intent_id),
            )
        )
    if gift is None:
        return None
    gift.card_last4 = last4
    if charge_id and not gift.stripe_charge_id:
        gift.stripe_charge_id = charge_id
    return gift
