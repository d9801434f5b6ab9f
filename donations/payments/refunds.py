"""Staff-initiated refunds: asked of Stripe through the gateway, recorded from Stripe's events.

The request is written (with its idempotency key) and audited before the gateway is called, so a
request whose answer was lost is retried with the same key and Stripe refunds once. This module
never writes a reversal: `refund.created` / `charge.refunded` do, keyed by the refund's id.

So this is the one staff action that owns its transactions (two phases: record the request and
commit, call Stripe, record the answer and commit) instead of leaving them to the view.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import ColumnElement, and_, exists, func, literal, or_, select

from donations.accounts.audit import audit
from donations.accounts.models import StaffUser
from donations.clock import utcnow
from donations.extensions import db
from donations.ledger import installments, reversals
from donations.ledger.models import Dispute, Gift, GiftSource, GiftStatus, Reversal
from donations.money import format_money
from donations.payments.gateway import GatewayError, GatewayRefused, RefundParams, get_gateway
from donations.payments.installation import idempotency_key
from donations.payments.models import RefundRequest

# Stripe keeps an idempotency key for 24 hours: an unanswered request is retried within it.
IDEMPOTENCY_WINDOW = timedelta(hours=23)
# Longer than any gateway call with its retries: an unanswered request older than this is over.
CALL_OVER_AFTER = timedelta(minutes=5)
REFUNDABLE_STATUSES = (GiftStatus.PAID, GiftStatus.PARTIALLY_REFUNDED)


class RefundError(ValueError):
    """A refund that cannot be asked for (unknown gift, amount too large, gateway said no)."""


def _actor_name(actor: StaffUser | str) -> str:
    return actor.email if isinstance(actor, StaffUser) else actor


def _in_flight() -> ColumnElement[bool]:
    """Refund requests whose money may be on its way out but is not in the ledger yet: answered
    by Stripe and awaiting their event, or unanswered and still retriable with their key."""
    recorded = exists().where(Reversal.stripe_key == literal("refund:") + RefundRequest.stripe_refund_id)
    return and_(
        RefundRequest.refused_at.is_(None),
        or_(
            and_(RefundRequest.stripe_refund_id.is_not(None), ~recorded),
            and_(RefundRequest.stripe_refund_id.is_(None), RefundRequest.requested_at >= utcnow() - IDEMPOTENCY_WINDOW),
        ),
    )


def in_flight_cents(gift_id: int, *, besides: int | None = None) -> int:
    """Cents asked of Stripe for the gift and not yet confirmed by its events (`besides`: a
    request left out, the one being retried)."""
    query = select(func.coalesce(func.sum(RefundRequest.amount_cents), 0)).where(
        RefundRequest.gift_id == gift_id, _in_flight()
    )
    if besides is not None:
        query = query.where(RefundRequest.id != besides)
    return int(db.session.scalar(query) or 0)


def refundable_cents(gift: Gift) -> int:
    """The most a new refund of the gift may take now: what it holds after its reversals, less
    the refunds already asked for and not yet confirmed (they would come out of the same money)."""
    return max(reversals.net_cents(gift) - in_flight_cents(gift.id), 0)


def refusal(gift: Gift) -> str | None:
    """Why the gift cannot be refunded now; None when it can. The staff page shows the refund
    form exactly when this is None, and `request_refund` refuses with this reason."""
    paid_through_stripe = gift.stripe_payment_intent_id or gift.stripe_charge_id or gift.stripe_invoice_id
    if gift.source != GiftSource.STRIPE or not paid_through_stripe:
        return f"gift {gift.id} was not paid through Stripe; refund it where it was paid"
    open_dispute = db.session.scalar(select(Dispute.id).where(Dispute.gift_id == gift.id, Dispute.closed_at.is_(None)))
    if open_dispute:
        return f"gift {gift.id} is disputed ({open_dispute}); Stripe refuses refunds until it closes"
    if gift.status not in REFUNDABLE_STATUSES:
        return f"gift {gift.id} is {gift.status.replace('_', ' ')}; only paid gifts can be refunded"
    if reversals.net_cents(gift) <= 0:
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


def _open_request(gift_id: int, amount_cents: int | None) -> RefundRequest | None:
    """A refund asked for recently whose answer never came back (of this amount; None: any):
    asking again retries it, same key."""
    now = utcnow()
    query = select(RefundRequest).where(
        RefundRequest.gift_id == gift_id,
        RefundRequest.stripe_refund_id.is_(None),
        RefundRequest.refused_at.is_(None),
        RefundRequest.requested_at >= now - IDEMPOTENCY_WINDOW,
        # Its call has ended (or, without an error written, was cut off long ago): one still
        # under way belongs to another request, which is not retried but waited for.
        or_(RefundRequest.error.is_not(None), RefundRequest.requested_at < now - CALL_OVER_AFTER),
    )
    if amount_cents is not None:
        query = query.where(RefundRequest.amount_cents == amount_cents)
    return db.session.scalar(query.order_by(RefundRequest.id.desc()).limit(1))


def _amount_and_retry(gift: Gift, amount_cents: int | None) -> tuple[int, RefundRequest | None]:
    """The amount to ask for and the unanswered request it retries, if any. Called under the
    gift's row lock, so that concurrent requests see each other's amounts and together never
    ask for more than the gift holds."""
    net = reversals.net_cents(gift)
    retry = _open_request(gift.id, amount_cents)
    if amount_cents is None:
        # All that is left; when nothing is left but an unanswered request, that one again.
        left = net - in_flight_cents(gift.id)
        if left > 0 or retry is None:
            return left, None
        return retry.amount_cents, retry
    # Retrying a request asks for nothing new: its own amount is not counted against it.
    left = net - in_flight_cents(gift.id, besides=retry.id if retry else None)
    if amount_cents <= 0 or amount_cents > left:
        pending = net - left
        asked = (
            f" ({format_money(pending, gift.currency)} already asked of Stripe, not yet confirmed)" if pending else ""
        )
        raise RefundError(
            f"a refund of gift {gift.id} must be more than 0 and at most "
            f"{format_money(max(left, 0), gift.currency)}, what is left of it{asked}"
        )
    return amount_cents, retry


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
        amount, request = _amount_and_retry(gift, amount_cents)
        if amount <= 0:
            raise RefundError(f"refunds already asked of Stripe take all that is left of gift {gift_id}")
    except RefundError:
        db.session.rollback()
        raise

    if not (gift.stripe_payment_intent_id or gift.stripe_charge_id) and gift.stripe_invoice_id:
        _find_invoice_payment(gift)

    if request is None:
        # Gift id + its request counter (counted under the gift's row lock): a second partial
        # refund gets a new key, a retry of an unanswered one reuses its own.
        number = (
            db.session.execute(
                select(func.count()).select_from(RefundRequest).where(RefundRequest.gift_id == gift_id)
            ).scalar_one()
            + 1
        )
        request = RefundRequest(
            gift_id=gift_id,
            amount_cents=amount,
            reason=reason,
            requested_by=_actor_name(actor),
            idempotency_key=idempotency_key("refund-gift", gift_id, number),
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


def _find_invoice_payment(gift: Gift) -> None:
    """A renewal whose `invoice_payment.paid` has not come: ask Stripe for the invoice's
    payments, and link the PaymentIntent as that event would have."""
    invoice_id = gift.stripe_invoice_id or ""
    try:
        intent = get_gateway().invoice_payment_intent(invoice_id)
    except GatewayError as exc:
        db.session.rollback()
        raise RefundError(f"{exc}; try again in a moment") from exc
    if intent is None:
        db.session.rollback()
        raise RefundError(f"Stripe names no paid payment for invoice {invoice_id} of gift {gift.id} yet")
    installments.link_invoice_payment(invoice_id, intent)
    db.session.flush()


def _finish(request_id: int, *, refund_id: str | None = None, error: str | None = None, refused: bool = False) -> None:
    request = db.session.get(RefundRequest, request_id, populate_existing=True)
    assert request is not None
    request.stripe_refund_id = refund_id
    request.error = error
    if refused:
        request.refused_at = utcnow()
    db.session.commit()
