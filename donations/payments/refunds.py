"""Staff-initiated refunds: asked of Stripe through the gateway, recorded from Stripe's events.

The request is written (with its idempotency key) and audited before the gateway is called, so a
request whose answer was lost is retried with the same key and Stripe refunds once. This module
never writes a reversal: `refund.created` / `charge.refunded` do, keyed by the refund's id.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from donations.clock import utcnow
from donations.extensions import db
from donations.ledger import reversals
from donations.ledger.models import Dispute, Gift, GiftSource, GiftStatus
from donations.money import format_money
from donations.payments.gateway import GatewayError, GatewayRefused, RefundParams, get_gateway
from donations.payments.models import RefundRequest
from donations.staff.models import StaffUser
from donations.staff.service import audit

# Stripe keeps an idempotency key for 24 hours: an unanswered request is retried within it.
IDEMPOTENCY_WINDOW = timedelta(hours=23)
REFUNDABLE_STATUSES = (GiftStatus.PAID, GiftStatus.PARTIALLY_REFUNDED)


class RefundError(ValueError):
    """A refund that cannot be asked for (unknown gift, amount too large, gateway said no)."""


def _actor_name(actor: StaffUser | str) -> str:
    return actor.email if isinstance(actor, StaffUser) else actor


def refundable_cents(gift: Gift) -> int:
    """The most a refund of the gift may take now: what it holds after its reversals."""
    return reversals.net_cents(gift)


def refusal(gift: Gift) -> str | None:
    """Why the gift cannot be refunded now; None when it can. The staff page shows the refund
    form exactly when this is None, and `request_refund` refuses with this reason."""
    if gift.source != GiftSource.STRIPE or not (gift.stripe_payment_intent_id or gift.stripe_charge_id):
        return f"gift {gift.id} was not paid through Stripe; refund it where it was paid"
    open_dispute = db.session.scalar(select(Dispute.id).where(Dispute.gift_id == gift.id, Dispute.closed_at.is_(None)))
    if open_dispute:
        return f"gift {gift.id} is disputed ({open_dispute}); Stripe refuses refunds until it closes"
    if gift.status not in REFUNDABLE_STATUSES:
        return f"gift {gift.id} is {gift.status.replace('_', ' ')}; only paid gifts can be refunded"
    if refundable_cents(gift) <= 0:
        return f"gift {gift.id} is already refunded in full"
    return None


def refundable(gift: Gift) -> bool:
    return refusal(gift) is None


def _refundable_gift(gift_id: int) -> Gift:
    gift = db.session.get(Gift, gift_id, with_for_update=True)
    if gift is None:
        raise RefundError(f"there is no gift {gift_id}")
    reason = refusal(gift)
    if reason is not None:
        raise RefundError(reason)
    return gift


def _open_request(gift_id: int, amount_cents: int) -> RefundRequest | None:
    """The same refund asked for recently whose answer never came back: retry it, same key."""
    return db.session.scalar(
        select(RefundRequest)
        .where(
            RefundRequest.gift_id == gift_id,
            RefundRequest.amount_cents == amount_cents,
            RefundRequest.stripe_refund_id.is_(None),
            RefundRequest.refused_at.is_(None),
            RefundRequest.requested_at >= utcnow() - IDEMPOTENCY_WINDOW,
        )
        .order_by(RefundRequest.id.desc())
        .limit(1)
    )


def request_refund(
    gift_id: int,
    amount_cents: int | None,
    reason: str,
    actor: StaffUser | str,
    remote_addr: str | None = None,
) -> str:
    """Ask Stripe to refund `amount_cents` of the gift (None: all that is left); returns Stripe's
    refund id. Raises RefundError with a message for staff; nothing is half-written."""
    reason = reason.strip()
    try:
        if not reason:
            raise RefundError("give a reason for the refund")
        gift = _refundable_gift(gift_id)
        remaining = refundable_cents(gift)
        amount = remaining if amount_cents is None else amount_cents
        if amount <= 0 or amount > remaining:
            left = format_money(remaining, gift.currency)
            raise RefundError(f"a refund of gift {gift_id} must be more than 0 and at most {left}, what is left of it")
    except RefundError:
        db.session.rollback()
        raise

    request = _open_request(gift_id, amount)
    if request is None:
        # Gift id + its request counter (counted under the gift's row lock): a second partial
        # refund gets a new key, a retry of an unanswered one reuses its own.
        number = (
            db.session.scalar(select(func.count()).select_from(RefundRequest).where(RefundRequest.gift_id == gift_id))
            + 1
        )
        request = RefundRequest(
            gift_id=gift_id,
            amount_cents=amount,
            reason=reason,
            requested_by=_actor_name(actor),
            idempotency_key=f"refund-gift-{gift_id}-{number}",
        )
        db.session.add(request)
        db.session.flush()
    audit(
        "gift.refund_requested",
        actor=actor,
        target_type="gift",
        target_id=gift_id,
        details={"amount_cents": amount, "reason": reason, "refund_request_id": request.id},
        remote_addr=remote_addr,
    )
    params = RefundParams(
        gift_id=gift_id,
        payment_intent_id=gift.stripe_payment_intent_id,
        charge_id=gift.stripe_charge_id,
        amount_cents=amount,
        currency=gift.currency,
        reason=reason,
        idempotency_key=request.idempotency_key,
    )
    request_id = request.id
    # Committed before the call: the key survives whatever happens to the answer, and the local
    # gateway's events (delivered during the call) find the database unlocked.
    db.session.commit()
    try:
        refund_id = get_gateway().refund(params)
    except GatewayRefused as exc:
        _finish(request_id, error=str(exc), refused=True)
        raise RefundError(str(exc)) from exc
    except GatewayError as exc:
        _finish(request_id, error=str(exc), refused=False)
        raise RefundError(f"{exc}; asking again retries the same refund") from exc
    _finish(request_id, refund_id=refund_id)
    return refund_id


def _finish(request_id: int, *, refund_id: str | None = None, error: str | None = None, refused: bool = False) -> None:
    request = db.session.get(RefundRequest, request_id, populate_existing=True)
    assert request is not None
    request.stripe_refund_id = refund_id
    request.error = error
    if refused:
        request.refused_at = utcnow()
    db.session.commit()
