"""Read queries behind the console's lists and pages. The database filters, sorts, pages and
sums; Python only shapes a page of rows.

Lists page by keyset (the last row's sort key), never by OFFSET, so page 10,000 of a million
gifts costs what page 1 does: one index range scan.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, case, func, select, tuple_
from sqlalchemy.orm import joinedload, selectinload

from donations.accounts.models import AuditEntry, StaffUser
from donations.clock import local_day_bounds
from donations.extensions import MAX_ROW_ID, db
from donations.ledger.currency import counted_gift
from donations.ledger.models import (
    RECEIVED_STATUSES,
    UNPAID_STATUSES,
    Dispute,
    Donor,
    Fund,
    Gift,
    Membership,
    Reversal,
)
from donations.ledger.service import email_key
from donations.localtime import local_year

PAGE_SIZE = 50
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# "<microseconds since the epoch>.<gift id>", ASCII digits only (str.isdigit also takes "²" and
# other digits int() refuses), short enough that int() and the database take them.
_CURSOR = re.compile(r"(-?\d{1,18})\.(\d{1,10})", re.ASCII)


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class GiftCursor:
    """Where a page of gifts ends: (received_at, id) of its last row."""

    received_at: datetime
    id: int

    def encode(self) -> str:
        return f"{(self.received_at - _EPOCH) // timedelta(microseconds=1)}.{self.id}"

    @classmethod
    def decode(cls, text: str) -> GiftCursor:
        broken = BadCursor("That page link is broken: start again from the first page.")
        match = _CURSOR.fullmatch(text)
        if match is None or int(match[2]) > MAX_ROW_ID:
            raise broken
        try:
            received_at = _EPOCH + timedelta(microseconds=int(match[1]))
        except OverflowError:  # beyond the years datetime holds
            raise broken from None
        return cls(received_at, int(match[2]))


@dataclass(frozen=True)
class GiftFilters:
    first: date | None = None  # local dates, inclusive
    last: date | None = None
    fund_id: int | None = None
    source: str | None = None
    frequency: str | None = None
    status: str | None = None
    min_cents: int | None = None
    max_cents: int | None = None
    email: str | None = None


def _reversed_cents() -> Any:
    """The gift's net reversal, as a correlated subquery (uses ix_reversals_gift_id)."""
    return (
        select(func.coalesce(func.sum(Reversal.amount_cents), 0))
        .where(Reversal.gift_id == Gift.id)
        .correlate(Gift)
        .scalar_subquery()
    )


def listed_by_start(filters: GiftFilters) -> bool:
    """Unpaid checkouts (a pending, failed or expired status asked for) have no time received:
    they are listed, dated and paged by when they started."""
    return filters.status in UNPAID_STATUSES


def gift_list_statement(filters: GiftFilters, after: GiftCursor | None, limit: int) -> Select[*tuple[Any, ...]]:
    """Received gifts (or, asked for by status, unpaid ones), newest first, filtered; the page
    after `after`."""
    moment = Gift.created_at if listed_by_start(filters) else Gift.received_at
    statement = (
        select(
            Gift.id,
            moment.label("listed_at"),
            Gift.received_at,
            Gift.created_at,
            Gift.amount_cents,
            Gift.currency,
            Gift.frequency,
            Gift.source,
            Gift.status,
            Gift.anonymous,
            Gift.organization,
            Gift.check_number,
            Gift.donor_id,
            Donor.name.label("donor_name"),
            Donor.email.label("donor_email"),
            Fund.name.label("fund_name"),
            _reversed_cents().label("reversed_cents"),
            Gift.tax_deductible,
            Fund.sponsor_name,
        )
        .join(Donor, Donor.id == Gift.donor_id)
        .join(Fund, Fund.id == Gift.fund_id)
        .where(moment.is_not(None))
    )
    if filters.first or filters.last:
        start, end = local_day_bounds(filters.first or date(1970, 1, 1), filters.last or date(9998, 12, 31))
        if filters.first:
            statement = statement.where(moment >= start)
        if filters.last:
            statement = statement.where(moment < end)
    if filters.fund_id is not None:
        statement = statement.where(Gift.fund_id == filters.fund_id)
    if filters.source:
        statement = statement.where(Gift.source == filters.source)
    if filters.frequency:
        statement = statement.where(Gift.frequency == filters.frequency)
    if filters.status:
        statement = statement.where(Gift.status == filters.status)
    if filters.min_cents is not None:
        statement = statement.where(Gift.amount_cents >= filters.min_cents)
    if filters.max_cents is not None:
        statement = statement.where(Gift.amount_cents <= filters.max_cents)
    if filters.email:
        statement = statement.where(Donor.email_key == email_key(filters.email))
    if after is not None:
        statement = statement.where(tuple_(moment, Gift.id) < tuple_(after.received_at, after.id))
    return statement.order_by(moment.desc(), Gift.id.desc()).limit(limit)


@dataclass(frozen=True)
class GiftPage:
    rows: Sequence[Any]
    next_cursor: GiftCursor | None


def gift_page(filters: GiftFilters, after: GiftCursor | None = None, page_size: int = PAGE_SIZE) -> GiftPage:
    """One page of gifts and the cursor of the next (None on the last page): one query; a row
    beyond the page tells whether there is a next one, so nothing is ever counted."""
    rows = db.session.execute(gift_list_statement(filters, after, page_size + 1)).all()
    more = len(rows) > page_size
    rows = rows[:page_size]
    cursor = GiftCursor(rows[-1].listed_at, rows[-1].id) if more else None
    return GiftPage(rows, cursor)


