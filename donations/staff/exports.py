"""The gifts and donors lists as CSV or XLSX files, with the filters the list was showing.

The files are written by the grant reports' writers (grants/export.py): CSV streams as the rows
are read, XLSX is built in constant memory in a temporary file and then streamed; every text
cell is neutralized against spreadsheet formulas; amounts are dollars, dates local, and
statuses, sources and frequencies are words. Each download is audited (who, which list, which
filters, which format) by the caller, in the view's transaction, before the first byte leaves.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select

from donations.clock import local_date, local_time_text, newsroom_zone
from donations.extensions import db
from donations.forms import FREQUENCY_CHOICES, SOURCE_CHOICES
from donations.grants.downloads import FORMATS as FORMATS  # the files themselves: shared with other reports
from donations.grants.downloads import ExportError as ExportError
from donations.grants.downloads import download as download
from donations.grants.downloads import response as response
from donations.grants.reports import Cell, Money, Report
from donations.ledger import donors as donor_ledger
from donations.ledger.currency import counted_gift
from donations.ledger.memberships import level_of
from donations.ledger.models import (
    RECEIVED_STATUSES,
    Donor,
    Gift,
    GiftStatus,
    Membership,
    MembershipStatus,
    NewsletterOptIn,
)
from donations.ledger.offline import is_placeholder_email
from donations.staff import queries

PAGE = 1000  # rows read per query: each page is its own keyset range scan

SOURCE_WORDS = dict(SOURCE_CHOICES)
FREQUENCY_WORDS = dict(FREQUENCY_CHOICES)
STATUS_WORDS = {
    GiftStatus.PENDING: "Checkout started, not paid",
    GiftStatus.PAID: "Paid",
    GiftStatus.FAILED: "Payment failed",
    GiftStatus.EXPIRED: "Checkout abandoned",
    GiftStatus.REFUNDED: "Refunded",
    GiftStatus.PARTIALLY_REFUNDED: "Partly refunded",
    GiftStatus.DISPUTED: "Disputed",
}
MEMBERSHIP_WORDS = {
    MembershipStatus.INCOMPLETE: "Not started",
    MembershipStatus.ACTIVE: "Active",
    MembershipStatus.PAST_DUE: "Payment overdue",
    MembershipStatus.CANCELED: "Canceled",
}

GIFT_COLUMNS = (
    "Gift number",
    "Date",
    "Time",
    "Donor",
    "Email",
    "On behalf of (organization)",
    "Anonymous",
    "Fund",
    "Amount",
    "Reversed (refunds, disputes)",
    "Kept",
    "Frequency",
    "Source",
    "Check number",
    "Status",
    "Tax deductible",
)
DONOR_COLUMNS = (
    "Donor number",
    "Name",
    "Email",
    "Organization",
    "Address",
    "Address line 2",
    "City",
    "State or region",
    "Postal code",
    "Country",
    "Gifts",
    "Given",
    "First gift",
    "Last gift",
    "Membership",
    "Donor since",
    "Newsletter opt-in",
    "Newsletter wording",
)


def filters_in_words(filters: queries.GiftFilters) -> dict[str, Any]:
    """The filters as the audit log keeps them: only those set."""
    return {
        key: (value.isoformat() if isinstance(value, date) else value)
        for key, value in asdict(filters).items()
        if value is not None
    }


# --- Gifts -------------------------------------------------------------------------------------


def _gift_rows(filters: queries.GiftFilters) -> Iterator[tuple[Cell, ...]]:
    after: queries.GiftCursor | None = None
    zone = newsroom_zone()
    while True:
        rows = db.session.execute(queries.gift_list_statement(filters, after, PAGE)).all()
        for row in rows:
            moment = row.listed_at
            local = moment.astimezone(zone) if moment.tzinfo else moment.replace(tzinfo=UTC).astimezone(zone)
            reversed_cents = int(row.reversed_cents or 0)
            email = "" if is_placeholder_email(row.donor_email) else row.donor_email
            yield (
                row.id,
                local.date(),
                local.strftime("%H:%M"),
                row.donor_name or email,
                email,
                row.organization,
                bool(row.anonymous),
                row.fund_name,
                Money(row.amount_cents),
                Money(reversed_cents),
                Money(row.amount_cents - reversed_cents),
                FREQUENCY_WORDS.get(row.frequency, row.frequency),
                SOURCE_WORDS.get(row.source, row.source),
                row.check_number,
                STATUS_WORDS.get(row.status, row.status),
                f"Yes: received by {row.sponsor_name}, fiscal sponsor" if row.tax_deductible else "No",
            )
        if len(rows) < PAGE:
            return
        after = queries.GiftCursor(rows[-1].listed_at, rows[-1].id)


def gifts_report(filters: queries.GiftFilters) -> Report:
    return Report(
        kind="gifts",
        title="Gifts",
        columns=GIFT_COLUMNS,
        rows=_gift_rows(filters),
        notes=(
            "Gifts to a for-profit newsroom are not tax deductible; only gifts a fiscal sponsor received "
            "for a sponsor-held fund are (the Tax deductible column names the sponsor).",
        ),
    )


# --- Donors ------------------------------------------------------------------------------------


def _donor_statement(query: str, after_id: int) -> Any:
    totals = (
        select(
            Gift.donor_id.label("donor_id"),
            func.count(Gift.id).label("gifts"),
            func.sum(Gift.amount_cents).label("given"),
            func.min(Gift.received_at).label("first"),
            func.max(Gift.received_at).label("last"),
        )
        .where(counted_gift())
        .group_by(Gift.donor_id)
        .subquery()
    )
    membership = (
        select(Membership.status)
        .where(Membership.donor_id == Donor.id)
        .order_by((Membership.status == MembershipStatus.ACTIVE).desc(), Membership.id.desc())
        .limit(1)
        .correlate(Donor)
        .scalar_subquery()
    )
    # The donor's latest newsletter opt-in on the gift page, of a gift that was received.
    opt_in = (
        select(NewsletterOptIn)
        .join(Gift, Gift.id == NewsletterOptIn.gift_id)
        .where(Gift.donor_id == Donor.id, Gift.status.in_(RECEIVED_STATUSES))
        .order_by(NewsletterOptIn.opted_in_at.desc(), NewsletterOptIn.id.desc())
        .limit(1)
        .correlate(Donor)
    )
    statement = (
        select(
            Donor,
            totals.c.gifts,
            totals.c.given,
            totals.c.first,
            totals.c.last,
            membership.label("membership"),
            opt_in.with_only_columns(NewsletterOptIn.opted_in_at).scalar_subquery().label("opted_in_at"),
            opt_in.with_only_columns(NewsletterOptIn.wording).scalar_subquery().label("opt_in_wording"),
        )
        .outerjoin(totals, totals.c.donor_id == Donor.id)
        .where(Donor.merged_into_id.is_(None), Donor.erased_at.is_(None), Donor.id > after_id)
        .order_by(Donor.id)
        .limit(PAGE)
    )
    if query.strip():
        statement = statement.where(donor_ledger.matching(query))
    return statement


def _day(moment: datetime | None) -> date | None:
    return local_date(moment) if moment is not None else None


def _donor_rows(query: str) -> Iterator[tuple[Cell, ...]]:
    after_id = 0
    while True:
        rows = db.session.execute(_donor_statement(query, after_id)).all()
        for donor, gifts, given, first, last, membership, opted_in_at, opt_in_wording in rows:
            email = "" if is_placeholder_email(donor.email) else donor.email
            yield (
                donor.id,
                donor.name,
                email,
                donor.organization,
                donor.address_line1,
                donor.address_line2,
                donor.city,
                donor.region,
                donor.postal_code,
                donor.country,
                int(gifts or 0),
                Money(int(given or 0)),
                _day(first),
                _day(last),
                MEMBERSHIP_WORDS.get(membership, "") if membership else "Not a member",
                _day(donor.created_at),
                local_time_text(opted_in_at) if opted_in_at is not None else "",
                opt_in_wording or "",
            )
        if len(rows) < PAGE:
            return
        after_id = rows[-1][0].id


def donors_report(query: str) -> Report:
    return Report(kind="donors", title="Donors", columns=DONOR_COLUMNS, rows=_donor_rows(query))


# --- Members for Mailchimp -------------------------------------------------------------------------

# Mailchimp's audience import: "Email Address" is required; "First Name" and "Last Name" map to
# the audience's FNAME and LNAME merge fields; "Tags" is one cell of tags separated by commas.
MAILCHIMP_COLUMNS = ("Email Address", "First Name", "Last Name", "Tags")
# The membership a member is tagged by when they have several: the liveliest, then the newest.
_STATUS_RANK: dict[str, int] = {MembershipStatus.ACTIVE: 0, MembershipStatus.PAST_DUE: 1, MembershipStatus.CANCELED: 2}
MAILCHIMP_STATUS_TAGS: dict[str, str] = {
    MembershipStatus.ACTIVE: "Active member",
    MembershipStatus.PAST_DUE: "Payment overdue",
    MembershipStatus.CANCELED: "Former member",
}
MAILCHIMP_INTERVAL_TAGS = {"month": "Monthly", "year": "Annual"}
MAILCHIMP_NEWSLETTER_TAG = "Newsletter opt-in"


def split_name(name: str | None) -> tuple[str, str]:
    """First name and last name as Mailchimp keeps them: the first word, and the rest."""
    words = (name or "").split()
    return (words[0], " ".join(words[1:])) if words else ("", "")


def _member_rows() -> Iterator[tuple[Cell, ...]]:
    statement = (
        select(Membership, Donor)
        .join(Donor, Donor.id == Membership.donor_id)
        .where(
            Membership.status.in_(tuple(_STATUS_RANK)),
            Donor.merged_into_id.is_(None),
            Donor.erased_at.is_(None),
            Donor.contact_by_email.is_(True),
        )
        .order_by(Donor.id, Membership.id.desc())
    )
    newsletter = set(
        db.session.scalars(
            select(Gift.donor_id)
            .join(NewsletterOptIn, NewsletterOptIn.gift_id == Gift.id)
            .where(Gift.status.in_(RECEIVED_STATUSES))
        )
    )
    best: tuple[Membership, Donor] | None = None
    for membership, donor in db.session.execute(statement):
        if best is not None and best[1].id != donor.id:
            yield _member_row(*best, level_of(best[0]), best[1].id in newsletter)
            best = None
        if best is None or _STATUS_RANK[membership.status] < _STATUS_RANK[best[0].status]:
            best = (membership, donor)
    if best is not None:
        yield _member_row(*best, level_of(best[0]), best[1].id in newsletter)


def _member_row(membership: Membership, donor: Donor, level: str, newsletter: bool) -> tuple[Cell, ...]:
    first, last = split_name(donor.name)
    tags = ["Member", f"{level} level", MAILCHIMP_STATUS_TAGS[membership.status]]
    tags.append(MAILCHIMP_INTERVAL_TAGS.get(membership.interval, membership.interval))
    if newsletter:  # ticked the gift page's newsletter box (its words are in the donors export)
        tags.append(MAILCHIMP_NEWSLETTER_TAG)
    return (donor.email, first, last, ",".join(tags))


def mailchimp_members_report() -> Report:
    """Members (current, overdue and former) with an email address who welcome fundraising email."""
    rows = (row for row in _member_rows() if not is_placeholder_email(str(row[0])))
    return Report(kind="members", title="Members for Mailchimp", columns=MAILCHIMP_COLUMNS, rows=rows)
