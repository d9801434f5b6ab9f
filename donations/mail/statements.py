"""Annual statements: for a donor and a calendar year in the newsroom's zone, every gift received
and every reversal dated in that year, with the totals summed by the database.

A reversal counts in the year it happened, whatever the year of its gift, so that each year's
statements add up to the money that year actually kept.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from datetime import MAXYEAR, date, datetime

from flask import current_app, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import CursorResult, String, and_, cast, exists, func, literal, select

from donations.accounts.audit import audit
from donations.accounts.models import StaffUser
from donations.clock import local_date, local_day_bounds, utcnow
from donations.extensions import UTCDateTime, db, insert_ignoring
from donations.ledger.currency import counted_gift, newsroom_currency
from donations.ledger.funds import Sponsor
from donations.ledger.models import Donor, Fund, Gift, Reversal
from donations.mail.models import OutboxMessage, OutboxStatus
from donations.mail.service import queue

FIRST_YEAR = 2000  # no gift here predates the software; keeps bad input out of date arithmetic
STATEMENT_LINK_MAX_AGE_SECONDS = 24 * 3600


class StatementError(LookupError):
    """No statement for that donor or year: a 404 on a page, an error on the command line."""


@dataclass(frozen=True)
class StatementGift:
    gift_id: int
    received_at: datetime
    received_on: date  # local
    amount_cents: int
    currency: str
    fund_name: str
    frequency: str
    source: str
    card_last4: str | None
    check_number: str | None
    organization: str | None
    sponsor: Sponsor | None = None  # the fiscal sponsor that received it: a deductible gift


@dataclass(frozen=True)
class StatementReversal:
    reversal_id: int
    gift_id: int
    kind: str
    reversed_at: datetime
    reversed_on: date  # local
    amount_cents: int  # positive took money back, negative restored it
    currency: str
    fund_name: str
    gift_received_on: date | None


@dataclass(frozen=True)
class Statement:
    donor_id: int
    donor_name: str | None
    donor_email: str
    organization: str | None
    address: tuple[str, ...]
    year: int
    currency: str
    gifts: tuple[StatementGift, ...]
    reversals: tuple[StatementReversal, ...]
    gifts_total_cents: int
    reversals_total_cents: int
    net_cents: int
    generated_at: datetime


def check_year(year: int) -> None:
    if not FIRST_YEAR <= year < MAXYEAR:
        raise StatementError(f"no statements for the year {year}")


def _year_bounds(year: int) -> tuple[datetime, datetime]:
    check_year(year)
    return local_day_bounds(date(year, 1, 1), date(year, 12, 31))


def _donor(donor_id: int) -> Donor:
    donor = db.session.get(Donor, donor_id)
    if donor is None or donor.erased_at is not None:
        raise StatementError(f"no donor {donor_id}")
    return donor


def _address(donor: Donor) -> tuple[str, ...]:
    city_line = " ".join(part for part in (donor.city, donor.region, donor.postal_code) if part)
    return tuple(part for part in (donor.address_line1, donor.address_line2, city_line, donor.country) if part)


def statement_for(donor_id: int, year: int) -> Statement:
    """The donor's statement for a local calendar year. Raises StatementError."""
    donor = _donor(donor_id)
    start, end = _year_bounds(year)
    gift_in_year = and_(
        Gift.donor_id == donor_id,
        counted_gift(),
        Gift.received_at >= start,
        Gift.received_at < end,
    )
    reversal_in_year = and_(
        Gift.donor_id == donor_id,
        Gift.currency == newsroom_currency(),
        Reversal.reversed_at >= start,
        Reversal.reversed_at < end,
    )

    gift_rows = db.session.execute(
        select(
            Gift.id,
            Gift.received_at,
            Gift.amount_cents,
            Gift.currency,
            Fund.name,
            Gift.frequency,
            Gift.source,
            Gift.card_last4,
            Gift.check_number,
            Gift.organization,
            Gift.tax_deductible,
            Fund.sponsor_name,
            Fund.sponsor_ein,
            Fund.sponsor_receipt_wording,
        )
        .join(Fund, Gift.fund_id == Fund.id)
        .where(gift_in_year)
        .order_by(Gift.received_at, Gift.id)
    ).all()
    reversal_rows = db.session.execute(
        select(
            Reversal.id,
            Reversal.gift_id,
            Reversal.kind,
            Reversal.reversed_at,
            Reversal.amount_cents,
            Gift.currency,
            Fund.name,
            Gift.received_at,
        )
        .join(Gift, Reversal.gift_id == Gift.id)
        .join(Fund, Gift.fund_id == Fund.id)
        .where(reversal_in_year)
        .order_by(Reversal.reversed_at, Reversal.id)
    ).all()
    gifts_total, reversals_total = db.session.execute(
        select(
            select(func.coalesce(func.sum(Gift.amount_cents), 0)).where(gift_in_year).scalar_subquery(),
            select(func.coalesce(func.sum(Reversal.amount_cents), 0))
            .join(Gift, Reversal.gift_id == Gift.id)
            .where(reversal_in_year)
            .scalar_subquery(),
        )
    ).one()

    return Statement(
        donor_id=donor.id,
        donor_name=donor.name,
        donor_email=donor.email,
        organization=donor.organization,
        address=_address(donor),
        year=year,
        currency=current_app.config["CURRENCY"],
        gifts=tuple(
            StatementGift(
                gift_id=row[0],
                received_at=typing.cast(datetime, row[1]),  # a gift received in the year: never None
                received_on=local_date(typing.cast(datetime, row[1])),
                amount_cents=row[2],
                currency=row[3],
                fund_name=row[4],
                frequency=row[5],
                source=row[6],
                card_last4=row[7],
                check_number=row[8],
                organization=row[9],
                sponsor=Sponsor(row[11], row[12], row[13] or "") if row[10] else None,
            )
            for row in gift_rows
        ),
        reversals=tuple(
            StatementReversal(
                reversal_id=row[0],
                gift_id=row[1],
                kind=row[2],
                reversed_at=row[3],
                reversed_on=local_date(row[3]),
                amount_cents=row[4],
                currency=row[5],
                fund_name=row[6],
                gift_received_on=local_date(row[7]) if row[7] else None,
            )
            for row in reversal_rows
        ),
        gifts_total_cents=int(gifts_total),
        reversals_total_cents=int(reversals_total),
        net_cents=int(gifts_total) - int(reversals_total),
        generated_at=utcnow(),
    )


