"""SQL for the grant reports: the database aggregates, Python only applies the rules per donor.

Every stream is ordered by donor (the surviving donor of a merge) and fetched in batches through
a server-side cursor (`yield_per`), so a report over a million gifts holds one donor at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    Select,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.orm import aliased
from sqlalchemy.sql.selectable import Subquery

from donations.clock import local_day_bounds
from donations.grants.rules import Period, ProgramRules
from donations.ledger.currency import counted_gift
from donations.ledger.models import (
    INDIVIDUAL_VEHICLES,
    Donor,
    Frequency,
    Fund,
    Gift,
    Membership,
    MembershipChange,
    Reversal,
)


@dataclass(frozen=True)
class Window:
    """Local dates first..last inclusive, and the UTC instants [start, end) that cover them."""

    first_day: date
    last_day: date
    start: datetime
    end: datetime

    @classmethod
    def of(cls, first_day: date, last_day: date, zone: ZoneInfo | None = None) -> Window:
        start, end = local_day_bounds(first_day, last_day, zone)
        return cls(first_day, last_day, start, end)


def owner_id() -> ColumnElement[int]:
    """A merged donor's gifts count as the survivor's."""
    return func.coalesce(Donor.merged_into_id, Donor.id)


def period_of(window: Window) -> ColumnElement[int]:
    """-1 before the window, 0 in it, 1 after. A mailed gift is dated by its postmark (a local
    date); any other by the instant the money moved, against the window's UTC bounds."""
    postmark = Gift.postmarked_on
    return case(
        (
            postmark.is_not(None),
            case((postmark < window.first_day, -1), (postmark > window.last_day, 1), else_=0),
        ),
        (Gift.received_at < window.start, -1),
        (Gift.received_at >= window.end, 1),
        else_=0,
    )


def _reversal_sums() -> Subquery:
    """Each gift's net reversal (refunds and lost disputes, less what was restored)."""
    return (
        select(Reversal.gift_id.label("gift_id"), cast(func.sum(Reversal.amount_cents), BigInteger).label("total"))
        .group_by(Reversal.gift_id)
        .subquery("reversal_sums")
    )


def _clamped(total: ColumnElement[Any]) -> ColumnElement[int]:
    """A reversal never raises a gift above what was paid, nor takes more than it."""
    clamped = case(
        (total.is_(None), 0),
        (total <= 0, 0),
        (total >= Gift.amount_cents, Gift.amount_cents),
        else_=total,
    )
    return cast(clamped, BigInteger)


def _is_organization() -> ColumnElement[int]:
    """Given by a business, a foundation or a government: not an individual's money (a gift
    through a donor-advised fund or a family foundation is the individual's)."""
    return case((Gift.vehicle.in_([str(v) for v in INDIVIDUAL_VEHICLES]), 0), else_=1)


@dataclass(frozen=True)
class Claimant:
    """A program exclusive with the one reported on and before it in priority: a gift its rules
    admit is counted there, not here."""

    name: str
    window: Window
    rules: ProgramRules


def _admitted_by(claimant: Claimant) -> ColumnElement[bool]:
    """The gift-level rules of `claimant` (window, vehicle, fund, source, anonymous limit)."""
    rules = claimant.rules
    conditions = [period_of(claimant.window) == 0, Gift.source.in_(sorted(rules.sources))]
    if rules.individuals_only:
        conditions.append(_is_organization() == 0)
    if rules.fund_ids is not None:
        conditions.append(Gift.fund_id.in_(sorted(rules.fund_ids)))
    if rules.anonymous_limit_cents is not None:
        conditions.append(or_(Gift.anonymous.is_(False), Gift.amount_cents <= rules.anonymous_limit_cents))
    return and_(*conditions)


def claimed_by(claimants: Sequence[Claimant]) -> ColumnElement[Any]:
    """The name of the first claimant (in priority order) that counts the gift, or null."""
    if not claimants:
        return cast(None, String)
    return case(*((_admitted_by(c), c.name) for c in claimants), else_=None)


def _money_gift() -> ColumnElement[bool]:
    return and_(counted_gift(), Gift.received_at.is_not(None))


def _bigsum(column: ColumnElement[Any]) -> ColumnElement[int]:
    # PostgreSQL's sum(bigint) is numeric; cents stay integers.
    return cast(func.coalesce(func.sum(column), 0), BigInteger)


