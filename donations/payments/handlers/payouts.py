"""payout.paid, .failed, .canceled: the payout and its status are recorded from the event;
`payments sync` then fetches the balance transactions it settles (a call to Stripe, so never inside the webhook)."""

from __future__ import annotations

from donations.payments import reconcile
from donations.payments.handlers import StripeEventData, handles


@handles("payout.paid", "payout.failed", "payout.canceled")
def payout_changed(event: StripeEventData) -> None:
    reconcile.record_payout(event.object)
