"""Starting a gift: validated form -> pending gift -> checkout session at the gateway."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app

from donations.extensions import db
from donations.ledger import service as ledger
from donations.ledger.models import Fund, Gift
from donations.money import fee_to_cover, format_money
from donations.newsroom import current_look
from donations.payments import account_setup
from donations.payments.gateway import CheckoutRequest, GatewayError, get_gateway


@dataclass(frozen=True)
class GiftIntent:
    fund: Fund
    base_amount_cents: int  # what the reader chose, before any fee cover
    cover_fee: bool
    frequency: str
    name: str
    email: str
    postal_code: str | None
    organization: str | None
    anonymous: bool
    tribute_kind: str | None
    tribute_name: str | None
    attribution: dict[str, str]
    newsletter_wording: str | None = None  # the opt-in's words, when the reader ticked it


class AmountOutOfRange(ValueError):
    pass


def fee_for(amount_cents: int) -> int:
    config = current_app.config
    return fee_to_cover(amount_cents, config["FEE_PERCENT"], config["FEE_FIXED_CENTS"])


def check_amount(amount_cents: int) -> None:
    low, high = current_app.config["GIFT_MINIMUM_CENTS"], current_app.config["GIFT_MAXIMUM_CENTS"]
    if not low <= amount_cents <= high:
        raise AmountOutOfRange(f"Gifts can be from {format_money(low)} to {format_money(high)}.")


def begin_checkout(intent: GiftIntent, success_url: str, cancel_url_for: Callable[[Gift], str]) -> str:
    """Record a pending gift, open a checkout for it, and return the checkout's address.

    The pending gift commits before the gateway is called, so its id can key the request
    idempotently; if the gateway fails, the gift is marked failed (never counted) and
    GatewayError reaches the caller.
    """
    check_amount(intent.base_amount_cents)
    fee = fee_for(intent.base_amount_cents) if intent.cover_fee else 0
    donor = ledger.find_or_create_donor(intent.email, name=intent.name, postal_code=intent.postal_code)
    gift = ledger.start_gift(
        donor,
        intent.fund,
        ledger.GiftDetails(
            amount_cents=intent.base_amount_cents + fee,
            fee_covered_cents=fee,
            frequency=intent.frequency,
            organization=intent.organization,
            anonymous=intent.anonymous,
            tribute_kind=intent.tribute_kind,
            tribute_name=intent.tribute_name,
            attribution=intent.attribution,
            newsletter_wording=intent.newsletter_wording,
        ),
    )
    # Two phases around a call to the gateway, like refunds: the pending gift is committed first so
    # that its id keys the checkout (idempotency, metadata) and survives a crash mid-call; then the
    # gateway's answer (failed, or the session's id) is committed on its own.
    db.session.commit()
    request = CheckoutRequest(
        gift_id=gift.id,
        amount_cents=gift.amount_cents,
        currency=gift.currency,
        frequency=gift.frequency,
        fund_slug=intent.fund.slug,
        description=f"Gift to {current_look().name}: {intent.fund.name} (not tax deductible)",
        donor_email=donor.email,
        for_organization=bool(intent.organization),
        success_url=success_url,
        cancel_url=cancel_url_for(gift),
        # A suggested amount is paid through the fund's own Price (the portal switches among them).
        price_id=account_setup.price_for(intent.fund.id, gift.frequency, gift.amount_cents, gift.currency),
    )
    try:
        session = get_gateway().create_checkout(request)
    except GatewayError:
        ledger.fail_gift(gift)
        db.session.commit()
        raise
    ledger.attach_checkout_session(gift, session.id)
    db.session.commit()
    return session.url