def donor_groups(
    window: Window,
    periods: Sequence[Period] = (Period.BEFORE, Period.IN),
    *,
    raw_times: bool = False,
    claimants: Sequence[Claimant] = (),
) -> Subquery:
    """Per donor, the gifts the rules cannot tell apart, summed (see rules.GiftFacts).

    Before the window only what the rules need is kept apart: memberships (their first paid
    installment) and whether anything was given at all.

    `raw_times`: `first_at` as the driver gives it (aware on PostgreSQL, naive UTC on SQLite)
    rather than through UTCDateTime, which costs a fifth of the donors report. Only for callers
    that merely order one query's groups by it, never mixing them with other times.
    """
    sums = _reversal_sums()
    reversed_ = _clamped(sums.c.total)
    period = period_of(window)
    in_window = period == 0
    installment_in_window = and_(in_window, Gift.membership_id.is_not(None))
    fair_value = func.coalesce(Gift.fair_market_value_cents, 0)
    rows = (
        select(
            owner_id().label("owner"),
            period.label("period"),
            Gift.membership_id.label("membership_id"),
            installment_interval().label("membership_interval"),
            case((in_window, Gift.fund_id)).label("fund_id"),
            case((in_window, Gift.source)).label("source"),
            case((in_window, _is_organization())).label("organization"),
            case((in_window, case((reversed_ >= Gift.amount_cents, 1), else_=0))).label("fully_reversed"),
            case((installment_in_window, Gift.amount_cents)).label("unit_amount"),
            case((installment_in_window, reversed_)).label("unit_reversed"),
            case((in_window, Gift.vehicle)).label("vehicle"),
            # An anonymous gift is grouped with others of its amount (the anonymous limit is per
            # gift), a gift with a fair market value on its own (deducted per gift).
            case((and_(in_window, Gift.anonymous), Gift.amount_cents)).label("anonymous_amount"),
            case((and_(in_window, fair_value > 0), Gift.id)).label("fair_value_gift"),
            case((in_window, claimed_by(claimants))).label("claimed_by"),
            Gift.amount_cents.label("amount"),
            reversed_.label("reversed"),
            case((in_window, fair_value), else_=0).label("fair_value"),
            Gift.received_at.label("received_at"),
            case((Gift.anonymous, 1), else_=0).label("anonymous"),
        )
        .join(Donor, Donor.id == Gift.donor_id)
        .outerjoin(sums, sums.c.gift_id == Gift.id)
        .outerjoin(Membership, Membership.id == Gift.membership_id)
        .where(_money_gift(), period.in_([int(p) for p in periods]))
        .subquery("gift_keys")
    )
    keys = [
        rows.c.owner,
        rows.c.period,
        rows.c.membership_id,
        rows.c.membership_interval,
        rows.c.fund_id,
        rows.c.source,
        rows.c.organization,
        rows.c.fully_reversed,
        rows.c.unit_amount,
        rows.c.unit_reversed,
        rows.c.vehicle,
        rows.c.anonymous_amount,
        rows.c.fair_value_gift,
        rows.c.claimed_by,
    ]
    return (
        select(
            *keys,
            func.count().label("n"),
            _bigsum(rows.c.amount).label("amount"),
            _bigsum(rows.c.reversed).label("reversed"),
            _bigsum(rows.c.fair_value).label("fair_value"),
            (
                type_coerce(func.min(rows.c.received_at), DateTime(timezone=True))
                if raw_times
                else func.min(rows.c.received_at)
            ).label("first_at"),
            func.max(rows.c.anonymous).label("anonymous"),
        )
        .group_by(*keys)
        .subquery("donor_groups")
    )


def donor_groups_stmt(
    window: Window,
    periods: Sequence[Period] = (Period.BEFORE, Period.IN),
    *,
    raw_times: bool = False,
    claimants: Sequence[Claimant] = (),
) -> Select[*tuple[Any, ...]]:
    """The groups with the surviving donor's name, email, organization, postal code and state,
    in donor order."""
    groups = donor_groups(window, periods, raw_times=raw_times, claimants=claimants)
    person = aliased(Donor, name="person")
    return (
        select(
            groups,
            person.name.label("donor_name"),
            person.email.label("donor_email"),
            person.organization.label("donor_organization"),
            person.postal_code.label("donor_postal_code"),
            person.region.label("donor_region"),
        )
        .join(person, person.id == groups.c.owner)
        .order_by(groups.c.owner, groups.c.period, groups.c.first_at)
    )