def statement_years(donor_id: int) -> list[int]:
    """The local years, newest first, in which the donor has a gift or a reversal."""
    first_gift, last_gift = db.session.execute(
        select(func.min(Gift.received_at), func.max(Gift.received_at)).where(Gift.donor_id == donor_id, counted_gift())
    ).one()
    last_reversal = db.session.scalar(
        select(func.max(Reversal.reversed_at)).join(Gift, Reversal.gift_id == Gift.id).where(Gift.donor_id == donor_id)
    )
    if first_gift is None or last_gift is None:  # both or neither
        return []
    last = max(last_gift, last_reversal) if last_reversal is not None else last_gift
    return list(range(local_date(last).year, local_date(first_gift).year - 1, -1))


def queue_statement(
    donor_id: int,
    year: int,
    *,
    dedupe_key: str | None = None,
    actor: StaffUser | None = None,
    remote_addr: str | None = None,
) -> OutboxMessage | None:
    """Queue the donor's statement for `year` by email, in the caller's transaction.

    Without a dedupe_key, at most one request per donor, year and local day is queued (a second
    click sends nothing more). Returns None when one was already queued. A staff member's
    request (`actor`) is audited. Raises StatementError.
    """
    donor = _donor(donor_id)
    check_year(year)
    key = dedupe_key or f"annual_statement:{donor_id}:{year}:requested:{local_date(utcnow()).isoformat()}"
    context = {"donor_id": donor_id, "year": year}
    message = queue("annual_statement", donor.email, context, dedupe_key=key, donor_id=donor_id)
    if actor is not None:
        audit(
            "statement.email",
            actor=actor,
            target_type="donor",
            target_id=donor_id,
            details={"year": year, "queued": message is not None},
            remote_addr=remote_addr,
        )
    return message


def queue_annual_statements(year: int) -> int:
    """Queue one statement for every donor who gave in `year` (one INSERT ... SELECT); running
    it again queues none twice. Returns how many were queued."""
    start, end = _year_bounds(year)
    now = utcnow()
    dialect = db.session.get_bind().dialect.name
    json_object = func.json_build_object if dialect == "postgresql" else func.json_object
    gave = exists().where(
        Gift.donor_id == Donor.id,
        counted_gift(),
        Gift.received_at >= start,
        Gift.received_at < end,
    )
    rows = select(
        literal("annual_statement"),
        Donor.email,
        json_object("donor_id", Donor.id, "year", literal(year)),
        literal("annual_statement:") + cast(Donor.id, String) + literal(f":{year}"),
        Donor.id,
        literal(OutboxStatus.PENDING.value),
        literal(0),
        literal(now, UTCDateTime()),
        literal(now, UTCDateTime()),
    ).where(gave, Donor.merged_into_id.is_(None), Donor.erased_at.is_(None))
    statement = (
        insert_ignoring(OutboxMessage, "dedupe_key")
        .from_select(
            [
                "kind",
                "to_address",
                "context",
                "dedupe_key",
                "donor_id",
                "status",
                "attempts",
                "next_attempt_at",
                "created_at",
            ],
            rows,
        )
        .execution_options(preserve_rowcount=True)  # an INSERT's row count is not kept by default
    )
    return typing.cast(CursorResult[typing.Any], db.session.execute(statement)).rowcount  # DML gives a CursorResult


def _link_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="receipts.statement-request")


def statement_link(donor_id: int) -> str:
    """A link (path) where this donor can ask for a statement by email; valid for 24 hours.
    For the donor's self-service page, which has already proved who the donor is."""
    return url_for("statements.request_statement", token=_link_serializer().dumps(donor_id))


def donor_from_link(token: str) -> int:
    """The donor id a statement link was made for. Raises StatementError when it is forged,
    altered or expired."""
    try:
        donor_id = _link_serializer().loads(token, max_age=STATEMENT_LINK_MAX_AGE_SECONDS)
    except SignatureExpired:
        raise StatementError("this link has expired") from None
    except BadSignature:
        raise StatementError("this link is not valid") from None
    if not isinstance(donor_id, int):
        raise StatementError("this link is not valid")
    _donor(donor_id)
    return donor_id