def gift_with_everything(gift_id: int) -> Gift | None:
    return db.session.scalar(
        select(Gift)
        .where(Gift.id == gift_id)
        .options(
            joinedload(Gift.donor),
            joinedload(Gift.fund),
            joinedload(Gift.membership),
            selectinload(Gift.reversals),
        )
    )


def disputes_of(gift_id: int) -> list[Dispute]:
    return list(db.session.scalars(select(Dispute).where(Dispute.gift_id == gift_id).order_by(Dispute.opened_at)))


def history_of(target_type: str, target_id: int) -> list[AuditEntry]:
    return list(
        db.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.target_type == target_type, AuditEntry.target_id == str(target_id))
            .order_by(AuditEntry.id.desc())
            .limit(100)
        )
    )


# --- Donors ------------------------------------------------------------------------------------

DONOR_GIFTS_SHOWN = 500


def donor_gifts(donor_ids: list[int], *, unpaid: bool = False) -> Sequence[Any]:
    """The donor's gifts (`donor_ids`: the donor and the duplicates merged into it), newest
    first, with each one's net reversal; checkouts never paid only with `unpaid` (listed last)."""
    statement = (
        select(Gift, Fund.name.label("fund_name"), _reversed_cents().label("reversed_cents"))
        .join(Fund, Fund.id == Gift.fund_id)
        .where(Gift.donor_id.in_(donor_ids))
    )
    if not unpaid:
        statement = statement.where(Gift.status.not_in(UNPAID_STATUSES))
    return db.session.execute(
        statement.order_by(Gift.received_at.is_(None), Gift.received_at.desc(), Gift.id.desc()).limit(DONOR_GIFTS_SHOWN)
    ).all()


@dataclass(frozen=True)
class DonorGiving:
    first_paid_at: datetime | None  # "donor since": the first gift whose money arrived
    unpaid_count: int  # checkouts started and never paid (pending, failed, expired)


def donor_giving(donor_ids: list[int]) -> DonorGiving:
    received = Gift.status.in_(RECEIVED_STATUSES)
    first, unpaid = db.session.execute(
        select(
            func.min(case((received, Gift.received_at))),
            func.count(case((Gift.status.in_(UNPAID_STATUSES), Gift.id))),
        ).where(Gift.donor_id.in_(donor_ids))
    ).one()
    return DonorGiving(first, int(unpaid))


def gift_counts(donor_id: int) -> tuple[int, int]:
    """How many gifts (any status) a donor has, and the dollars counted among them."""
    count, counted = db.session.execute(
        select(
            func.count(Gift.id), func.coalesce(func.sum(case((counted_gift(), Gift.amount_cents), else_=0)), 0)
        ).where(Gift.donor_id == donor_id)
    ).one()
    return int(count), int(counted)


def donor_memberships(donor_ids: list[int]) -> list[Membership]:
    return list(
        db.session.scalars(
            select(Membership)
            .where(Membership.donor_id.in_(donor_ids))
            .options(joinedload(Membership.fund))
            .order_by(Membership.id.desc())
        )
    )


@dataclass(frozen=True)
class YearTotal:
    year: int
    gift_count: int
    gross_cents: int
    reversed_cents: int

    @property
    def net_cents(self) -> int:
        return self.gross_cents - self.reversed_cents


def totals_by_year(donor_ids: list[int]) -> list[YearTotal]:
    """What the donor (and the duplicates merged into it) gave in each local calendar year,
    newest first (GROUP BY in the database); reversals count against the year of the gift they
    reverse."""
    reversed_ = (
        select(Reversal.gift_id, func.sum(Reversal.amount_cents).label("cents"))
        .join(Gift, Gift.id == Reversal.gift_id)
        .where(Gift.donor_id.in_(donor_ids))
        .group_by(Reversal.gift_id)
        .subquery("reversed")
    )
    year = local_year(Gift.received_at).label("year")
    rows = db.session.execute(
        select(
            year,
            func.count(Gift.id),
            func.coalesce(func.sum(Gift.amount_cents), 0),
            func.coalesce(func.sum(reversed_.c.cents), 0),
        )
        .select_from(Gift)
        .outerjoin(reversed_, reversed_.c.gift_id == Gift.id)
        .where(Gift.donor_id.in_(donor_ids), counted_gift(), Gift.received_at.is_not(None))
        .group_by(year)
        .order_by(year.desc())
    )
    return [YearTotal(int(y), int(n), int(gross), int(rev)) for y, n, gross, rev in rows]


# --- Audit log ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    next_before: int | None


def audit_page(
    *, user_id: int | None, anonymous: bool, action: str | None, before: int | None, page_size: int = PAGE_SIZE
) -> AuditPage:
    """Newest first, keyset-paged by id."""
    statement = select(AuditEntry).options(joinedload(AuditEntry.staff_user))
    if anonymous:
        statement = statement.where(AuditEntry.staff_user_id.is_(None))
    elif user_id is not None:
        statement = statement.where(AuditEntry.staff_user_id == user_id)
    if action:
        statement = statement.where(AuditEntry.action == action)
    if before is not None:
        statement = statement.where(AuditEntry.id < before)
    entries = list(db.session.scalars(statement.order_by(AuditEntry.id.desc()).limit(page_size + 1)))
    more = len(entries) > page_size
    entries = entries[:page_size]
    return AuditPage(entries, entries[-1].id if more else None)


def audit_actions() -> list[str]:
    return list(db.session.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action)))


def staff_users() -> list[StaffUser]:
    return list(db.session.scalars(select(StaffUser).order_by(StaffUser.active.desc(), StaffUser.email)))