def installment_interval() -> ColumnElement[Any]:
    """The interval a gift was billed at: an installment's own frequency (a member may have
    moved from monthly to annual since), else its membership's."""
    return case(
        (Gift.frequency == Frequency.MONTHLY, literal("month")),
        (Gift.frequency == Frequency.ANNUAL, literal("year")),
        else_=Membership.interval,
    )


def increases_stmt(window: Window) -> Select[*tuple[Any, ...]]:
    """Membership amount changes made in the window at one frequency, in donor order: a new
    frequency (monthly $10 to annual $120) or a new fund alone is no increase."""
    return (
        select(
            owner_id().label("owner"),
            MembershipChange.membership_id,
            MembershipChange.old_amount_cents,
            MembershipChange.new_amount_cents,
        )
        .join(Membership, Membership.id == MembershipChange.membership_id)
        .join(Donor, Donor.id == Membership.donor_id)
        .where(
            MembershipChange.changed_at >= window.start,
            MembershipChange.changed_at < window.end,
            MembershipChange.old_amount_cents != MembershipChange.new_amount_cents,
            or_(
                MembershipChange.old_interval.is_(None),
                MembershipChange.new_interval.is_(None),
                MembershipChange.old_interval == MembershipChange.new_interval,
            ),
        )
        .order_by(owner_id(), MembershipChange.membership_id, MembershipChange.changed_at, MembershipChange.id)
    )


def _in_ledger(window: Window, span: Window) -> ColumnElement[bool]:
    return or_(period_of(window) == 0, period_of(span) == 0)


def gifts_stmt(window: Window, span: Window, claimants: Sequence[Claimant] = ()) -> Select[*tuple[Any, ...]]:
    """One row per paid gift counted in the window or dated in `span`, in donor order."""
    sums = _reversal_sums()
    reversed_ = _clamped(sums.c.total)
    person = aliased(Donor, name="person")
    return (
        select(
            owner_id().label("owner"),
            period_of(window).label("period"),
            case((period_of(span) == 0, 1), else_=0).label("in_span"),
            Gift.id,
            Gift.donor_id,
            Gift.fund_id,
            Gift.membership_id,
            Gift.amount_cents,
            Gift.fee_covered_cents,
            Gift.stripe_fee_cents,
            Gift.net_cents,
            Gift.frequency,
            Gift.source,
            Gift.status,
            Gift.received_at,
            Gift.postmarked_on,
            Gift.check_number,
            Gift.anonymous,
            Gift.organization,
            Gift.tax_deductible,
            Gift.currency,
            _is_organization().label("is_organization"),
            reversed_.label("reversed"),
            installment_interval().label("membership_interval"),
            Fund.name.label("fund_name"),
            person.name.label("donor_name"),
            Gift.vehicle,
            Gift.fair_market_value_cents,
            claimed_by(claimants).label("claimed_by"),
        )
        .join(Donor, Donor.id == Gift.donor_id)
        .join(person, person.id == owner_id())
        .join(Fund, Fund.id == Gift.fund_id)
        .outerjoin(sums, sums.c.gift_id == Gift.id)
        .outerjoin(Membership, Membership.id == Gift.membership_id)
        .where(_money_gift(), _in_ledger(window, span))
        .order_by(owner_id(), Gift.received_at, Gift.id)
    )


def ledger_reversals_stmt(window: Window, span: Window) -> Select[*tuple[Any, ...]]:
    """The reversals of the gifts `gifts_stmt` lists, in donor order."""
    return (
        select(
            owner_id().label("owner"),
            Reversal.gift_id,
            Reversal.id,
            Reversal.kind,
            Reversal.amount_cents,
            Reversal.reversed_at,
        )
        .join(Gift, Gift.id == Reversal.gift_id)
        .join(Donor, Donor.id == Gift.donor_id)
        .where(_money_gift(), _in_ledger(window, span))
        .order_by(owner_id(), Reversal.gift_id, Reversal.reversed_at, Reversal.id)
    )


