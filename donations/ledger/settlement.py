"""What Stripe's balance says of a gift or a reversal once the money settles: Stripe's fee, the
net, the balance transaction and the payout that carried it. Written by reconciliation
(payments/reconcile.py) from Stripe's own figures; the gift's amount never changes here.
Callers own the transaction: nothing here commits."""

from __future__ import annotations

from donations.ledger.models import Gift, Reversal


def record_settlement(
    gift: Gift, *, fee_cents: int, net_cents: int, balance_transaction_id: str, payout_id: str, charge_id: str | None
) -> None:
    """A payout line of the gift's charge: its fee and net, the balance transaction, the payout,
    and the charge when the gift did not know it yet."""
    record_fee(gift, fee_cents=fee_cents, net_cents=net_cents)
    gift.stripe_balance_transaction_id = balance_transaction_id
    gift.stripe_payout_id = payout_id
    gift.stripe_charge_id = gift.stripe_charge_id or charge_id


def record_fee(gift: Gift, *, fee_cents: int, net_cents: int) -> None:
    """The gift's Stripe fee and the net it left, before its payout is known."""
    gift.stripe_fee_cents = fee_cents
    gift.net_cents = net_cents


def record_reversal_payout(reversal: Reversal, payout_id: str | None) -> None:
    """The payout that took a refund's (or a lost dispute's) money back out."""
    reversal.stripe_payout_id = payout_id
