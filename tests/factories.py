"""Factories for ledger rows. They go through the ledger's own functions where one exists."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from donations.clock import utcnow
from donations.extensions import db
from donations.ledger import funds, service
from donations.ledger.models import Donor, Fund, Gift, GiftSource, GiftStatus

_seq = itertools.count(1)


def make_fund(slug: str | None = None, *, is_default: bool = False, **kwargs: Any) -> Fund:
    number = next(_seq)
    fund = funds.create_fund(
        slug=slug or f"fund-{number}",
        name=kwargs.pop("name", f"Fund {number}"),
        is_default=is_default,
        **kwargs,
    )
    db.session.commit()
    return fund


def make_donor(email: str | None = None, *, organization: str | None = None, **kwargs: Any) -> Donor:
    donor = service.find_or_create_donor(email or f"donor{next(_seq)}@example.org", **kwargs)
    # The ledger never gives a donor an organization (gifts name theirs); staff data may.
    donor.organization = organization
    db.session.commit()
    return donor


def make_gift(
    donor: Donor,
    fund: Fund,
    amount_cents: int = 5000,
    *,
    received_at: datetime | None = None,
    status: str = GiftStatus.PAID,
    source: str = GiftSource.STRIPE,
    **kwargs: Any,
) -> Gift:
    if kwargs.get("organization") and "vehicle" not in kwargs:
        kwargs["vehicle"] = "business"  # as the ledger records a gift given for an organization
    gift = Gift(
        donor=donor,
        fund=fund,
        amount_cents=amount_cents,
        received_at=received_at or utcnow(),
        status=status,
        source=source,
        # As the ledger records it: only a fiscal sponsor's gifts (to a sponsor-held fund) are.
        tax_deductible=kwargs.pop("tax_deductible", source == GiftSource.SPONSOR),
        **kwargs,
    )
    db.session.add(gift)
    db.session.commit()
    return gift