def reversals_stmt(window: Window) -> Select[*tuple[Any, ...]]:
    """Every reversal of a gift paid in the window, whatever its own date, in date order."""
    person = aliased(Donor, name="person")
    return (
        select(
            Reversal.id,
            Reversal.kind,
            Reversal.amount_cents,
            Reversal.reversed_at,
            Reversal.created_at,
            Reversal.stripe_key,
            Gift.id.label("gift_id"),
            Gift.amount_cents.label("gift_amount_cents"),
            Gift.received_at.label("gift_received_at"),
            Gift.postmarked_on.label("gift_postmarked_on"),
            Gift.created_at.label("gift_created_at"),
            Gift.fund_id,
            Gift.source,
            Gift.anonymous,
            _is_organization().label("is_organization"),
            Fund.name.label("fund_name"),
            owner_id().label("owner"),
            person.name.label("donor_name"),
        )
        .join(Gift, Gift.id == Reversal.gift_id)
        .join(Donor, Donor.id == Gift.donor_id)
        .join(person, person.id == owner_id())
        .join(Fund, Fund.id == Gift.fund_id)
        .where(_money_gift(), period_of(window) == 0)
        .order_by(Reversal.reversed_at, Reversal.id)
    )


def anonymous_owners_stmt(window: Window) -> Select[*tuple[Any, ...]]:
    """The donors who gave anonymously in the window: every export names them only by id."""
    return (
        select(owner_id().label("owner"))
        .select_from(Gift)
        .join(Donor, Donor.id == Gift.donor_id)
        .where(Gift.anonymous.is_(True), _money_gift(), period_of(window) == 0)
        .distinct()
    )


def _net_in(span: Window) -> tuple[Subquery, ColumnElement[int]]:
    sums = _reversal_sums()
    net = Gift.amount_cents - _clamped(sums.c.total)
    rows = (
        select(owner_id().label("owner"), net.label("net"), case((Gift.anonymous, 1), else_=0).label("anonymous"))
        .join(Donor, Donor.id == Gift.donor_id)
        .outerjoin(sums, sums.c.gift_id == Gift.id)
        .where(_money_gift(), period_of(span) == 0)
        .subquery("year_gifts")
    )
    return rows, rows.c.net


def disclosure_stmt(year: Window, threshold_cents: int) -> Select[*tuple[Any, ...]]:
    """Donors whose net gifts in the year reach `threshold_cents`, largest first.

    Each row also carries the year's totals over every donor (window functions), so that one scan
    of the gifts gives both; `disclosure_totals_stmt` is only needed when no donor is listed."""
    rows, net = _net_in(year)
    anonymous_net = case((rows.c.anonymous == 1, net), else_=0)
    per_donor = (
        select(
            rows.c.owner,
            _bigsum(net).label("total"),
            func.max(rows.c.anonymous).label("anonymous"),
            _bigsum(anonymous_net).label("anonymous_total"),
        )
        .group_by(rows.c.owner)
        .subquery("donor_years")
    )
    every = select(
        per_donor.c.owner,
        per_donor.c.total,
        per_donor.c.anonymous,
        cast(func.sum(per_donor.c.total).over(), BigInteger).label("year_total"),
        cast(func.sum(per_donor.c.anonymous_total).over(), BigInteger).label("year_anonymous_total"),
        func.count().over().label("year_donors"),
    ).subquery("every_donor")
    person = aliased(Donor, name="person")
    return (
        select(every, person.name.label("donor_name"), person.organization.label("donor_organization"))
        .join(person, person.id == every.c.owner)
        .where(every.c.total >= threshold_cents)
        .order_by(every.c.total.desc(), every.c.owner)
    )


def disclosure_totals_stmt(year: Window) -> Select[*tuple[Any, ...]]:
    rows, net = _net_in(year)
    anonymous_net = case((rows.c.anonymous == 1, net), else_=0)
    return select(
        _bigsum(net).label("total"),
        _bigsum(anonymous_net).label("anonymous_total"),
        func.count(func.distinct(rows.c.owner)).label("donors"),
    )


def count_donors_stmt(window: Window) -> Select[*tuple[Any, ...]]:
    """How many donors the donors report will list (for a progress bar)."""
    return (
        select(func.count(func.distinct(owner_id())))
        .select_from(Gift)
        .join(Donor, Donor.id == Gift.donor_id)
        .where(_money_gift(), period_of(window) == 0)
    )


def count_ledger_stmt(span: Window) -> Select[*tuple[Any, ...]]:
    """How many gift and reversal rows the ledger will have (for a progress bar)."""
    in_span = and_(_money_gift(), period_of(span) == 0)
    gifts = select(func.count()).select_from(Gift).where(in_span).scalar_subquery()
    reversals = select(func.count()).select_from(Reversal).join(Gift, Gift.id == Reversal.gift_id).where(in_span)
    return select(gifts + reversals.scalar_subquery())
