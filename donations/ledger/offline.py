"""Gifts that did not come through Stripe: checks by mail, cash, other transfers.

They are ordinary paid gifts (source `check`, `cash` or `other`), so every total, report and
grant program counts them as it counts online gifts wherever the program's sources allow it.
A check carries its number and its postmark date; grant windows count checks by postmark.
Callers own the transaction: nothing here commits, nor queues the receipt (the caller does,
when `RecordedOfflineGift.send_receipt` says so).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import or_, select

from donations.clock import local_date, newsroom_zone, utcnow
from donations.extensions import db
from donations.ledger import donors as donor_ledger
from donations.ledger import service as ledger
from donations.ledger.currency import newsroom_currency
from donations.ledger.models import Donor, Frequency, Fund, Gift, GiftSource, GiftStatus, GiftVehicle

OFFLINE_SOURCES = (GiftSource.CHECK, GiftSource.CASH, GiftSource.OTHER, GiftSource.SPONSOR)
# Donors who sent no email address get one that can never be delivered (RFC 2606 `.invalid`).
NO_EMAIL_DOMAIN = "no-email.invalid"
TRIBUTE_KINDS = ("honor", "memory")


class OfflineGiftError(ledger.LedgerError):
    """An offline gift that cannot be recorded as entered."""


@dataclass(frozen=True)
class DonorDetails:
    """Who gave: an existing donor by id, or by email (found or created), or a new donor with
    no email address at all."""

    donor_id: int | None = None
    email: str | None = None
    name: str | None = None
    address_line1: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None


@dataclass(frozen=True)
class OfflineGift:
    donor: DonorDetails
    fund_id: int
    amount_cents: int
    source: str
    received_on: date  # the local date the money arrived
    check_number: str | None = None
    postmarked_on: date | None = None
    organization: str | None = None  # given on behalf of an organization
    vehicle: str | None = None  # GiftVehicle; None: business when an organization is named, else personal
    fair_market_value_cents: int | None = None  # what the donor got back (a ticket, merchandise)
    anonymous: bool = False
    tribute_kind: str | None = None
    tribute_name: str | None = None
    memo: str | None = None
    send_receipt: bool = True
    attribution: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordedOfflineGift:
    gift: Gift
    send_receipt: bool  # staff asked for a receipt and the donor has an email address


def is_placeholder_email(email: str) -> bool:
    return email.casefold().endswith("@" + NO_EMAIL_DOMAIN)


def received_at_for(received_on: date) -> datetime:
    """Noon, local time, on the day received: inside that local day whatever the DST rules."""
    return datetime.combine(received_on, time(12), newsroom_zone())


def validate(entry: OfflineGift) -> None:
    """Raise OfflineGiftError with a message staff can act on."""
    if entry.source not in OFFLINE_SOURCES:
        raise OfflineGiftError("Choose check, cash, other or fiscal sponsor.")
    if entry.amount_cents <= 0:
        raise OfflineGiftError("The amount must be more than zero.")
    today = local_date(utcnow())
    if entry.received_on > today:
        raise OfflineGiftError("The date received cannot be in the future.")
    if entry.source == GiftSource.CHECK:
        if not (entry.check_number or "").strip():
            raise OfflineGiftError("A check needs its check number.")
        if entry.postmarked_on is not None and entry.postmarked_on > entry.received_on:
            raise OfflineGiftError("The postmark cannot be later than the date received.")
    elif entry.check_number or entry.postmarked_on:
        raise OfflineGiftError("Only checks have a check number and a postmark date.")
    if entry.tribute_kind not in (None, *TRIBUTE_KINDS):
        raise OfflineGiftError("A tribute is in honor or in memory of someone.")
    if entry.tribute_kind and not (entry.tribute_name or "").strip():
        raise OfflineGiftError("Name the person the tribute is for.")
    if entry.vehicle is not None and entry.vehicle not in set(GiftVehicle):
        raise OfflineGiftError("Choose how the gift was given: personal, donor-advised fund, business, ...")
    fair_value = entry.fair_market_value_cents
    if fair_value is not None and not 0 <= fair_value <= entry.amount_cents:
        raise OfflineGiftError("The fair market value is between zero and the amount of the gift.")
    details = entry.donor
    if details.donor_id is None and not (details.email or "").strip() and not (details.name or "").strip():
        raise OfflineGiftError("Give the donor's name or email address, or choose an existing donor.")


def check_tax_status(fund: Fund, source: str) -> None:
    """A sponsor-held fund's gifts are the sponsor's to report (source `sponsor`), and only
    they are: the database refuses anything else, this says why in words."""
    if fund.sponsor_held and source != GiftSource.SPONSOR:
        raise OfflineGiftError(
            f"{fund.name} is held by {fund.sponsor_name}: record its gifts as the sponsor reports them, "
            "with the source Fiscal sponsor."
        )
    if source == GiftSource.SPONSOR and not fund.sponsor_held:
        raise OfflineGiftError(f"{fund.name} is the newsroom's own fund: no fiscal sponsor receives its gifts.")


def _vehicle(entry: OfflineGift) -> str:
    if entry.vehicle:
        return entry.vehicle
    return GiftVehicle.BUSINESS if (entry.organization or "").strip() else GiftVehicle.PERSONAL


def _donor_for(details: DonorDetails) -> Donor:
    if details.donor_id is not None:
        donor = db.session.get(Donor, details.donor_id)
        if donor is None:
            raise OfflineGiftError(f"There is no donor #{details.donor_id}.")
        return donor_ledger.resolve_merged(donor)
    email = (details.email or "").strip() or f"{secrets.token_hex(8)}@{NO_EMAIL_DOMAIN}"
    donor = donor_ledger.resolve_merged(
        ledger.find_or_create_donor(email, name=details.name, postal_code=details.postal_code)
    )
    # Fill in the postal address the check came with; never overwrite what is known.
    for attribute in ("address_line1", "city", "region"):
        value = getattr(details, attribute)
        if value and not getattr(donor, attribute):
            setattr(donor, attribute, value)
    return donor


def _donor_key(donor: Donor) -> tuple[str, ...]:
    """Who sent a check, as written on it: the email address, or for a donor without one the
    name and postal code (each donor without an email is a new row, so its id proves nothing)."""
    if not is_placeholder_email(donor.email):
        return ("email", donor.email.strip().casefold())
    name = " ".join((donor.name or "").split()).casefold()
    postal_code = "".join((donor.postal_code or "").split()).casefold()
    return ("name", name, postal_code)


def same_check(donor: Donor, *, check_number: str | None, amount_cents: int, postmarked_on: date | None) -> Gift | None:
    """The gift already recorded for the same check: its number, amount, donor and postmark date.
    Whichever form or import brings it, a check is money received once. A postmark is compared
    only when both are known: another system's export has none (`history csv`), and the same
    check entered by hand afterwards, postmark and all, is still that check."""
    number = (check_number or "").strip()
    if not number or donor.id is None:
        return None
    query = select(Gift).where(
        Gift.source == GiftSource.CHECK, Gift.check_number == number, Gift.amount_cents == amount_cents
    )
    if postmarked_on is not None:
        query = query.where(or_(Gift.postmarked_on.is_(None), Gift.postmarked_on == postmarked_on))
    key = _donor_key(donor)
    same = db.session.scalars(query.join(Gift.donor).order_by(Gift.id))
    return next((g for g in same if g.donor_id == donor.id or _donor_key(g.donor) == key), None)


def record_offline_gift(entry: OfflineGift) -> RecordedOfflineGift:
    """A paid gift from a check, cash or other payment, and whether its receipt is to be sent.
    The same check (number, amount, postmark and donor) is never recorded twice."""
    validate(entry)
    fund = db.session.get(Fund, entry.fund_id)
    if fund is None:
        raise OfflineGiftError("Choose a fund.")
    check_tax_status(fund, entry.source)
    donor = _donor_for(entry.donor)
    db.session.flush()
    duplicate = (
        same_check(
            donor, check_number=entry.check_number, amount_cents=entry.amount_cents, postmarked_on=entry.postmarked_on
        )
        if entry.source == GiftSource.CHECK
        else None
    )
    if duplicate is not None:
        raise OfflineGiftError(
            f"Check {duplicate.check_number} for this amount and postmark from {donor.display_name} is already "
            f"recorded: gift #{duplicate.id}."
        )
    gift = Gift(
        donor=donor,
        fund=fund,
        amount_cents=entry.amount_cents,
        fee_covered_cents=0,
        currency=newsroom_currency(),
        frequency=Frequency.ONE_TIME,
        source=entry.source,
        status=GiftStatus.PAID,
        tax_deductible=fund.sponsor_held,
        received_at=received_at_for(entry.received_on),
        organization=(entry.organization or "").strip() or None,
        vehicle=_vehicle(entry),
        fair_market_value_cents=entry.fair_market_value_cents or None,
        anonymous=entry.anonymous,
        tribute_kind=entry.tribute_kind or None,
        tribute_name=(entry.tribute_name or "").strip() or None if entry.tribute_kind else None,
        attribution={"channel": "offline", **({"memo": entry.memo} if entry.memo else {}), **entry.attribution},
        check_number=(entry.check_number or "").strip() or None,
        postmarked_on=entry.postmarked_on,
    )
    db.session.add(gift)
    db.session.flush()
    return RecordedOfflineGift(gift, send_receipt=entry.send_receipt and not is_placeholder_email(donor.email))


def record_batch(entries: list[OfflineGift]) -> list[RecordedOfflineGift]:
    """A stack of checks: every one recorded, or (on the first error) none, since the caller
    rolls the transaction back. Raises OfflineGiftError naming the row (1-based)."""
    if not entries:
        raise OfflineGiftError("The batch is empty: fill in at least one row.")
    gifts = []
    for number, entry in enumerate(entries, start=1):
        try:
            gifts.append(record_offline_gift(entry))
        except OfflineGiftError as exc:
            raise OfflineGiftError(f"Row {number}: {exc}") from None
    return gifts
