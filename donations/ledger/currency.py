"""The newsroom's one currency (config `CURRENCY`). A payment in any other is never a gift in its
totals: the ledger refuses to record it, and every total, report and chart adds only gifts in
this currency (so that one recorded before this rule is not counted as dollars either)."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import ColumnElement, and_

from donations.ledger.models import RECEIVED_STATUSES, Gift


class ForeignCurrency(ValueError):
    """A payment in a currency the newsroom does not take."""


def newsroom_currency() -> str:
    """The currency the newsroom takes, lower case as Stripe writes it ("usd")."""
    return str(current_app.config["CURRENCY"]).lower()


def refuse_foreign(currency: str) -> None:
    """Raise ForeignCurrency, in words for staff, unless `currency` is the newsroom's."""
    ours = newsroom_currency()
    if currency.lower() != ours:
        raise ForeignCurrency(f"paid in {currency.upper()}; this newsroom takes {ours.upper()}")


def counted_gift() -> ColumnElement[bool]:
    """Gifts whose money arrived in the newsroom's currency: what totals add up (their
    reversals are subtracted separately)."""
    return and_(Gift.status.in_(RECEIVED_STATUSES), Gift.currency == newsroom_currency())
